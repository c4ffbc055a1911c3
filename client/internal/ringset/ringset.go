// Package ringset provides a set that remembers only its last n members.
// The SDK's dispatcher uses it to recognise messages and receipts it has
// already handled, in bounded memory; it is a package of its own because
// it is generic and knows nothing of the SDK.
package ringset

// Set is a set that remembers only its last n members: adding to a full
// set forgets the oldest member. Its memory grows with use, up to n, so
// that many idle Clients in one process (a load generator) stay small. It
// is not safe for concurrent use.
type Set[K comparable] struct {
	m    map[K]struct{}
	ring []K // members in the order added, up to n; then a circular buffer
	n    int
	next int // where the next member goes once the ring is full
}

// New returns an empty Set that remembers up to n members (at least 1).
func New[K comparable](n int) *Set[K] {
	return &Set[K]{m: make(map[K]struct{}), n: max(n, 1)}
}

// Add adds k and reports whether it was new.
func (s *Set[K]) Add(k K) bool {
	if _, ok := s.m[k]; ok {
		return false
	}
	if len(s.ring) < s.n {
		s.ring = append(s.ring, k)
	} else {
		delete(s.m, s.ring[s.next])
		s.ring[s.next] = k
		s.next = (s.next + 1) % s.n
	}
	s.m[k] = struct{}{}
	return true
}

// Has reports whether k is in the set.
func (s *Set[K]) Has(k K) bool {
	_, ok := s.m[k]
	return ok
}

// Len returns the number of members.
func (s *Set[K]) Len() int { return len(s.m) }
