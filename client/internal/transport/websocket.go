package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/natterim/natter/wire"
)

// wsSubprotocol is the WebSocket subprotocol natterd's /ws speaks: one
// binary message per frame, without the frame's length prefix.
const wsSubprotocol = "natter.v1"

// wsConn carries frames as binary WebSocket messages.
type wsConn struct {
	c        *websocket.Conn
	deadline time.Time // read deadline; only the reader goroutine uses it
}

// dialWebSocket connects to natterd's /ws at url.
func dialWebSocket(ctx context.Context, url string, opts *websocket.DialOptions) (Conn, error) {
	c, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	if c.Subprotocol() != wsSubprotocol {
		closeWebSocket(c)
		return nil, fmt.Errorf("dial %s: the server does not speak %s", url, wsSubprotocol)
	}
	c.SetReadLimit(maxInFrame)
	return &wsConn{c: c}, nil
}

func (w *wsConn) SetReadDeadline(t time.Time) error { w.deadline = t; return nil }
func (w *wsConn) Close() error                      { return closeWebSocket(w.c) }

func (w *wsConn) ReadFrame() (wire.Frame, error) {
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if !w.deadline.IsZero() {
		ctx, cancel = context.WithDeadline(ctx, w.deadline)
	}
	defer cancel()
	typ, b, err := w.c.Read(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return wire.Frame{}, wsTimeout{}
		}
		return wire.Frame{}, err
	}
	if typ != websocket.MessageBinary {
		return wire.Frame{}, errors.New("text websocket message; frames are binary")
	}
	return wire.ParseMessage(b, maxInFrame)
}

func (w *wsConn) WriteFrames(frames [][]byte, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for _, f := range frames {
		if err := w.c.Write(ctx, websocket.MessageBinary, f[4:]); err != nil {
			return err
		}
	}
	return nil
}

// wsTimeout is the net.Error of a WebSocket read deadline, so the reader
// treats it like a TCP one.
type wsTimeout struct{}

func (wsTimeout) Error() string   { return "read deadline exceeded" }
func (wsTimeout) Timeout() bool   { return true }
func (wsTimeout) Temporary() bool { return true }
