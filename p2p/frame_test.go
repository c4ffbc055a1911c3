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
		{"message too large, as Send fragments it", fragments(make([]byte, MaxMessageSize+1))},
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

// FuzzReassembler: frames cut anyhow from any bytes never panic, a
// message given back is never over MaxMessageSize, and the messages given
// back are exactly the payloads of the frames taken, in order (nothing
// lost, nothing made up). And a message fragmented as Send does comes back
// whole, if Send would take it (MaxMessageSize at most); a longer one
// (which Send refuses with ErrTooLarge, so only a broken or hostile peer
// sends it) is refused with ErrProtocol before it is all in.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte("hello"), uint16(3))
	f.Add([]byte{flagMore, 1, flagLast, 2}, uint16(2))
	f.Add([]byte{flagMore, 1, 2, flagMore, 3, flagLast}, uint16(3))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		var r reassembler
		var taken, given []byte
		rest := data
		for len(rest) > 0 {
			n := int(cut)%len(rest) + 1
			frame := rest[:n]
			rest = rest[n:]
			msg, done, err := r.add(frame)
			if err != nil {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("err = %v, want ErrProtocol", err)
				}
				break // the channel is closed
			}
			taken = append(taken, frame[1:]...)
			if done {
				if msg == nil || len(msg) > MaxMessageSize {
					t.Fatalf("gave back a message of %d bytes (nil: %v)", len(msg), msg == nil)
				}
				given = append(given, msg...)
				if !bytes.Equal(given, taken) {
					t.Fatal("the messages given back are not the payloads taken")
				}
			}
		}

		var r2 reassembler
		frames := fragments(data)
		for i, fr := range frames {
			msg, done, err := r2.add(fr)
			if len(data) > MaxMessageSize {
				if done {
					t.Fatalf("reassembled a message of %d bytes, over %d", len(msg), MaxMessageSize)
				}
				if err != nil {
					if !errors.Is(err, ErrProtocol) {
						t.Fatalf("err = %v, want ErrProtocol", err)
					}
					return
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if done != (i == len(frames)-1) || done && !bytes.Equal(msg, data) {
				t.Fatalf("fragment %d of %d: done %v, round trip changed the message", i, len(frames), done)
			}
		}
		if len(data) > MaxMessageSize {
			t.Fatalf("a message of %d bytes, over %d, was not refused", len(data), MaxMessageSize)
		}
	})
}
