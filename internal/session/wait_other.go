//go:build !unix

package session

import "syscall"

// waitReadable does not wait where there is no MSG_PEEK to wait with: the
// connection's next read waits instead.
func waitReadable(syscall.Conn) {}
