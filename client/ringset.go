package client

// ringSet is a set that remembers only its last n members: adding to a full
// set forgets the oldest member. It is not safe for concurrent use.
type ringSet[K comparable] struct {
	m    map[K]struct{}
	ring []K
	next int
	full bool
}

func newRingSet[K comparable](n int) *ringSet[K] {
	return &ringSet[K]{m: make(map[K]struct{}), ring: make([]K, n)}
}

// Add adds k and reports whether it was new.
func (s *ringSet[K]) Add(k K) bool {
	if _, ok := s.m[k]; ok {
		return false
	}
	if s.full {
		delete(s.m, s.ring[s.next])
	}
	s.ring[s.next] = k
	s.m[k] = struct{}{}
	s.next++
	if s.next == len(s.ring) {
		s.next, s.full = 0, true
	}
	return true
}

// Has reports whether k is in the set.
func (s *ringSet[K]) Has(k K) bool {
	_, ok := s.m[k]
	return ok
}

// Len returns the number of members.
func (s *ringSet[K]) Len() int { return len(s.m) }
