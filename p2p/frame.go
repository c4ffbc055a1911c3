package p2p

import "fmt"

// MaxMessageSize bounds one message given to Conn.Send: room for a sealed
// file chunk (256 KiB and its framing) with space to spare.
const MaxMessageSize = 1 << 20

// The channel's framing. Every data channel message (an SCTP message) is one
// fragment: a flag byte, then up to maxFragment-1 bytes of the application's
// message. Fragments stay under 16 KiB, the largest message every browser's
// data channel takes, so that a browser client can join with the same
// framing. The channel is reliable and ordered, so fragments arrive in order
// and reassembly is concatenation.
const (
	maxFragment = 16 << 10
	flagLast    = 0 // the last (or only) fragment of a message
	flagMore    = 1 // more fragments of the same message follow
)

// fragments splits msg into frames; each is a fresh slice.
func fragments(msg []byte) [][]byte {
	const room = maxFragment - 1
	var out [][]byte
	for {
		n, flag := len(msg), byte(flagLast)
		if n > room {
			n, flag = room, flagMore
		}
		f := make([]byte, 1+n)
		f[0] = flag
		copy(f[1:], msg[:n])
		out = append(out, f)
		msg = msg[n:]
		if flag == flagLast {
			return out
		}
	}
}

// reassembler puts messages back together from fragments.
type reassembler struct{ buf []byte }

// add takes one fragment. It returns the message once its last fragment is
// in (msg is then a fresh slice owned by the caller), or an error wrapping
// ErrProtocol for a malformed fragment or a message over MaxMessageSize.
func (r *reassembler) add(frame []byte) (msg []byte, done bool, err error) {
	if len(frame) == 0 {
		return nil, false, fmt.Errorf("%w: empty fragment", ErrProtocol)
	}
	if len(frame) > maxFragment {
		return nil, false, fmt.Errorf("%w: fragment of %d bytes", ErrProtocol, len(frame))
	}
	if len(r.buf)+len(frame)-1 > MaxMessageSize {
		return nil, false, fmt.Errorf("%w: message over %d bytes", ErrProtocol, MaxMessageSize)
	}
	switch frame[0] {
	case flagMore:
		r.buf = append(r.buf, frame[1:]...)
		return nil, false, nil
	case flagLast:
		msg = append(r.buf, frame[1:]...)
		if msg == nil {
			msg = []byte{}
		}
		r.buf = nil
		return msg, true, nil
	}
	return nil, false, fmt.Errorf("%w: unknown fragment flag %d", ErrProtocol, frame[0])
}
