//go:build !linux

package auth

// lowerPriority does nothing where a thread's priority cannot be set on its
// own: hashing runs at the normal priority, still on a bounded pool.
func lowerPriority() {}
