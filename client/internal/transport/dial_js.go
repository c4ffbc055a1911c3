//go:build js

package transport

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/coder/websocket"
)

// dialHostPort: a browser cannot open TCP connections; it connects over
// WebSocket, to a wss:// address.
func dialHostPort(_ context.Context, addr string, _ *tls.Config, _ DialFunc) (Conn, error) {
	return nil, fmt.Errorf("dial %s: a browser connects over WebSocket: give natterd's wss://HOST:PORT/ws address", addr)
}

// wsDialOptions: the browser does TLS itself, with its own trust, and
// opens its own connections.
func wsDialOptions(*tls.Config, DialFunc) *websocket.DialOptions {
	return &websocket.DialOptions{Subprotocols: []string{wsSubprotocol}}
}
