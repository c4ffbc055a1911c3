package ringset

import (
	"fmt"
	"testing"
)

func TestRingSet(t *testing.T) {
	s := New[string](3)
	for i, tc := range []struct {
		add     string
		new     bool
		has     []string
		hasNot  []string
		wantLen int
	}{
		{"a", true, []string{"a"}, []string{"b"}, 1},
		{"a", false, []string{"a"}, nil, 1},
		{"b", true, []string{"a", "b"}, nil, 2},
		{"c", true, []string{"a", "b", "c"}, nil, 3},
		{"d", true, []string{"b", "c", "d"}, []string{"a"}, 3},
		{"b", false, []string{"b", "c", "d"}, []string{"a"}, 3},
		{"e", true, []string{"c", "d", "e"}, []string{"a", "b"}, 3},
		{"a", true, []string{"d", "e", "a"}, []string{"b", "c"}, 3},
	} {
		t.Run(fmt.Sprint(i, tc.add), func(t *testing.T) {
			if got := s.Add(tc.add); got != tc.new {
				t.Errorf("Add(%q) = %v, want %v", tc.add, got, tc.new)
			}
			for _, k := range tc.has {
				if !s.Has(k) {
					t.Errorf("lost %q", k)
				}
			}
			for _, k := range tc.hasNot {
				if s.Has(k) {
					t.Errorf("still has %q", k)
				}
			}
			if s.Len() != tc.wantLen {
				t.Errorf("Len = %d, want %d", s.Len(), tc.wantLen)
			}
		})
	}
}
