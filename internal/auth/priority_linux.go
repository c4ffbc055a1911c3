package auth

import "golang.org/x/sys/unix"

// lowerPriority sets the calling thread's nice value to HashNice. On Linux
// a nice value belongs to a thread (the "process" setpriority names is the
// thread ID), so this lowers only the hashing worker that calls it, which
// has locked itself to its thread. Failure (a sandbox that forbids it) is
// not an error: hashing then runs at the normal priority.
func lowerPriority() {
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), HashNice)
}
