package p2p

import (
	"bytes"
	"errors"
	"testing"
)

func TestFragments(t *testing.T) {
	for _, size := range []int{0, 1, maxFragment - 2, maxFragment - 1, maxFragment, 3*(maxFragment-1) + 5, MaxMessageSize} {
		msg := bytes.Repeat([]byte{0xab}, size)
		frames := fragments(msg)
		var r reassembler
		for i, f := range frames {
			if len(f) > maxFragment {
				t.Fatalf("size %d: fragment %d of %d bytes", size, i, len(f))
			}
			got, done, err := r.add(f)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if done != (i == len(frames)-1) {
				t.Fatalf("size %d: fragment %d done=%v of %d", size, i, done, len(frames))
			}
			if done && !bytes.Equal(got, msg) {
				t.Fatalf("size %d: got %d bytes back", size, len(got))
			}
			if done && got == nil {
				t.Fatalf("size %d: nil message", size)
			}
		}
	}
}

func TestReassemblerErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frames [][]byte
	}{
		{"empty fragment", [][]byte{{}}},
		{"unknown flag", [][]byte{{7, 1, 2}}},
		{"fragment too large", [][]byte{make([]byte, maxFragment+1)}},
		{"message too large", func() [][]byte {
			f := fragments(make([]byte, MaxMessageSize+maxFragment))
			for i := range f {
				f[i][0] = flagMore
			}
			return f
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r reassembler
			var err error
			for _, f := range tc.frames {
				if _, _, err = r.add(f); err != nil {
					break
				}
			}
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("err = %v, want ErrProtocol", err)
			}
		})
	}
}

// FuzzReassembler: any bytes cut into frames never panic, and a message
// fragmented then reassembled comes back whole.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte("hello"), uint16(3))
	f.Add([]byte{flagMore, 1, flagLast, 2}, uint16(2))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		var r reassembler
		rest := data
		for len(rest) > 0 {
			n := int(cut)%len(rest) + 1
			if _, _, err := r.add(rest[:n]); err != nil {
				break
			}
			rest = rest[n:]
		}
		var r2 reassembler
		for _, fr := range fragments(data) {
			msg, done, err := r2.add(fr)
			if err != nil {
				t.Fatal(err)
			}
			if done && !bytes.Equal(msg, data) {
				t.Fatal("round trip changed the message")
			}
		}
	})
}
