package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/session"
	"github.com/natterim/natter/wire"
)

// client is one connection's protocol state. Its reader runs in run; its
// writes go through w, which runs a goroutine only while it has something
// to write.
type client struct {
	h    *Hub
	conn session.Conn
	w    *session.Writer
	id   string
	log  *slog.Logger
	addr string // remote host, for throttling

	// Set once at login, then read-only (read by the bus callback only after
	// the subscription exists).
	user      natter.UserID
	device    natter.DeviceID
	tokenHash []byte
	quiet     bool // a quiet session: no presence, no connection info

	// ended, if not nil, is called when the connection has ended (Start).
	ended func()

	// Reader-goroutine state (the reader's goroutine changes when the
	// connection waits for input: see serve).
	helloDone    bool      // the Hello was answered
	cursor       uint64    // highest inbox seq this device acknowledged
	storedCursor uint64    // the cursor as last written to the store
	cursorAt     time.Time // when it was written
	status       natter.Status
	text         string
	reach        []natter.Candidate
	since        time.Time
	sub          natter.Subscription
	errCount     int

	slow   atomic.Bool              // the queue overflowed
	p2p    map[natter.UserID]string // peer-to-peer channels this connection reported, by peer
	ending atomic.Pointer[string]   // why the reader is to stop (Bye queued, kicked, overflowed)

	mu      sync.Mutex // guards live, held and through
	live    bool       // events go straight to w; before that they are held
	held    []event
	through uint64
}

// maxHeld bounds the events held while a client's stored inbox is replayed.
const maxHeld = 10_000

func (h *Hub) newClient(conn session.Conn) *client {
	id := h.cfg.Node + "-" + strconv.FormatUint(h.seq.Add(1), 36)
	host := conn.RemoteAddr().String()
	if hp, _, err := net.SplitHostPort(host); err == nil {
		host = hp
	}
	return &client{
		h: h, conn: conn, id: id, addr: host,
		w: session.NewWriter(conn, h.cfg.MaxQueueBytes, h.cfg.WriteTimeout),
		log: connLogger(h.log, slog.String("conn", id), slog.String("remote", conn.RemoteAddr().String()),
			slog.String("transport", conn.Transport())),
	}
}

// run serves the connection in the calling goroutine until it ends (Serve).
func (c *client) run() {
	c.begin()
	reason, _ := c.readLoop(nil)
	c.end(reason)
}

// parker is a Conn that can tell when it has nothing buffered and wait for
// input without reading (session.StreamConn over TLS): an idle connection
// then needs no goroutine blocked in a read, whose stack was a third of
// natterd's memory per idle connection (docs/performance.md).
type parker interface {
	// Idle reports whether the next input is in the socket, and then
	// ends the validity of the last frame's payload.
	Idle() bool
	// WaitInput waits until the socket has input, its end, an error, or
	// the read deadline; the next ReadFrame reads it or meets the error.
	WaitInput()
}

// serve reads and handles frames until the connection ends, and then ends
// it; or, with a parker, until the connection has nothing buffered: then it
// leaves a new goroutine waiting for input (wait) and returns, so that a
// goroutine with the stack that handling frames grew (a login, a replay)
// ends, and a connection waits for input on a small stack.
func (c *client) serve(p parker) {
	if reason, parked := c.readLoop(p); !parked {
		c.end(reason)
	}
}

// wait waits for input and serves it (see serve).
func (c *client) wait(p parker) {
	p.WaitInput()
	c.serve(p)
}

// begin starts the connection's life: the connection gauge and the Hello's
// deadline.
func (c *client) begin() {
	h := c.h
	h.met.connections.WithLabelValues(c.conn.Transport()).Inc()
	c.log.Debug("connected")
	c.conn.SetReadDeadline(h.now().Add(h.cfg.HandshakeTimeout))
}

// end ends the connection once its reader is done, for the reason why.
func (c *client) end(reason string) {
	h := c.h
	// The reader is done: stop taking bus events, drop the live session,
	// tell contacts, then let the writer flush what it has (a Bye, an
	// error). The writer needs no goroutine of its own: one runs while
	// there is something to write (session.Writer).
	c.cleanup()
	c.w.Finish(nil)
	t := time.NewTimer(h.cfg.WriteTimeout)
	select {
	case <-c.w.Done():
		if err := c.w.Err(); err != nil && !errors.Is(err, session.ErrOverflow) && reason == "" {
			reason = "write: " + err.Error()
		}
	case <-t.C:
		c.w.Abort(errors.New("writer timed out"))
	}
	t.Stop()
	c.conn.Close()
	if errors.Is(c.w.Err(), session.ErrOverflow) {
		reason = "slow consumer"
	}
	h.met.disconnects.WithLabelValues(reasonLabel(reason)).Inc()
	c.log.Info("disconnected", "reason", reason) // c.log carries user and device once logged in
	h.met.connections.WithLabelValues(c.conn.Transport()).Dec()
	if c.ended != nil {
		c.ended()
	}
}

func reasonLabel(r string) string {
	switch {
	case r == "eof":
		return "closed"
	case r == "timeout", r == "logout", r == "slow consumer", r == "shutdown", r == "replaced":
		return r
	case r == "password changed":
		return "password_changed"
	case r == "device removed":
		return "device_removed"
	}
	return "error"
}

// readLoop reads and handles frames until the connection ends; it returns
// why. With a parker, it returns parked instead when the connection has
// nothing buffered after a frame, having started a goroutine that waits
// for input and goes on (serve).
func (c *client) readLoop(p parker) (reason string, parked bool) {
	for {
		f, err := c.conn.ReadFrame()
		if err != nil {
			return c.readError(err, c.helloDone), false
		}
		c.h.met.framesIn.WithLabelValues(f.Type.String()).Inc()
		if stop := c.frame(f); stop != "" {
			return stop, false
		}
		if p != nil && p.Idle() {
			go c.wait(p)
			return "", true
		}
	}
}

// frame handles one frame: the Hello first, then requests. It returns a
// non-empty reason to end the connection.
func (c *client) frame(f wire.Frame) string {
	if !c.helloDone {
		if !c.hello(f) {
			return "bad hello"
		}
		c.helloDone = true
		c.extendDeadline()
		return ""
	}
	if why := c.ending.Load(); why != nil {
		return *why
	}
	c.extendDeadline()
	return c.handle(f)
}

// extendDeadline gives the client another keepalive period. Only the
// reader calls it (WebSocket deadlines are not safe for concurrent use).
func (c *client) extendDeadline() {
	c.conn.SetReadDeadline(c.h.now().Add(c.h.cfg.Keepalive))
}

// endReader ends the connection for the reason why (the first reason given
// wins): once the writer has written what is queued (a Bye) or given up, the
// connection is closed, which also ends a reader waiting in a read. This
// works alike for both transports; a WebSocket read cannot be interrupted
// without closing the connection.
func (c *client) endReader(why string) {
	if !c.ending.CompareAndSwap(nil, &why) {
		return
	}
	go func() {
		select {
		case <-c.w.Done():
		case <-time.After(c.h.cfg.WriteTimeout):
		}
		c.conn.Close()
	}()
}

// readError turns a read error into a reason, telling the client what was
// wrong where it can still be told. helloDone says which deadline was
// running: the handshake timeout until Hello, the keepalive after it.
func (c *client) readError(err error, helloDone bool) string {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		return "eof"
	case c.ending.Load() != nil:
		return *c.ending.Load()
	case errors.As(err, &ne) && ne.Timeout() && !helloDone:
		c.bye(wire.CodeTimeout, fmt.Sprintf("no hello within the handshake timeout (%s)", c.h.cfg.HandshakeTimeout))
		return "timeout"
	case errors.As(err, &ne) && ne.Timeout():
		c.bye(wire.CodeTimeout, fmt.Sprintf("no frame within the keepalive timeout (%s)", c.h.cfg.Keepalive))
		return "timeout"
	case errors.Is(err, wire.ErrFrameTooLarge):
		c.bye(wire.CodeTooLarge, err.Error())
		c.log.Warn("oversized frame", "err", err)
		return "oversized frame"
	case errors.Is(err, wire.ErrEmptyFrame), errors.Is(err, session.ErrTextMessage):
		c.bye(wire.CodeBadFrame, err.Error())
		c.log.Warn("bad frame", "err", err)
		return "bad frame"
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.log.Warn("truncated frame")
		return "truncated frame"
	}
	return "read: " + err.Error()
}

// hello handles the first frame, which must be a Hello of our version.
func (c *client) hello(f wire.Frame) bool {
	if f.Type != wire.THello {
		c.bye(wire.CodeProtocol, "the first frame must be hello")
		c.log.Warn("no hello", "type", f.Type)
		return false
	}
	v, err := wire.Decode(f)
	if err != nil {
		c.bye(wire.CodeBadFrame, err.Error())
		return false
	}
	hl := v.(*wire.Hello)
	if hl.V != wire.Version {
		c.bye(wire.CodeUnsupportedVersion, fmt.Sprintf("protocol version %d is not spoken here; this server speaks %d", hl.V, wire.Version))
		c.log.Warn("unsupported version", "v", hl.V, "client", hl.Client)
		return false
	}
	c.push(wire.Welcome{V: wire.Version, Server: c.h.cfg.ServerName, Node: c.h.cfg.Node,
		MaxFrame: c.h.cfg.MaxFrame, MaxBody: wire.MaxBody, Keepalive: int(c.h.cfg.Keepalive / time.Second)})
	return true
}

// maxProtocolErrors is how many bad frames a connection may send before it
// is dropped.
const maxProtocolErrors = 16

// handle handles one frame after Hello. It returns a non-empty reason to end
// the connection.
func (c *client) handle(f wire.Frame) string {
	if f.Type >= 0x80 || !f.Type.Known() {
		code := wire.CodeUnknownType
		if f.Type.Known() {
			code = wire.CodeProtocol
		}
		return c.protocolError(0, code, fmt.Sprintf("frame type %s is not a request this server takes", f.Type))
	}
	v, err := wire.Decode(f)
	if err != nil {
		return c.protocolError(0, wire.CodeBadFrame, err.Error())
	}
	ctx := context.Background()
	if c.user == "" {
		switch m := v.(type) {
		case *wire.Signup:
			return c.signup(ctx, m)
		case *wire.Login:
			return c.login(ctx, m)
		case *wire.Resume:
			return c.resume(ctx, m)
		case *wire.Ping:
			c.push(wire.Pong{Ref: m.Ref})
			return ""
		}
		return c.protocolError(refOf(v), wire.CodeProtocol, "log in first")
	}
	switch m := v.(type) {
	case *wire.Ping:
		c.push(wire.Pong{Ref: m.Ref})
	case *wire.Send:
		c.send(ctx, m)
	case *wire.Ack:
		c.ack(ctx, m)
	case *wire.Receipt:
		c.receipt(ctx, m)
	case *wire.Sync:
		if _, err := c.replay(ctx, m.After, m.Ref); err != nil {
			c.fail(m.Ref, err)
		}
	case *wire.History:
		c.history(ctx, m)
	case *wire.ContactOp:
		c.contactOp(ctx, m)
	case *wire.ListContacts:
		if err := c.sendContacts(ctx, m.Ref); err != nil {
			c.fail(m.Ref, err)
		}
	case *wire.SetPresence:
		c.setPresence(ctx, m)
	case *wire.SetReach:
		c.setReach(ctx, m)
	case *wire.IceServers:
		c.iceServers(m)
	case *wire.Signal:
		c.signal(ctx, m)
	case *wire.Copy:
		c.copyDirect(ctx, m)
	case *wire.PathReport:
		c.pathReport(m)
	case *wire.Typing:
		c.typing(ctx, m)
	case *wire.PublishKeys:
		c.publishKeys(ctx, m)
	case *wire.FetchKeys:
		c.fetchKeys(ctx, m)
	case *wire.ChangePassword:
		c.changePassword(ctx, m)
	case *wire.PutChunk:
		c.putChunk(ctx, m)
	case *wire.HaveChunks:
		c.haveChunks(ctx, m)
	case *wire.GetChunk:
		c.getChunk(ctx, m)
	case *wire.ArchiveSet:
		c.archiveSet(ctx, m)
	case *wire.ArchiveGet:
		c.archiveGet(ctx, m)
	case *wire.ArchivePut:
		c.archivePut(ctx, m)
	case *wire.ArchiveKeyPut:
		c.archiveKeyPut(ctx, m)
	case *wire.RemoveDevice:
		c.removeDevice(ctx, m)
	case *wire.Logout:
		return c.logout(ctx, m)
	case *wire.Signup, *wire.Login, *wire.Resume:
		return c.protocolError(refOf(v), wire.CodeProtocol, "already logged in")
	default:
		return c.protocolError(refOf(v), wire.CodeProtocol, fmt.Sprintf("%s is not a request", f.Type))
	}
	return ""
}

// protocolError answers a bad frame; too many end the connection.
func (c *client) protocolError(ref uint64, code wire.Code, msg string) string {
	c.errCount++
	c.log.Warn("protocol error", "code", code, "msg", msg)
	if c.errCount >= maxProtocolErrors {
		c.bye(code, "too many protocol errors: "+msg)
		return "protocol errors"
	}
	c.push(wire.Error{Ref: ref, Code: code, Message: msg})
	return ""
}

// push encodes and queues a frame for this connection.
func (c *client) push(v any) {
	b, err := wire.Encode(v)
	if err != nil {
		c.log.Error("encode", "err", err)
		return
	}
	c.pushFrame(b)
}

func (c *client) pushFrame(b []byte) {
	c.overflowed(c.w.Push(b))
}

// pushPaced queues a frame of a bulk answer (an inbox replay), waiting for
// room rather than overflowing while the client is reading.
func (c *client) pushPaced(v any) {
	b, err := wire.Encode(v)
	if err != nil {
		c.log.Error("encode", "err", err)
		return
	}
	c.overflowed(c.w.PushWait(b, c.h.cfg.WriteTimeout))
}

// overflowed ends a connection whose queue overflowed (once).
func (c *client) overflowed(err error) {
	if errors.Is(err, session.ErrOverflow) && c.slow.CompareAndSwap(false, true) {
		c.h.met.slowConsumers.Inc()
		c.log.Warn("slow consumer: outbound queue full; disconnecting")
		c.endReader("slow consumer")
	}
}

// fail answers request ref with the error err maps to.
func (c *client) fail(ref uint64, err error) {
	e := errorFrame(ref, err)
	if e.Code == wire.CodeInternal || e.Code == wire.CodeUnavailable {
		c.log.Error("request failed", "ref", ref, "err", err)
	}
	c.push(e)
}

// bye queues a Bye as the last frame and ends the reader soon.
func (c *client) bye(code wire.Code, msg string) {
	b, _ := wire.Encode(wire.Bye{Code: code, Message: msg})
	c.w.Finish(b)
	c.endReader(string(code))
}

func refOf(v any) uint64 {
	switch m := v.(type) {
	case *wire.Signup:
		return m.Ref
	case *wire.Login:
		return m.Ref
	case *wire.Resume:
		return m.Ref
	case *wire.Logout:
		return m.Ref
	case *wire.ContactOp:
		return m.Ref
	case *wire.ListContacts:
		return m.Ref
	case *wire.SetPresence:
		return m.Ref
	case *wire.SetReach:
		return m.Ref
	case *wire.Send:
		return m.Ref
	case *wire.Receipt:
		return m.Ref
	case *wire.Sync:
		return m.Ref
	case *wire.History:
		return m.Ref
	case *wire.IceServers:
		return m.Ref
	case *wire.Signal:
		return m.Ref
	case *wire.Copy:
		return m.Ref
	case *wire.PublishKeys:
		return m.Ref
	case *wire.FetchKeys:
		return m.Ref
	case *wire.ChangePassword:
		return m.Ref
	case *wire.PutChunk:
		return m.Ref
	case *wire.HaveChunks:
		return m.Ref
	case *wire.GetChunk:
		return m.Ref
	case *wire.ArchiveSet:
		return m.Ref
	case *wire.ArchiveGet:
		return m.Ref
	case *wire.ArchivePut:
		return m.Ref
	case *wire.ArchiveKeyPut:
		return m.Ref
	case *wire.RemoveDevice:
		return m.Ref
	}
	return 0
}

// onEvent is the bus callback: it must not block.
func (c *client) onEvent(b []byte) {
	e, err := parseEvent(b)
	if err != nil {
		c.log.Error("bus event", "err", err)
		return
	}
	if e.device != "" && e.device != c.device || e.skipConn == c.id {
		return
	}
	c.mu.Lock()
	if !c.live {
		if len(c.held) >= maxHeld {
			c.mu.Unlock()
			c.w.Abort(session.ErrOverflow)
			c.overflowed(session.ErrOverflow)
			return
		}
		e.frame = append([]byte(nil), e.frame...)
		c.held = append(c.held, e)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.deliver(e)
}

func (c *client) deliver(e event) {
	switch e.kind {
	case evFrame:
		c.pushFrame(e.frame)
	case evLive:
		if !c.quiet {
			c.pushFrame(e.frame)
		}
	case evKick:
		c.w.Finish(e.frame)
		c.endReader("replaced")
	case evLogout:
		c.w.Finish(e.frame)
		c.endReader("password changed")
	case evRemoved:
		c.w.Finish(e.frame)
		c.endReader("device removed")
	}
}

// goLive releases the events held during the inbox replay, dropping inbox
// entries the replay already sent.
func (c *client) goLive(through uint64) {
	c.mu.Lock()
	held := c.held
	c.held, c.live, c.through = nil, true, through
	for _, e := range held {
		if e.seq != 0 && e.seq <= through {
			continue
		}
		c.deliver(e)
	}
	c.mu.Unlock()
}
