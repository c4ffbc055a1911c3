//go:build unix

package session

import "syscall"

// waitReadable waits, in the runtime's network poller, until sc has input
// (or an end of file, an error, or the read deadline), peeking at one byte
// without taking it.
func waitReadable(sc syscall.Conn) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	var b [1]byte
	rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN && err != syscall.EINTR
	})
}
