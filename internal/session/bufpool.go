package session

import "sync"

// Buffers lends byte buffers in a few size classes to the StreamConns that
// share it, so that a connection holds a frame buffer only while it reads
// or writes a frame: between frames (and so while idle) it holds none. A
// connection that kept its largest frame's buffer (a login's contact list,
// a file chunk) held it for as long as it stayed connected. The zero value
// is ready to use; one per server.
type Buffers struct {
	classes [len(bufClasses)]sync.Pool // of *[]byte with cap bufClasses[i]
}

// bufClasses are the buffer sizes lent; larger buffers are allocated and
// left to the collector.
var bufClasses = [...]int{1 << 10, readChunk, 128 << 10, 1 << 20}

// get returns a buffer of length n, to give back to put. A nil Buffers
// allocates.
func (p *Buffers) get(n int) *[]byte {
	for i, size := range bufClasses {
		if p != nil && n <= size {
			if b, ok := p.classes[i].Get().(*[]byte); ok {
				*b = (*b)[:n]
				return b
			}
			b := make([]byte, n, size)
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
	for i, size := range bufClasses {
		if cap(*b) == size {
			*b = (*b)[:0]
			p.classes[i].Put(b)
			return
		}
	}
}
