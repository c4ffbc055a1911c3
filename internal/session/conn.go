package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/coder/websocket"
	"github.com/natterim/natter/wire"
)

// Conn is one client connection, whatever carries it.
type Conn interface {
	// ReadFrame reads the next frame, waiting at most until the deadline
	// set with SetReadDeadline. The payload is valid until the next call.
	ReadFrame() (wire.Frame, error)
	SetReadDeadline(t time.Time) error
	// WriteFrames writes length-prefixed frames (as made by wire.Encode) in
	// as few writes as the transport allows.
	WriteFrames(frames [][]byte, deadline time.Time) error
	// Close closes the connection at once.
	Close() error
	// RemoteAddr is the peer's address, for logs and per-address limits.
	RemoteAddr() net.Addr
	// Transport names the carrier ("tls" or "ws"), for logs and metrics.
	Transport() string
}

// StreamConn carries frames over a byte stream (TLS/TCP). Between frames
// it holds no buffer (see Buffers): it reads into a buffer lent while
// there is input to read, and copies a batch of writes into one lent for
// the write.
//
// Over a RecordConn it can also say when it has nothing buffered (Idle)
// and wait for input without a read (WaitInput): package hub then lets an
// idle connection's goroutine end, and starts one when input comes.
type StreamConn struct {
	c    net.Conn
	rec  *RecordConn // nil: Idle is always false
	max  int
	bufs *Buffers

	in   *[]byte // lent read buffer; (*in)[r:w] is read and not yet returned
	r, w int
	// more: the last Read of c filled the space it was given, so c may
	// hold more plaintext.
	more  bool
	frame *[]byte // a frame too large for in, lent until the next ReadFrame
}

// readChunk is the space a StreamConn reads into: a TLS record's largest
// plaintext (16 KiB) and a frame header, so that one Read takes all that
// crypto/tls decrypted.
const readChunk = 16<<10 + 4

// NewStreamConn wraps c, refusing inbound frames over maxFrame bytes
// (<= 0: wire.DefaultMaxFrame), with buffers lent by bufs (nil: allocated
// as needed). rec, if not nil, is the RecordConn under c (a tls.Conn),
// which makes Idle and WaitInput work.
func NewStreamConn(c net.Conn, maxFrame int, bufs *Buffers, rec *RecordConn) *StreamConn {
	if maxFrame <= 0 {
		maxFrame = wire.DefaultMaxFrame
	}
	return &StreamConn{c: c, rec: rec, max: maxFrame, bufs: bufs}
}

// ReadFrame implements Conn, with wire.Reader's errors: io.EOF only at a
// clean frame boundary, io.ErrUnexpectedEOF for a truncated frame, and
// wire.ErrFrameTooLarge or wire.ErrEmptyFrame for a bad length (without
// reading the oversized body).
func (s *StreamConn) ReadFrame() (wire.Frame, error) {
	s.bufs.put(s.frame)
	s.frame = nil
	if err := s.fill(4); err != nil {
		if err == io.EOF && s.r < s.w {
			err = io.ErrUnexpectedEOF
		}
		return wire.Frame{}, err
	}
	in := *s.in
	n := int(binary.BigEndian.Uint32(in[s.r:]))
	if n == 0 {
		return wire.Frame{}, wire.ErrEmptyFrame
	}
	if uint64(n) > uint64(s.max) {
		return wire.Frame{}, fmt.Errorf("%w: %d bytes, limit %d", wire.ErrFrameTooLarge, n, s.max)
	}
	var b []byte
	if 4+n <= cap(in) {
		if err := s.fill(4 + n); err != nil {
			return wire.Frame{}, unexpected(err)
		}
		in = *s.in
		b = in[s.r+4 : s.r+4+n]
		s.r += 4 + n
	} else {
		// Larger than the read buffer: into a buffer of its own.
		s.frame = s.bufs.get(n)
		b = *s.frame
		k := copy(b, in[s.r+4:s.w])
		s.r, s.w = 0, 0
		for k < n {
			m, err := s.c.Read(b[k:])
			k += m
			s.more = k == n
			if err != nil && k < n {
				return wire.Frame{}, unexpected(err)
			}
		}
	}
	return wire.Frame{Type: wire.Type(b[0]), Payload: b[1:]}, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// fill reads until at least n bytes are buffered, n <= readChunk.
func (s *StreamConn) fill(n int) error {
	for s.w-s.r < n {
		if s.in == nil {
			s.in = s.bufs.get(readChunk)
			s.r, s.w = 0, 0
		}
		in := (*s.in)[:cap(*s.in)]
		if len(in)-s.r < n || len(in)-s.w < readChunk && s.r > 0 {
			s.w = copy(in, in[s.r:s.w])
			s.r = 0
		}
		m, err := s.c.Read(in[s.w:])
		s.more = m == len(in)-s.w
		s.w += m
		if err != nil && s.w-s.r < n {
			return err
		}
	}
	return nil
}

// Idle reports whether the StreamConn has nothing buffered, no frame of
// its own and nothing in crypto/tls, so that the next input is in the
// socket; if so it gives its buffers back, which ends the validity of the
// last frame's payload. It is always false without a RecordConn.
func (s *StreamConn) Idle() bool {
	if s.rec == nil || s.r < s.w || s.more {
		return false
	}
	s.bufs.put(s.in)
	s.bufs.put(s.frame)
	s.in, s.frame = nil, nil
	s.r, s.w = 0, 0
	return true
}

// WaitInput waits until the socket has input (or its end, an error, or
// the read deadline), without reading it: the ReadFrame that follows
// reads it or meets the error. Call it only after Idle said true.
func (s *StreamConn) WaitInput() { s.rec.WaitInput() }

// SetReadDeadline implements Conn.
func (s *StreamConn) SetReadDeadline(t time.Time) error { return s.c.SetReadDeadline(t) }

// WriteFrames implements Conn: the frames are copied into one buffer and
// written with one Write, so TLS seals them into as few records as it can.
func (s *StreamConn) WriteFrames(frames [][]byte, deadline time.Time) error {
	if err := s.c.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if len(frames) == 1 {
		_, err := s.c.Write(frames[0])
		return err
	}
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	b := s.bufs.get(n)
	*b = (*b)[:0]
	for _, f := range frames {
		*b = append(*b, f...)
	}
	_, err := s.c.Write(*b)
	s.bufs.put(b)
	return err
}

// Close implements Conn.
func (s *StreamConn) Close() error { return s.c.Close() }

// RemoteAddr implements Conn.
func (s *StreamConn) RemoteAddr() net.Addr { return s.c.RemoteAddr() }

// Transport implements Conn.
func (s *StreamConn) Transport() string { return "tls" }

// WSConn carries frames as binary WebSocket messages (one frame each, without
// the length prefix).
type WSConn struct {
	c        *websocket.Conn
	remote   net.Addr
	maxFrame int
	deadline time.Time
}

// NewWSConn wraps an accepted WebSocket connection.
func NewWSConn(c *websocket.Conn, remote net.Addr, maxFrame int) *WSConn {
	if maxFrame <= 0 {
		maxFrame = wire.DefaultMaxFrame
	}
	c.SetReadLimit(int64(maxFrame) + 1)
	return &WSConn{c: c, remote: remote, maxFrame: maxFrame}
}

// ErrTextMessage is returned for a text WebSocket message: the protocol uses
// binary messages only.
var ErrTextMessage = errors.New("text websocket message; frames are binary")

// ReadFrame implements Conn.
func (w *WSConn) ReadFrame() (wire.Frame, error) {
	ctx, cancel := context.Background(), func() {}
	if !w.deadline.IsZero() {
		ctx, cancel = context.WithDeadline(ctx, w.deadline)
	}
	defer cancel()
	typ, b, err := w.c.Read(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return wire.Frame{}, timeoutError{}
		}
		return wire.Frame{}, err
	}
	if typ != websocket.MessageBinary {
		return wire.Frame{}, ErrTextMessage
	}
	return wire.ParseMessage(b, w.maxFrame)
}

// SetReadDeadline implements Conn.
func (w *WSConn) SetReadDeadline(t time.Time) error { w.deadline = t; return nil }

// WriteFrames implements Conn: one binary message per frame.
func (w *WSConn) WriteFrames(frames [][]byte, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for _, f := range frames {
		if err := w.c.Write(ctx, websocket.MessageBinary, f[4:]); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Conn.
func (w *WSConn) Close() error { return w.c.CloseNow() }

// RemoteAddr implements Conn.
func (w *WSConn) RemoteAddr() net.Addr { return w.remote }

// Transport implements Conn.
func (w *WSConn) Transport() string { return "ws" }

// timeoutError is a net.Error that reports a timeout, so callers treat a
// WebSocket read deadline like a TCP one.
type timeoutError struct{}

func (timeoutError) Error() string   { return "read deadline exceeded" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
