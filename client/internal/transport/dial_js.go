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

// closeWebSocket closes c without waiting. In the browser coder/websocket's
// CloseNow asks for status 1001, which the page's WebSocket.close refuses
// (only 1000 and 3000–4999 are allowed there): the socket would stay open
// and its reader blocked. Close with 1000 does the closing handshake, so it
// runs on its own goroutine; the reader returns once the socket is closed.
func closeWebSocket(c *websocket.Conn) error {
	go c.Close(websocket.StatusNormalClosure, "")
	return nil
}
