package session

import (
	"context"
	"errors"
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

// StreamConn carries frames over a byte stream (TLS/TCP).
type StreamConn struct {
	c   net.Conn
	r   *wire.Reader
	buf []byte // reused for batched writes
}

// NewStreamConn wraps c, refusing inbound frames over maxFrame bytes. c is
// read unbuffered: a TLS connection buffers a whole record already.
func NewStreamConn(c net.Conn, maxFrame int) *StreamConn {
	return &StreamConn{c: c, r: wire.NewUnbufferedReader(c, maxFrame)}
}

// ReadFrame implements Conn.
func (s *StreamConn) ReadFrame() (wire.Frame, error) { return s.r.ReadFrame() }

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
	b := s.buf[:0]
	for _, f := range frames {
		b = append(b, f...)
	}
	_, err := s.c.Write(b)
	if cap(b) <= 64<<10 { // keep a modest buffer; let big ones go
		s.buf = b[:0]
	} else {
		s.buf = nil
	}
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
