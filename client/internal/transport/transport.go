// Package transport carries the SDK's frames to natterd: over a TLS stream
// (native clients given host:port) or as WebSocket messages (browsers, and
// any client given a ws:// or wss:// address). It is separate from package
// client because it is the one part of a connection that differs by
// platform (dial_native.go, dial_js.go) and it needs none of the Client's
// state: the Client holds a Conn and knows nothing of TCP, TLS or
// WebSocket beyond the options it passes to Dial.
package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/natterim/natter/wire"
)

// maxInFrame is the largest frame the SDK accepts from the server.
const maxInFrame = 16 << 20

// Conn is one connection's way of carrying frames. The Client's writer
// goroutine owns the writes, its reader goroutine the reads.
type Conn interface {
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

// DialFunc opens a TCP connection (the SDK's Options.Dialer).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dial opens a Conn to the server at addr: WebSocket for a ws:// or wss://
// address, else what the platform does with host:port (TCP and TLS
// natively; an error in a browser). tc is the TLS configuration (a
// browser does TLS itself and ignores it); dial opens TCP connections,
// for host:port and, natively, for WebSocket.
func Dial(ctx context.Context, addr string, tc *tls.Config, dial DialFunc) (Conn, error) {
	if isWebSocketAddr(addr) {
		return dialWebSocket(ctx, addr, wsDialOptions(tc, dial))
	}
	return dialHostPort(ctx, addr, tc, dial)
}

// isWebSocketAddr reports whether addr is a WebSocket URL rather than
// host:port.
func isWebSocketAddr(addr string) bool {
	return strings.HasPrefix(addr, "wss://") || strings.HasPrefix(addr, "ws://")
}

// ServerHost returns the host name or IP of the server address addr
// (host:port or a ws:// or wss:// URL): the TLS server name, and where
// natterd's STUN/TURN service is.
func ServerHost(addr string) (string, error) {
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

// streamConn carries length-prefixed frames over a byte stream (TLS).
type streamConn struct {
	nc net.Conn
	r  *wire.Reader
	bw *bufio.Writer
}

func newStreamConn(nc net.Conn) *streamConn {
	return &streamConn{nc: nc, r: wire.NewReader(nc, maxInFrame), bw: bufio.NewWriterSize(nc, 8<<10)}
}

func (s *streamConn) ReadFrame() (wire.Frame, error)    { return s.r.ReadFrame() }
func (s *streamConn) SetReadDeadline(t time.Time) error { return s.nc.SetReadDeadline(t) }
func (s *streamConn) Close() error                      { return s.nc.Close() }

func (s *streamConn) WriteFrames(frames [][]byte, deadline time.Time) error {
	s.nc.SetWriteDeadline(deadline)
	for _, f := range frames {
		if _, err := s.bw.Write(f); err != nil {
			return err
		}
	}
	return s.bw.Flush()
}
