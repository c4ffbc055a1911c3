package natsbus

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"testing"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "alice"},
		{"Al-ice_9", "Al-ice_9"},
		{"ali.ce", "ali=2ece"},
		{"alice.x", "alice=2ex"},
		{"a=b", "a=3db"},
		{"a*>b c", "a=2a=3eb=20c"},
		{"", "="},
		{"é", "=c3=a9"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := escape(tt.in)
		if got != tt.want {
			t.Errorf("escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("escape(%q) = escape(%q) = %q", tt.in, other, got)
		}
		seen[got] = tt.in
	}
}

func part(id byte, index, count uint32, data string) []byte {
	b := make([]byte, partHeader, partHeader+len(data))
	b[0] = kindPart
	b[1] = id
	binary.BigEndian.PutUint32(b[17:21], index)
	binary.BigEndian.PutUint32(b[21:25], count)
	return append(b, data...)
}

// TestJoiner: parts of events that interleave are joined; malformed
// messages and parts out of order are dropped (with their event), never a
// crash; the events after them arrive.
func TestJoiner(t *testing.T) {
	tests := []struct {
		name string
		msgs [][]byte
		want []string
	}{
		{"Whole", [][]byte{{kindWhole, 'h', 'i'}, {kindWhole}}, []string{"hi", ""}},
		{"Parts", [][]byte{part(1, 0, 3, "ab"), part(1, 1, 3, "cd"), part(1, 2, 3, "e")}, []string{"abcde"}},
		{"Interleaved", [][]byte{part(1, 0, 2, "a1"), part(2, 0, 2, "b1"), {kindWhole, 'x'}, part(2, 1, 2, "b2"), part(1, 1, 2, "a2")},
			[]string{"x", "b1b2", "a1a2"}},
		{"Empty", [][]byte{{}, {kindWhole, 'y'}}, []string{"y"}},
		{"UnknownKind", [][]byte{{7, 'z'}, {kindWhole, 'y'}}, []string{"y"}},
		{"ShortPart", [][]byte{{kindPart, 1, 2}, {kindWhole, 'y'}}, []string{"y"}},
		{"MissingFirst", [][]byte{part(1, 1, 2, "a2"), {kindWhole, 'y'}}, []string{"y"}},
		{"Skipped", [][]byte{part(1, 0, 3, "a"), part(1, 2, 3, "c"), part(1, 1, 3, "b"), {kindWhole, 'y'}}, []string{"y"}},
		{"CountChanged", [][]byte{part(1, 0, 3, "a"), part(1, 1, 2, "b"), {kindWhole, 'y'}}, []string{"y"}},
		{"OnePartEvent", [][]byte{part(1, 0, 1, "a"), {kindWhole, 'y'}}, []string{"y"}},
		{"TooLarge", [][]byte{part(1, 0, 1<<30, "ab"), {kindWhole, 'y'}}, []string{"y"}},
		{"RepeatedFirst", [][]byte{part(1, 0, 2, "a"), part(1, 0, 2, "a"), part(1, 1, 2, "b"), {kindWhole, 'y'}}, []string{"y"}},
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j joiner
			var got []string
			for _, m := range tt.msgs {
				if ev, ok := j.add(m, log); ok {
					got = append(got, string(ev))
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			}
		})
	}
}

// TestJoinerBounded: events whose last part never comes (their publisher
// died) are forgotten once more than maxJoining are under way.
func TestJoinerBounded(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var j joiner
	for i := range 3 * maxJoining {
		j.add(part(byte(i), 0, 2, "x"), log)
	}
	if len(j.joining) != maxJoining {
		t.Fatalf("%d events being joined, want at most %d", len(j.joining), maxJoining)
	}
	ev, ok := j.add(part(byte(3*maxJoining-1), 1, 2, "y"), log)
	if !ok || !bytes.Equal(ev, []byte("xy")) {
		t.Fatalf("the newest event: %q, %v; want xy", ev, ok)
	}
}
