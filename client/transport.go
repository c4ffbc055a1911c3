package client

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/natterim/natter/wire"
)

// transport is one connection's way of carrying frames: a TLS stream
// (native clients) or WebSocket messages (browsers; any client given a
// ws:// or wss:// address). The writer goroutine owns the writes, the
// reader goroutine the reads.
type transport interface {
	// ReadFrame reads the next frame, failing with a net.Error whose
	// Timeout is true once the read deadline passes.
	ReadFrame() (wire.Frame, error)
	SetReadDeadline(t time.Time) error
	// WriteFrames writes encoded frames (each with its 4-byte length
	// prefix, as wire.Encode makes them) before the deadline, as few
	// writes as the transport allows.
	WriteFrames(frames [][]byte, deadline time.Time) error
	Close() error
}

// isWebSocketAddr reports whether addr is a WebSocket URL rather than
// host:port.
func isWebSocketAddr(addr string) bool {
	return strings.HasPrefix(addr, "wss://") || strings.HasPrefix(addr, "ws://")
}

// serverHost returns the host name or IP of the server address addr
// (host:port or a ws:// or wss:// URL): the TLS server name, and where
// natterd's STUN/TURN service is.
func serverHost(addr string) (string, error) {
	if isWebSocketAddr(addr) {
		u, err := url.Parse(addr)
		if err != nil {
			return "", err
		}
		if u.Hostname() == "" {
			return "", fmt.Errorf("%q names no host", addr)
		}
		return u.Hostname(), nil
	}
	host, _, err := net.SplitHostPort(addr)
	return host, err
}

// dial opens the transport to the server: WebSocket for a ws:// or wss://
// address, else what the platform does with host:port (dial_native.go,
// dial_js.go).
func (c *Client) dial(ctx context.Context) (transport, error) {
	if isWebSocketAddr(c.opts.Addr) {
		return c.dialWebSocket(ctx, c.opts.Addr)
	}
	return c.dialHostPort(ctx)
}

// streamTransport carries length-prefixed frames over a byte stream (TLS).
type streamTransport struct {
	nc net.Conn
	r  *wire.Reader
	bw *bufio.Writer
}

func newStreamTransport(nc net.Conn) *streamTransport {
	return &streamTransport{nc: nc, r: wire.NewReader(nc, maxInFrame), bw: bufio.NewWriterSize(nc, 8<<10)}
}

func (s *streamTransport) ReadFrame() (wire.Frame, error)    { return s.r.ReadFrame() }
func (s *streamTransport) SetReadDeadline(t time.Time) error { return s.nc.SetReadDeadline(t) }
func (s *streamTransport) Close() error                      { return s.nc.Close() }

func (s *streamTransport) WriteFrames(frames [][]byte, deadline time.Time) error {
	s.nc.SetWriteDeadline(deadline)
	for _, f := range frames {
		if _, err := s.bw.Write(f); err != nil {
			return err
		}
	}
	return s.bw.Flush()
}
