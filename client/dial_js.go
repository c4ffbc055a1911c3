//go:build js

package client

import (
	"context"
	"fmt"

	"github.com/coder/websocket"
)

// dialHostPort: a browser cannot open TCP connections; it connects over
// WebSocket, to a wss:// address.
func (c *Client) dialHostPort(ctx context.Context) (transport, error) {
	return nil, fmt.Errorf("dial %s: a browser connects over WebSocket: give natterd's wss://HOST:PORT/ws address", c.opts.Addr)
}

// wsDialOptions: the browser does TLS itself, with its own trust.
func (c *Client) wsDialOptions() *websocket.DialOptions {
	return &websocket.DialOptions{Subprotocols: []string{wsSubprotocol}}
}
