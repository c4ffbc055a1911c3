//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package cli

import "os"

// Without flock the locks are no-ops: see lock.go.
const flockWorks = false

func lockShared(*os.File) error               { return nil }
func lockExclusive(*os.File) error            { return nil }
func tryLockExclusive(*os.File) (bool, error) { return true, nil }
func unlock(*os.File)                         {}
