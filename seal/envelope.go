package seal

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/natterim/natter"
)

// ErrBadEnvelope reports an envelope that does not parse.
var ErrBadEnvelope = errors.New("seal: malformed envelope")

// Limits the envelope decoder enforces.
const (
	maxWraps   = 256
	maxField   = 64 << 10
	magic      = "ns1"
	wrapChain  = 0 // wrapped with a session's message key
	wrapInit   = 1 // the same, and the session's signed init
	wrapSelf   = 2 // the sending device's own copy
	sidSize    = 16
	wrappedKey = 32 + 16
)

// envelope is a sealed message body: the content sealed once and its key
// wrapped for each device that may read it.
type envelope struct {
	From       natter.UserID
	FromDevice natter.DeviceID
	Body       []byte // AES-256-GCM of the plaintext under the content key
	Wraps      []wrap
}

// wrap is the content key wrapped for one device.
type wrap struct {
	User   natter.UserID
	Device natter.DeviceID
	Kind   byte
	SID    []byte // session ID (wrapChain, wrapInit)
	Index  uint32
	Init   *initHeader
	Seen   []byte // the latest session this sender holds from that device, if any
	Key    []byte
}

// initHeader opens a session: the HPKE encapsulation to a prekey of the
// recipient device, signed by the sending device.
type initHeader struct {
	Prekey uint32 // 0: the bundle's last-resort key
	Enc    []byte
	Sig    []byte
}

func (e *envelope) marshal() []byte {
	b := []byte(magic)
	b = appendBytes(b, []byte(e.From))
	b = appendBytes(b, []byte(e.FromDevice))
	b = appendBytes(b, e.Body)
	b = binary.AppendUvarint(b, uint64(len(e.Wraps)))
	for i := range e.Wraps {
		b = e.Wraps[i].append(b)
	}
	return b
}

// append appends the wrap's encoding to b.
func (w *wrap) append(b []byte) []byte {
	b = appendBytes(b, []byte(w.User))
	b = appendBytes(b, []byte(w.Device))
	b = append(b, w.Kind)
	if w.Kind != wrapSelf {
		b = append(b, w.SID...)
		b = binary.AppendUvarint(b, uint64(w.Index))
		if w.Kind == wrapInit {
			b = binary.AppendUvarint(b, uint64(w.Init.Prekey))
			b = appendBytes(b, w.Init.Enc)
			b = appendBytes(b, w.Init.Sig)
		}
		b = appendBytes(b, w.Seen)
	}
	return appendBytes(b, w.Key)
}

func appendBytes(b, f []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(f))), f...)
}

// parseEnvelope decodes an envelope. It checks structure only; what the
// fields say is checked when a wrap is opened.
func parseEnvelope(b []byte) (*envelope, error) {
	r := reader{b: b}
	if string(r.take(len(magic))) != magic {
		return nil, fmt.Errorf("%w: not a sealed body", ErrBadEnvelope)
	}
	e := &envelope{
		From:       natter.UserID(r.bytes()),
		FromDevice: natter.DeviceID(r.bytes()),
		Body:       r.bytes(),
	}
	n := r.uvarint()
	if n > maxWraps {
		return nil, fmt.Errorf("%w: %d wraps", ErrBadEnvelope, n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		w := wrap{User: natter.UserID(r.bytes()), Device: natter.DeviceID(r.bytes())}
		k := r.take(1)
		if len(k) == 1 {
			w.Kind = k[0]
		}
		switch w.Kind {
		case wrapChain, wrapInit:
			w.SID = r.take(sidSize)
			w.Index = r.uint32()
			if w.Kind == wrapInit {
				w.Init = &initHeader{Prekey: r.uint32(), Enc: r.bytes(), Sig: r.bytes()}
			}
			w.Seen = r.bytes()
			if len(w.Seen) != 0 && len(w.Seen) != sidSize {
				r.fail("seen session ID size")
			}
		case wrapSelf:
		default:
			r.fail(fmt.Sprintf("wrap kind %d", w.Kind))
		}
		w.Key = r.bytes()
		if r.err == nil && len(w.Key) != wrappedKey {
			r.fail("wrapped key size")
		}
		e.Wraps = append(e.Wraps, w)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return e, nil
}

// reader decodes the envelope's fields, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(why string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrBadEnvelope, why)
	}
	r.b = nil
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail("truncated")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) uint32() uint32 {
	v := r.uvarint()
	if v > 1<<32-1 {
		r.fail("number out of range")
		return 0
	}
	return uint32(v)
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > maxField {
		r.fail("field too long")
		return nil
	}
	return r.take(int(n))
}
