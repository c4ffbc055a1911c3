package session

import "sync"

// Buffers lends byte buffers in a few size classes to the StreamConns that
// share it, so that a connection holds a buffer only while it reads a
// frame (and while the frame is handled) or writes a batch: between frames
// (and so while idle) it holds none. A connection that kept its largest
// frame's buffer (a login's contact list, a file chunk) held it for as
// long as it stayed connected.
//
// Each class keeps at most a few buffers given back, not a sync.Pool: a
// pool keeps what a burst (thousands of logins at once) gave back until
// two garbage collections have passed, which at natterd's idle
// connections is minutes, and showed as 1.3 KiB more per connection. The
// zero value is ready to use; one per server.
type Buffers struct {
	classes [len(bufClasses)]freeList
}

// bufClasses are the buffer sizes lent, and how many of each are kept
// when given back; larger buffers are allocated and left to the collector.
var bufClasses = [...]struct{ size, keep int }{
	{1 << 10, 256}, {readChunk, 64}, {128 << 10, 8}, {1 << 20, 2},
}

// freeList is one class's buffers given back.
type freeList struct {
	mu   sync.Mutex
	free [][]byte
}

// get returns a buffer of length n, to give back to put. A nil Buffers
// allocates.
func (p *Buffers) get(n int) *[]byte {
	for i, c := range bufClasses {
		if p != nil && n <= c.size {
			l := &p.classes[i]
			l.mu.Lock()
			var b []byte
			if k := len(l.free); k > 0 {
				b, l.free[k-1] = l.free[k-1], nil
				l.free = l.free[:k-1]
			}
			l.mu.Unlock()
			if b == nil {
				b = make([]byte, 0, c.size)
			}
			b = b[:n]
			return &b
		}
	}
	b := make([]byte, n)
	return &b
}

// put gives back a buffer that get returned (or nil, which it ignores).
func (p *Buffers) put(b *[]byte) {
	if p == nil || b == nil {
		return
	}
	for i, c := range bufClasses {
		if cap(*b) == c.size {
			l := &p.classes[i]
			l.mu.Lock()
			if len(l.free) < c.keep {
				l.free = append(l.free, (*b)[:0])
			}
			l.mu.Unlock()
			return
		}
	}
}
