//go:build !js

package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// dialHostPort connects over TCP and TLS to host:port.
func (c *Client) dialHostPort(ctx context.Context) (transport, error) {
	nc, err := c.opts.Dialer(ctx, "tcp", c.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", c.opts.Addr, err)
	}
	tc := tls.Client(nc, c.tlsConfig)
	stop := context.AfterFunc(ctx, func() { tc.SetDeadline(time.Now()) })
	defer stop()
	dl, _ := ctx.Deadline()
	tc.SetDeadline(dl)
	if err := tc.HandshakeContext(ctx); err != nil {
		tc.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", c.opts.Addr, err)
	}
	if !stop() {
		tc.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", c.opts.Addr, ctx.Err())
	}
	tc.SetDeadline(time.Time{})
	return newStreamTransport(tc), nil
}

// wsDialOptions: the native WebSocket dial trusts the server as the TLS
// connection would (Options.TLSConfig) and dials with Options.Dialer.
func (c *Client) wsDialOptions() *websocket.DialOptions {
	return &websocket.DialOptions{
		Subprotocols: []string{wsSubprotocol},
		HTTPClient: &http.Client{Transport: &http.Transport{
			TLSClientConfig: c.tlsConfig,
			DialContext:     c.opts.Dialer,
		}},
	}
}
