package client

import "testing"

func TestTrackerSeqs(t *testing.T) {
	var tr tracker
	tr.init(10)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	steps := []struct {
		op      string // "h" handled, "t" through
		seq     uint64
		contig  uint64
		gap     bool
		seenYes []uint64
		seenNo  []uint64
	}{
		{"h", 5, 5, false, []uint64{5, 4}, []uint64{6}}, // the first sets the base
		{"h", 7, 5, true, []uint64{7}, []uint64{6, 8}},
		{"h", 9, 5, true, []uint64{9}, []uint64{6, 8}},
		{"h", 6, 7, true, nil, []uint64{8}},
		{"h", 8, 9, false, nil, []uint64{10}},
		{"h", 12, 9, true, nil, []uint64{10, 11}},
		{"t", 11, 12, false, []uint64{10, 11, 12}, []uint64{13}},
		{"t", 3, 12, false, nil, nil}, // never back
		{"h", 2, 12, false, nil, nil},
	}
	for i, s := range steps {
		if s.op == "h" {
			tr.handledLocked(s.seq)
		} else {
			tr.throughLocked(s.seq)
		}
		if tr.contig != s.contig || (len(tr.above) > 0) != s.gap {
			t.Fatalf("step %d (%s %d): contig %d above %v, want %d gap %v", i, s.op, s.seq, tr.contig, tr.above, s.contig, s.gap)
		}
		for _, q := range s.seenYes {
			if !tr.seenLocked(q) {
				t.Errorf("step %d: %d not seen", i, q)
			}
		}
		for _, q := range s.seenNo {
			if tr.seenLocked(q) {
				t.Errorf("step %d: %d seen", i, q)
			}
		}
	}
}
