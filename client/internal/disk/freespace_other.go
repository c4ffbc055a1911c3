//go:build !unix

package disk

import "errors"

// freeSpace is unknown here: the chunk cache takes what fits.
func freeSpace(string) (uint64, error) { return 0, errors.New("free space unknown on this platform") }
