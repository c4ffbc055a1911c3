//go:build !js

package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// dialHostPort connects over TCP (with dial) and TLS (with tc) to addr,
// host:port.
func dialHostPort(ctx context.Context, addr string, tc *tls.Config, dial DialFunc) (Conn, error) {
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	tlc := tls.Client(nc, tc)
	stop := context.AfterFunc(ctx, func() { tlc.SetDeadline(time.Now()) })
	defer stop()
	dl, _ := ctx.Deadline()
	tlc.SetDeadline(dl)
	if err := tlc.HandshakeContext(ctx); err != nil {
		tlc.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	if !stop() {
		tlc.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, ctx.Err())
	}
	tlc.SetDeadline(time.Time{})
	return newStreamConn(tlc), nil
}

// wsDialOptions: the native WebSocket dial trusts the server as the TLS
// connection would (tc) and opens its TCP connection with dial.
func wsDialOptions(tc *tls.Config, dial DialFunc) *websocket.DialOptions {
	return &websocket.DialOptions{
		Subprotocols: []string{wsSubprotocol},
		HTTPClient: &http.Client{Transport: &http.Transport{
			TLSClientConfig: tc,
			DialContext:     dial,
		}},
	}
}

// closeWebSocket closes c at once, without the closing handshake.
func closeWebSocket(c *websocket.Conn) error { return c.CloseNow() }
