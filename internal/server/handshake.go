package server

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/natterim/natter/internal/session"
	"github.com/natterim/natter/wire"
)

// Handshaking connections: natter_handshaking_connections{transport} counts
// the connections a listener has accepted that natterd has not welcomed
// yet, so that an operator can see a handshake flood (which costs TLS work
// and a file descriptor each, and which natter_connections does not show
// while the TLS handshake lasts).
//
// A connection counts from the moment it is accepted until the first of:
// natterd writes it a Welcome (the answer to a valid Hello), it closes, or
// (on the HTTPS listener) a request other than the WebSocket upgrade
// arrives. So it covers the TLS handshake, the HTTP request and WebSocket
// upgrade, and the wait for Hello; each of those ends at the handshake
// timeout (--handshake-timeout).

// handshakeListener counts the connections it accepts as handshaking.
type handshakeListener struct {
	net.Listener
	g prometheus.Gauge
}

// Accept implements net.Listener; the connection is a *handshakeConn.
func (l handshakeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.g.Inc()
	return &handshakeConn{Conn: c, g: l.g}, nil
}

// handshakeConn is an accepted connection that counts as handshaking until
// done is called (by Close at the latest).
type handshakeConn struct {
	net.Conn
	g    prometheus.Gauge
	once sync.Once
}

// done uncounts the connection; later calls, and calls on nil, do nothing.
func (c *handshakeConn) done() {
	if c != nil {
		c.once.Do(c.g.Dec)
	}
}

// Close implements net.Conn.
func (c *handshakeConn) Close() error {
	c.done()
	return c.Conn.Close()
}

// handshakeOf returns the handshakeConn under c (a TLS connection over one
// or over a session.RecordConn over one, or one itself), or nil.
func handshakeOf(c net.Conn) *handshakeConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if rc, ok := c.(*session.RecordConn); ok {
		c = rc.Conn
	}
	hc, _ := c.(*handshakeConn)
	return hc
}

// welcomeWatch is a session.Conn that ends its connection's handshake when
// natterd writes the Welcome.
type welcomeWatch struct {
	session.Conn
	hc   *handshakeConn
	seen bool // a Welcome was written; only the connection's writer uses it
}

// watchWelcome wraps c so that hc is done once c is welcomed or closed.
// hc may be nil, and then c is returned as it is.
func watchWelcome(c session.Conn, hc *handshakeConn) session.Conn {
	if hc == nil {
		return c
	}
	return &welcomeWatch{Conn: c, hc: hc}
}

// WriteFrames implements session.Conn.
func (w *welcomeWatch) WriteFrames(frames [][]byte, deadline time.Time) error {
	err := w.Conn.WriteFrames(frames, deadline)
	if err == nil && !w.seen {
		for _, f := range frames {
			if len(f) > 4 && wire.Type(f[4]) == wire.TWelcome { // frames as wire.Encode makes them: length, then type
				w.seen = true
				w.hc.done()
				break
			}
		}
	}
	return err
}

// Idle passes on the wrapped connection's Idle (see hub.Start), false if it
// has none.
func (w *welcomeWatch) Idle() bool {
	p, ok := w.Conn.(interface{ Idle() bool })
	return ok && p.Idle()
}

// WaitInput passes on the wrapped connection's WaitInput, if it has one.
func (w *welcomeWatch) WaitInput() {
	if p, ok := w.Conn.(interface{ WaitInput() }); ok {
		p.WaitInput()
	}
}

// Close implements session.Conn.
func (w *welcomeWatch) Close() error {
	w.hc.done()
	return w.Conn.Close()
}
