package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/natterim/natter/client/internal/transport"
	"github.com/natterim/natter/wire"
)

// errLocalClose is the cause recorded for a connection the Client closed.
var errLocalClose = errors.New("closed by the client")

// conn is one connection to the server with its reader and writer
// goroutines. A Client has at most one connection in use at a time; a new
// one is made for every reconnection.
type conn struct {
	c         *Client
	tr        transport.Conn
	welcome   wire.Welcome
	keepalive time.Duration

	// authed is set once the server accepted a Signup, Login or Resume on
	// this connection. Guarded by c.mu.
	authed bool

	qmu   sync.Mutex
	q     [][]byte      // encoded frames waiting for the writer
	wake  chan struct{} // (cap 1) frames were queued
	space chan struct{} // (cap 1) the writer took frames

	dead     chan struct{} // closed when the connection is finished
	deadOnce sync.Once
	err      error // why it finished; written before dead is closed

	drain     chan struct{} // closed to make the writer flush and close
	drainOnce sync.Once

	bye *wire.Bye // the server's Bye, if any; guarded by qmu
}

// connectTo opens a connection to t: TCP and TLS or a WebSocket, Hello
// and Welcome. It starts the connection's reader and writer. A refusal by
// the server is returned as a wrapped *wire.Err.
func (c *Client) connectTo(ctx context.Context, t target) (*conn, error) {
	tc, err := transport.Dial(ctx, t.addr, c.tlsFor(t), c.opts.Dialer)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { tc.Close() })
	defer stop()
	dl, _ := ctx.Deadline()
	hello, err := wire.Encode(wire.Hello{V: wire.Version, Client: c.opts.ClientName})
	if err != nil {
		tc.Close()
		return nil, err
	}
	if err := tc.WriteFrames([][]byte{hello}, dl); err != nil {
		tc.Close()
		return nil, fmt.Errorf("send hello to %s: %w", t.addr, ctxErr(ctx, err))
	}
	tc.SetReadDeadline(dl)
	f, err := tc.ReadFrame()
	if err != nil {
		tc.Close()
		return nil, fmt.Errorf("read welcome from %s: %w", t.addr, ctxErr(ctx, err))
	}
	v, err := wire.Decode(f)
	if err != nil {
		tc.Close()
		return nil, fmt.Errorf("read welcome from %s: %w", t.addr, err)
	}
	var w wire.Welcome
	switch v := v.(type) {
	case *wire.Welcome:
		w = *v
	case *wire.Error:
		tc.Close()
		return nil, fmt.Errorf("hello to %s: %w", t.addr, v.AsError())
	case *wire.Bye:
		tc.Close()
		return nil, fmt.Errorf("hello to %s: %w", t.addr, &wire.Err{Code: v.Code, Message: v.Message})
	default:
		tc.Close()
		return nil, fmt.Errorf("hello to %s: %w: got %s, want welcome", t.addr, wire.ErrBadPayload, f.Type)
	}
	if w.V != wire.Version {
		tc.Close()
		return nil, fmt.Errorf("hello to %s: server speaks version %d, want %d: %w", t.addr, w.V, wire.Version,
			&wire.Err{Code: wire.CodeUnsupportedVersion, Message: "version mismatch"})
	}
	if !stop() {
		return nil, fmt.Errorf("hello to %s: %w", t.addr, ctx.Err())
	}
	tc.SetReadDeadline(time.Time{})

	cn := &conn{
		c:         c,
		tr:        tc,
		welcome:   w,
		keepalive: time.Duration(w.Keepalive) * time.Second,
		wake:      make(chan struct{}, 1),
		space:     make(chan struct{}, 1),
		dead:      make(chan struct{}),
		drain:     make(chan struct{}),
	}
	if cn.keepalive <= 0 {
		cn.keepalive = defaultKeepalive
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		tc.Close()
		return nil, ErrClosed
	}
	c.conns[cn] = struct{}{}
	c.target = t
	c.wg.Add(2)
	go cn.readLoop()
	go cn.writeLoop()
	c.log.Debug("connected", "addr", t.addr, "server", w.Server, "node", w.Node, "keepalive", cn.keepalive)
	return cn, nil
}

// ctxErr prefers the context's error to the I/O error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// fail finishes the connection with err as its cause.
func (cn *conn) fail(err error) {
	cn.deadOnce.Do(func() {
		cn.err = err
		close(cn.dead)
		cn.tr.Close()
	})
}

// alive reports whether the connection is not finished.
func (cn *conn) alive() bool {
	select {
	case <-cn.dead:
		return false
	default:
		return true
	}
}

// shutdown asks the writer to flush what is queued and close the
// connection.
func (cn *conn) shutdown() {
	cn.drainOnce.Do(func() { close(cn.drain) })
}

// lostErr is the error for calls that were waiting on the connection.
func (cn *conn) lostErr() error {
	return fmt.Errorf("%w: %w", ErrConnLost, cn.cause())
}

// cause returns why the connection finished: the server's Bye as a
// *wire.Err if it said one, else the I/O error. Only valid once dead.
func (cn *conn) cause() error {
	cn.qmu.Lock()
	bye := cn.bye
	cn.qmu.Unlock()
	if bye != nil {
		return &wire.Err{Code: bye.Code, Message: bye.Message}
	}
	return cn.err
}

// setBye records the server's Bye.
func (cn *conn) setBye(b *wire.Bye) {
	cn.qmu.Lock()
	cn.bye = b
	cn.qmu.Unlock()
}

// enqueue queues an encoded frame for the writer, waiting while the queue
// is full. It fails if the connection finishes or ctx ends first.
func (cn *conn) enqueue(ctx context.Context, frame []byte) error {
	for {
		if !cn.alive() {
			return cn.lostErr()
		}
		cn.qmu.Lock()
		if len(cn.q) < sendQueueLen {
			cn.q = append(cn.q, frame)
			cn.qmu.Unlock()
			signal(cn.wake)
			return nil
		}
		cn.qmu.Unlock()
		select {
		case <-cn.space:
		case <-cn.dead:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// tryEnqueue queues a frame if there is room, without waiting.
func (cn *conn) tryEnqueue(frame []byte) bool {
	if !cn.alive() {
		return false
	}
	cn.qmu.Lock()
	ok := len(cn.q) < sendQueueLen
	if ok {
		cn.q = append(cn.q, frame)
	}
	cn.qmu.Unlock()
	if ok {
		signal(cn.wake)
	}
	return ok
}

// signal does a non-blocking send on a channel of capacity 1.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// writeLoop owns the socket's writes. It drains the queue into a buffered
// writer and flushes only when the queue is empty, so that frames queued
// together go out in one write. It sends a Ping every third of the
// keepalive.
func (cn *conn) writeLoop() {
	defer cn.c.wg.Done()
	ping, _ := wire.Encode(wire.Ping{})
	tick := time.NewTicker(cn.keepalive / 3)
	defer tick.Stop()
	draining := false
	var out [][]byte // frames taken from the queue, not written yet
	for {
		cn.qmu.Lock()
		batch := cn.q
		cn.q = nil
		cn.qmu.Unlock()
		if len(batch) > 0 {
			signal(cn.space)
			out = append(out, batch...)
			continue // pick up what was queued meanwhile before writing
		}
		if len(out) > 0 {
			timeout := writeTimeout
			if draining {
				timeout = drainTimeout
			}
			if err := cn.tr.WriteFrames(out, time.Now().Add(timeout)); err != nil {
				// A server that ends a session says why (a Bye) and
				// closes; a write that races the close fails first.
				// Let the reader get to the Bye before the write's
				// error is taken for the cause, but not for long.
				t := time.NewTimer(byeGrace)
				select {
				case <-cn.dead:
				case <-t.C:
					cn.fail(fmt.Errorf("write: %w", err))
				}
				t.Stop()
				return
			}
			clear(out)
			out = out[:0]
		}
		if draining {
			cn.fail(errLocalClose)
			return
		}
		select {
		case <-cn.wake:
		case <-tick.C:
			out = append(out, ping)
		case <-cn.drain:
			draining = true
		case <-cn.dead:
			return
		}
	}
}

// byeGrace is how long a failed write waits for the reader to find the
// server's Bye (or the end of the stream) before its own error ends the
// connection.
const byeGrace = 500 * time.Millisecond

// readLoop reads and dispatches frames until the connection fails, then
// tells the Client.
func (cn *conn) readLoop() {
	defer cn.c.wg.Done()
	for {
		cn.tr.SetReadDeadline(time.Now().Add(cn.keepalive))
		f, err := cn.tr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = fmt.Errorf("server silent for %s: %w", cn.keepalive, err)
			}
			cn.fail(fmt.Errorf("read: %w", err))
			break
		}
		v, err := wire.Decode(f)
		if err != nil {
			// A newer server's frame, or one this version cannot parse:
			// skip it. A Msg skipped here leaves a gap that Sync fills
			// or, at worst, is never acknowledged.
			cn.c.log.Warn("skipping undecodable frame", "type", f.Type, "err", err)
			continue
		}
		if err := cn.c.handleFrame(cn, v); err != nil {
			cn.fail(err)
			break
		}
	}
	cn.c.connLost(cn)
}
