package client

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// Client is a connection to natterd and, once logged in, a session that
// survives connection drops. Its methods are safe for concurrent use.
// Events must be read until it is closed.
type Client struct {
	opts      Options
	log       *slog.Logger
	tlsConfig *tls.Config // ServerName empty: each address's host (tlsFor)
	addrs     []string    // the server's addresses (addrs.go)
	chunks    ChunkStore  // nil: files sent peer to peer are refused
	events    chan Event
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	// Close stops the dispatcher first (stopDispatch, then dispatchDone),
	// so that its final Ack covers exactly what was handed to the app.
	stopDispatch chan struct{}
	dispatchDone chan struct{}
	ackReq       chan chan struct{} // asks the dispatcher to Ack now
	wg           sync.WaitGroup     // every goroutine the Client started
	lastRef      atomic.Uint64

	dq pushQueue // pushes from the readers to the dispatcher
	tr tracker   // delivery bookkeeping shared with the dispatcher

	mu           sync.Mutex
	closed       bool
	conns        map[*conn]struct{} // every connection not yet finished
	cn           *conn              // the connection requests go on; nil while reconnecting
	target       target             // the address of the latest connection
	welcome      wire.Welcome
	pending      map[uint64]*call // requests waiting for their answer, by Ref
	sess         Session
	authed       bool // the Client has a session (it may be reconnecting)
	loggingOut   bool
	reconnecting bool // a reconnectLoop is running
	presence     *wire.SetPresence
	reach        *wire.SetReach
	endErr       error // why the last session ended, for calls waiting for it

	dr         atomic.Pointer[direct] // the peer-to-peer layer, with Options.Direct
	earlyReach []*wire.Reach          // Reach frames that came before it started

	e2e keys     // end-to-end keys and contacts' directories
	pf  prefetch // the login's prefetch of contacts' keys

	fstats fileStats // chunks sent and received, for tests and measurements
	ar     archiver  // the user's server-side history (archive.go)
}

// Session is a login session. Token resumes it (Resume) without the
// password until Expires.
type Session struct {
	User    natter.UserID
	Device  natter.DeviceID
	Token   string
	Expires time.Time
}

// SendResult is the server's acknowledgement of a message: it is durable.
// ConvSeq is its place in the conversation, SentAt when the server first
// accepted it, Online whether a device of the recipient was online.
type SendResult struct {
	ID      natter.MessageID
	ConvSeq uint64 // 0 for a message that went peer to peer
	SentAt  time.Time
	Online  bool
	// Path is how the message went: PathServer, or PathDirect/PathRelayed
	// when a contact's device acknowledged it over a peer-to-peer channel
	// (Device is then that device; a copy is stored for the user's other
	// devices).
	Path   string
	Device natter.DeviceID
}

// callKind says how a request behaves when its connection drops.
type callKind int

const (
	kindPlain     callKind = iota // fails with ErrConnLost
	kindAuth                      // an explicit Signup, Login or Resume
	kindReconnect                 // the automatic Resume after a drop
	kindSend                      // sent again after the reconnect
)

// call is a request waiting for its answer.
type call struct {
	ref  uint64
	kind callKind
	cn   *conn      // the connection it went out on; for a Send, the last one
	ch   chan reply // capacity 1; nil if cb is set
	cb   func(v any, err error)

	frame []byte        // kindSend: the encoded Send, to send again
	to    natter.UserID // kindSend: the recipient
}

type reply struct {
	v   any
	err error
}

// finish delivers the answer. It is called once, by whoever removed the
// call from Client.pending.
func (k *call) finish(v any, err error) {
	if k.cb != nil {
		k.cb(v, err)
		return
	}
	k.ch <- reply{v, err}
}

// Dial connects to the server at o.Addr (TLS, then Hello and Welcome). The
// Client is not logged in yet: call Signup, Login or Resume. A refusal by the
// server (e.g. an unsupported version) is a wrapped *wire.Err.
func Dial(ctx context.Context, o Options) (*Client, error) {
	addrs, err := serverList(o)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := natter.ValidateDeviceID(string(o.Device)); err != nil {
		return nil, fmt.Errorf("client: Options.Device: %w", err)
	}
	o = o.withDefaults()
	tc := &tls.Config{}
	if o.TLSConfig != nil {
		tc = o.TLSConfig.Clone()
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS13
	}
	c := &Client{
		opts:      o,
		log:       o.Logger,
		tlsConfig: tc,
		addrs:     addrs,
		chunks:    o.Chunks,
		events:    make(chan Event, o.EventBuffer),
		closing:   make(chan struct{}),
		conns:     make(map[*conn]struct{}),

		stopDispatch: make(chan struct{}),
		dispatchDone: make(chan struct{}),
		ackReq:       make(chan chan struct{}),
		pending:      make(map[uint64]*call),
	}
	c.dq.init(c.closing)
	c.tr.init(o.DedupSize)
	c.wg.Add(1)
	go c.dispatchLoop()
	cn, err := c.connect(ctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.mu.Lock()
	c.cn, c.welcome = cn, cn.welcome
	c.mu.Unlock()
	return c, nil
}

// Events returns the channel of events (see the package doc for what comes
// when). It is closed by Close. The app must keep reading it.
func (c *Client) Events() <-chan Event { return c.events }

// Welcome returns the Welcome of the latest connection: the server's
// version and limits.
func (c *Client) Welcome() wire.Welcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome
}

// Session returns the current session and whether there is one. The token
// changes only at login; keep it to Resume later.
func (c *Client) Session() (Session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess, c.authed
}

// Close closes the Client without logging out (the session stays
// resumable): it acknowledges what was handed to the app, fails calls still
// waiting with ErrClosed, closes the connection, waits for its goroutines
// and closes the Events channel. Events already in the channel stay readable
// (they count as handed to the app and were acknowledged): read it until it
// is closed. Pushes not yet in the channel are dropped, unacknowledged, and
// will be delivered again at the next login.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.syncBeforeClose()
		close(c.stopDispatch)
		<-c.dispatchDone
		c.flushArchive()
		if cn := c.liveConn(); cn != nil {
			c.flushAck(cn)
		}
		c.mu.Lock()
		c.closed = true
		calls := c.pending
		c.pending = make(map[uint64]*call)
		conns := make([]*conn, 0, len(c.conns))
		for cn := range c.conns {
			conns = append(conns, cn)
		}
		c.mu.Unlock()
		close(c.closing)
		for _, k := range calls {
			k.finish(nil, ErrClosed)
		}
		for _, cn := range conns {
			cn.shutdown()
		}
		if d := c.dr.Load(); d != nil {
			d.close()
		}
		c.wg.Wait()
		close(c.events)
	})
	return nil
}

// closeSyncWait bounds how long Close waits to learn the inbox entries of
// what this Client sent, so that it can acknowledge them.
const closeSyncWait = 2 * time.Second

// syncBeforeClose has the dispatcher send what it holds back and learn the
// inbox entries this Client caused (closeSync), waiting at most
// closeSyncWait: so a clean Close leaves nothing unacknowledged that this
// device has seen, and the next login's inbox does not bring it back.
func (c *Client) syncBeforeClose() {
	if c.liveConn() == nil {
		return
	}
	done := make(chan struct{})
	c.dq.pushForce(closeSync{done: done})
	t := time.NewTimer(closeSyncWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// Signup creates the account user with password and logs in.
func (c *Client) Signup(ctx context.Context, user natter.UserID, password string) (Session, error) {
	return c.authenticate(ctx, "signup "+string(user), func(ref uint64) any {
		return &wire.Signup{Ref: ref, User: user, Password: password, Device: c.opts.Device, Quiet: c.opts.Quiet}
	})
}

// Login logs in as user with password.
func (c *Client) Login(ctx context.Context, user natter.UserID, password string) (Session, error) {
	return c.authenticate(ctx, "login "+string(user), func(ref uint64) any {
		return &wire.Login{Ref: ref, User: user, Password: password, Device: c.opts.Device, Quiet: c.opts.Quiet}
	})
}

// Resume logs in with the token of an earlier session, without a password.
// A token the server no longer knows gives a *wire.Err with
// wire.CodeSessionExpired.
func (c *Client) Resume(ctx context.Context, token string) (Session, error) {
	return c.authenticate(ctx, "resume", func(ref uint64) any {
		return &wire.Resume{Ref: ref, Token: token, Quiet: c.opts.Quiet}
	})
}

// authenticate sends an explicit Signup, Login or Resume, connecting first
// if the Client has no connection (after Logout, or a drop before login).
func (c *Client) authenticate(ctx context.Context, what string, build func(ref uint64) any) (Session, error) {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return Session{}, fmt.Errorf("%s: %w", what, ErrClosed)
	case c.authed:
		c.mu.Unlock()
		return Session{}, fmt.Errorf("%s: %w", what, ErrLoggedIn)
	}
	cn := c.cn
	c.mu.Unlock()
	c.resetPrefetch()
	if cn == nil || !cn.alive() {
		var err error
		if cn, err = c.connect(ctx); err != nil {
			return Session{}, fmt.Errorf("%s: %w", what, err)
		}
		c.mu.Lock()
		c.cn = cn
		c.mu.Unlock()
	}
	v, err := c.request(ctx, cn, kindAuth, build)
	if err != nil {
		return Session{}, fmt.Errorf("%s: %w", what, err)
	}
	a, ok := v.(*wire.Authed)
	if !ok {
		return Session{}, fmt.Errorf("%s: unexpected answer %T", what, v)
	}
	c.afterAuth(ctx, cn)
	if err := c.setupKeys(ctx, a.User); err != nil {
		return Session{}, fmt.Errorf("%s: end-to-end keys: %w", what, err)
	}
	c.keysReady()
	if c.opts.Direct {
		c.startDirect(a.User)
	}
	c.startArchive(a.User)
	return Session{User: a.User, Device: a.Device, Token: a.Token, Expires: a.Expires}, nil
}

// Logout ends the session: the token stops working and the server closes
// the connection. Sends still pending fail with ErrNotLoggedIn. The Client
// stays usable for another Signup, Login or Resume.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return fmt.Errorf("logout: %w", ErrClosed)
	case !c.authed:
		c.mu.Unlock()
		return fmt.Errorf("logout: %w", ErrNotLoggedIn)
	case c.cn == nil || !c.cn.authed:
		c.mu.Unlock()
		return fmt.Errorf("logout: %w: reconnecting", ErrConnLost)
	}
	cn := c.cn
	c.loggingOut = true
	c.mu.Unlock()

	c.ackNow(ctx)
	_, err := c.request(ctx, cn, kindPlain, func(ref uint64) any { return &wire.Logout{Ref: ref} })
	c.mu.Lock()
	var sends []*call
	if err == nil || errors.Is(err, ErrConnLost) {
		if c.authed {
			sends = c.endSessionLocked()
			c.endErr = nil // logged out on purpose
		}
	} else {
		c.loggingOut = false
	}
	c.mu.Unlock()
	for _, k := range sends {
		k.finish(nil, ErrNotLoggedIn)
	}
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	cn.shutdown()
	if d := c.dr.Swap(nil); d != nil {
		d.close()
	}
	c.mu.Lock()
	c.earlyReach = nil
	c.mu.Unlock()
	return nil
}

// Contacts returns the user's contact list with presence.
func (c *Client) Contacts(ctx context.Context) ([]wire.Contact, error) {
	v, err := roundTrip[wire.Contacts](ctx, c, "list contacts", func(ref uint64) any {
		return &wire.ListContacts{Ref: ref}
	})
	if err != nil {
		return nil, err
	}
	return v.Contacts, nil
}

// ContactOp applies op (add, accept, refuse, remove, block, unblock) to the
// relationship with user.
func (c *Client) ContactOp(ctx context.Context, op natter.ContactOp, user natter.UserID) error {
	_, err := roundTrip[wire.OK](ctx, c, fmt.Sprintf("contact %s %s", op, user), func(ref uint64) any {
		return &wire.ContactOp{Ref: ref, Op: op, User: user}
	})
	return err
}

// Add asks user to become a contact (or accepts their pending request).
func (c *Client) Add(ctx context.Context, user natter.UserID) error {
	return c.ContactOp(ctx, natter.OpAdd, user)
}

// Accept accepts user's contact request.
func (c *Client) Accept(ctx context.Context, user natter.UserID) error {
	return c.ContactOp(ctx, natter.OpAccept, user)
}

// Refuse refuses user's contact request.
func (c *Client) Refuse(ctx context.Context, user natter.UserID) error {
	return c.ContactOp(ctx, natter.OpRefuse, user)
}

// Remove ends the relationship with user.
func (c *Client) Remove(ctx context.Context, user natter.UserID) error {
	return c.ContactOp(ctx, natter.OpRemove, user)
}

// Block blocks user.
func (c *Client) Block(ctx context.Context, user natter.UserID) error {
	return c.ContactOp(ctx, natter.OpBlock, user)
}

// Unblock lifts a block of user.
func (c *Client) Unblock(ctx context.Context, user natter.UserID) error {
	return c.ContactOp(ctx, natter.OpUnblock, user)
}

// SetPresence sets this device's status (online, away or busy) and status
// text. The SDK sets it again after every automatic reconnect.
func (c *Client) SetPresence(ctx context.Context, s natter.Status, text string) error {
	if !s.Valid() {
		return fmt.Errorf("set presence: %w: status %q", natter.ErrBadRequest, s)
	}
	p := wire.SetPresence{Status: s, Text: text}
	_, err := roundTrip[wire.OK](ctx, c, "set presence", func(ref uint64) any {
		q := p
		q.Ref = ref
		return &q
	})
	if err == nil {
		c.mu.Lock()
		c.presence = &p
		c.mu.Unlock()
	}
	return err
}

// SetReach registers how this device can be reached (its ICE candidates).
// The SDK registers them again after every automatic reconnect.
func (c *Client) SetReach(ctx context.Context, cands []natter.Candidate) error {
	r := wire.SetReach{Candidates: slices.Clone(cands)}
	_, err := roundTrip[wire.OK](ctx, c, "set reach", func(ref uint64) any {
		q := r
		q.Ref = ref
		return &q
	})
	if err == nil {
		c.mu.Lock()
		c.reach = &r
		c.mu.Unlock()
	}
	return err
}

// Send sends body to the user to under a new time-ordered message ID and
// returns once the server has stored it. See SendID.
func (c *Client) Send(ctx context.Context, to natter.UserID, body []byte) (SendResult, error) {
	return c.SendID(ctx, natter.NewMessageID(time.Now()), to, body)
}

// SendID sends body to the user to under the message ID id and returns once
// the server has stored it. If the connection drops meanwhile, the message is
// sent again with the same ID once the session is resumed, so a nil error
// means the message is stored exactly once. On error the result's ID is set:
// send again with SendID and that ID to keep exactly-once.
func (c *Client) SendID(ctx context.Context, id natter.MessageID, to natter.UserID, body []byte) (SendResult, error) {
	return c.sendID(ctx, id, to, body, nil)
}

// sendID sends a message; chunks are the file chunks it carries (which
// keeps it on the server path, where the chunks are).
func (c *Client) sendID(ctx context.Context, id natter.MessageID, to natter.UserID, body []byte, chunks []string) (SendResult, error) {
	res := SendResult{ID: id, Path: PathServer}
	if err := natter.ValidateMessageID(string(id)); err != nil {
		return res, fmt.Errorf("send: %w", err)
	}
	c.mu.Lock()
	max := c.welcome.MaxBody
	c.mu.Unlock()
	if max <= 0 {
		max = wire.MaxBody
	}
	if len(body) > max {
		return res, fmt.Errorf("send %s: %w: %d bytes, limit %d", id, ErrBodyTooLarge, len(body), max)
	}
	plain := body
	body, err := c.seal(ctx, id, to, body)
	if err != nil {
		return res, fmt.Errorf("send %s to %s: %w", id, to, err)
	}
	// Its place among the user's messages to to, whatever path it takes,
	// for the receipts that will cover it.
	c.tr.noteOut(to, id, 0)
	if d := c.dr.Load(); d != nil && chunks == nil {
		if r, ok := d.send(ctx, id, to, body); ok {
			c.archiveSent(id, to, plain, r.SentAt, r.Path)
			return r, nil
		}
		// No channel, or no acknowledgement: through the server under the
		// same ID (the peer drops it if it did arrive directly).
	}
	ref := c.lastRef.Add(1)
	frame, err := wire.Encode(&wire.Send{Ref: ref, ID: id, To: to, Body: body, Chunks: chunks})
	if err != nil {
		return res, fmt.Errorf("send %s: %w", id, err)
	}
	k := &call{ref: ref, kind: kindSend, ch: make(chan reply, 1), frame: frame, to: to}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return res, fmt.Errorf("send %s: %w", id, ErrClosed)
	case !c.authed:
		c.mu.Unlock()
		return res, fmt.Errorf("send %s: %w", id, ErrNotLoggedIn)
	case len(body) > max:
		c.mu.Unlock()
		return res, fmt.Errorf("send %s: %w: sealed, %d bytes, over the limit of %d", id, ErrBodyTooLarge, len(body), max)
	}
	c.tr.noteOwnID(id)
	cn := c.cn
	if cn != nil && cn.authed {
		k.cn = cn
	} else {
		cn = nil // the reconnect sends it
	}
	c.pending[ref] = k
	c.mu.Unlock()

	if cn != nil {
		// If the connection drops first, the reconnect sends it again.
		if err := cn.enqueue(ctx, frame); err != nil && ctx.Err() != nil && c.forgot(ref) {
			return res, fmt.Errorf("send %s: %w", id, err)
		}
	}
	v, err := c.wait(ctx, k)
	if err != nil {
		return res, fmt.Errorf("send %s to %s: %w", id, to, err)
	}
	ack, ok := v.(*wire.SendAck)
	if !ok {
		return res, fmt.Errorf("send %s to %s: unexpected answer %T", id, to, v)
	}
	res.ConvSeq, res.SentAt, res.Online = ack.ConvSeq, ack.SentAt, ack.Online
	c.archiveSent(id, to, plain, res.SentAt, res.Path)
	return res, nil
}

// History returns up to limit messages between the user and peer with
// conversation sequence numbers above after, in order, opened where this
// device still can (its own, and those whose keys it has not used and
// forgotten: forward secrecy means a device cannot open old messages from
// the server again; see docs/security.md). The server caps limit.
func (c *Client) History(ctx context.Context, peer natter.UserID, after uint64, limit int) ([]MessageEvent, error) {
	v, err := roundTrip[wire.Messages](ctx, c, "history with "+string(peer), func(ref uint64) any {
		return &wire.History{Ref: ref, Peer: peer, After: after, Limit: limit}
	})
	if err != nil {
		return nil, err
	}
	out := make([]MessageEvent, len(v.Messages))
	for i, m := range v.Messages {
		out[i] = MessageEvent{Message: m, Offline: true, Path: PathServer}
		out[i].OpenErr = c.open(ctx, &out[i].Message)
		out[i].File, _ = parseFile(out[i].Message.Body)
	}
	return out, nil
}

// sessionConn returns the connection a request that needs a session goes
// on, or why there is none.
func (c *Client) sessionConn() (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cn := c.cn
	switch {
	case c.closed:
		return nil, ErrClosed
	case !c.authed && c.endErr != nil:
		// Ended by the server (replaced, logged out, expired): say why.
		return nil, fmt.Errorf("%w (%w)", ErrNotLoggedIn, c.endErr)
	case !c.authed:
		return nil, ErrNotLoggedIn
	case cn == nil || !cn.authed:
		return nil, fmt.Errorf("%w: reconnecting", ErrConnLost)
	}
	return cn, nil
}

// roundTrip sends a request that needs a session and returns its answer,
// which must be a *T.
func roundTrip[T any](ctx context.Context, c *Client, what string, build func(ref uint64) any) (*T, error) {
	cn, err := c.sessionConn()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	v, err := c.request(ctx, cn, kindPlain, build)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	t, ok := v.(*T)
	if !ok {
		return nil, fmt.Errorf("%s: unexpected answer %T", what, v)
	}
	return t, nil
}

// request sends the frame build(ref) on cn and waits for its answer.
func (c *Client) request(ctx context.Context, cn *conn, kind callKind, build func(ref uint64) any) (any, error) {
	ref := c.lastRef.Add(1)
	frame, err := wire.Encode(build(ref))
	if err != nil {
		return nil, err
	}
	k := &call{ref: ref, kind: kind, cn: cn, ch: make(chan reply, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.pending[ref] = k
	c.mu.Unlock()
	if err := cn.enqueue(ctx, frame); err != nil && c.forgot(ref) {
		return nil, err
	}
	return c.wait(ctx, k)
}

// fireAndForget sends a request on the current connection without waiting
// for its answer; a failure is logged. done, if not nil, is called (on the
// reader's goroutine, so it must not block) once the request is answered or
// has failed. It reports whether the request was queued.
func (c *Client) fireAndForget(what string, build func(ref uint64) any, done func()) bool {
	ref := c.lastRef.Add(1)
	frame, err := wire.Encode(build(ref))
	if err != nil {
		c.log.Error(what, "err", err)
		return false
	}
	k := &call{ref: ref, kind: kindPlain, cb: func(_ any, err error) {
		if err != nil && !errors.Is(err, ErrClosed) {
			c.log.Warn(what+" failed", "err", err)
		}
		if done != nil {
			done()
		}
	}}
	c.mu.Lock()
	cn := c.cn
	if c.closed || !c.authed || cn == nil || !cn.authed {
		c.mu.Unlock()
		return false
	}
	k.cn = cn
	c.pending[ref] = k
	c.mu.Unlock()
	if !cn.tryEnqueue(frame) && c.forgot(ref) {
		c.log.Warn(what + " dropped: send queue full or connection lost")
		return false
	}
	return true
}

// wait waits for k's answer or the end of ctx.
func (c *Client) wait(ctx context.Context, k *call) (any, error) {
	select {
	case r := <-k.ch:
		return r.v, r.err
	case <-ctx.Done():
		if c.forgot(k.ref) {
			return nil, ctx.Err()
		}
		r := <-k.ch // answered meanwhile
		return r.v, r.err
	}
}

// forgot removes a pending call and reports whether it was still pending
// (if not, whoever removed it finishes it).
func (c *Client) forgot(ref uint64) bool { return c.take(ref) != nil }

// take removes and returns the call waiting for ref, or nil.
func (c *Client) take(ref uint64) *call {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.pending[ref]
	delete(c.pending, ref)
	return k
}

// answer finishes the call waiting for ref, if any.
func (c *Client) answer(ref uint64, v any, err error) {
	k := c.take(ref)
	if k == nil {
		c.log.Debug("answer to no pending request", "ref", ref, "type", fmt.Sprintf("%T", v), "err", err)
		return
	}
	k.finish(v, err)
}

// liveConn returns the connection requests go on, if it is logged in.
func (c *Client) liveConn() *conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.authed || c.cn == nil || !c.cn.authed {
		return nil
	}
	return c.cn
}

// errBye ends a connection on which the server said Bye.
var errBye = errors.New("server said bye")

// handleFrame handles one frame read from cn. It returns an error to end
// the connection: the Client is closing, or the server said Bye.
func (c *Client) handleFrame(cn *conn, v any) error {
	switch f := v.(type) {
	case *wire.Pong, *wire.Welcome:
	case *wire.Bye:
		// The server's last frame: close at once rather than wait for the
		// server to, so that its shutdown is not held up by this client.
		c.log.Info("server said bye", "code", f.Code, "message", f.Message)
		cn.setBye(f)
		return errBye
	case *wire.Error:
		if f.Ref != 0 {
			c.answer(f.Ref, nil, f.AsError())
		} else {
			c.log.Warn("server reported an error", "code", f.Code, "message", f.Message)
		}
	case *wire.Authed:
		c.onAuthed(cn, f)
	case *wire.SendAck:
		k := c.take(f.Ref)
		if k == nil {
			c.log.Debug("send ack for no pending send", "ref", f.Ref, "id", f.ID)
			return nil
		}
		if k.kind == kindSend {
			// Before the next frame is read: a reply to this message must
			// not look like a gap in the conversation, and a receipt for
			// it must find its sequence number.
			c.tr.noteConv(k.to, f.ConvSeq)
			c.tr.noteOut(k.to, f.ID, f.ConvSeq)
		}
		k.finish(f, nil)
	case *wire.OK:
		c.answer(f.Ref, f, nil)
	case *wire.Messages:
		c.answer(f.Ref, f, nil)
	case *wire.Contacts:
		if f.Ref != 0 {
			c.answer(f.Ref, f, nil)
			return nil
		}
		c.noteContacts(f.Contacts)
		return c.push(f)
	case *wire.Inbox:
		if err := c.push(f); err != nil {
			return err
		}
		if f.Ref != 0 && f.Done {
			c.answer(f.Ref, f, nil)
		}
	case *wire.IceConfig, *wire.Keys, *wire.Chunks, *wire.Chunk, *wire.ArchiveState:
		c.answer(refOf(f), f, nil)
	case *wire.KeysChanged:
		c.keysChanged(f)
	case *wire.SignalIn:
		if isAck(f) {
			c.takeAck(f)
			return nil
		}
		// Straight to the peer-to-peer layer, not through Events: signalling
		// is time-critical and of no interest to the app.
		if d := c.dr.Load(); d != nil {
			d.mgr.HandleSignal(f.From, f.FromDevice, f.Session, f.Kind, f.Data)
		}
	case *wire.Reach:
		if c.opts.Direct {
			// The login burst's Reach frames come before the peer-to-peer
			// layer starts: it takes them when it does.
			c.mu.Lock()
			d := c.dr.Load()
			if d == nil && len(c.earlyReach) < maxEarlyReach {
				c.earlyReach = append(c.earlyReach, f)
			}
			c.mu.Unlock()
			if d != nil {
				d.noteReach(f)
			}
		}
		return c.push(f)
	case *wire.Msg, *wire.Rcpt, *wire.Presence, *wire.ContactUpdate, *wire.TypingIn:
		return c.push(f)
	default:
		c.log.Warn("unexpected frame from server", "type", fmt.Sprintf("%T", v))
	}
	return nil
}

// push queues a push for the dispatcher, waiting while its queue is full.
func (c *Client) push(v any) error {
	if !c.dq.push(v) {
		return ErrClosed
	}
	return nil
}

// authMark tells the dispatcher, in order with the pushes, that a login or
// resume succeeded.
type authMark struct {
	user      natter.UserID
	reconnect bool // an automatic resume, not an explicit call
}

// onAuthed records a successful Signup, Login or Resume on cn.
func (c *Client) onAuthed(cn *conn, a *wire.Authed) {
	c.initKeys(a.User)
	c.mu.Lock()
	k := c.pending[a.Ref]
	delete(c.pending, a.Ref)
	if !c.closed {
		cn.authed = true
		c.cn = cn
		c.welcome = cn.welcome
		c.authed = true
		c.endErr = nil
		c.loggingOut = false
		c.sess = Session{User: a.User, Device: a.Device, Token: a.Token, Expires: a.Expires}
		c.dq.pushForce(authMark{user: a.User, reconnect: k != nil && k.kind == kindReconnect})
	}
	c.mu.Unlock()
	if k != nil {
		k.finish(a, nil)
	}
}

// afterAuth runs once the session is up on cn: it sets the presence and
// reach again and sends the Sends still waiting for their SendAck.
func (c *Client) afterAuth(ctx context.Context, cn *conn) {
	c.mu.Lock()
	if c.cn != cn || !cn.authed {
		c.mu.Unlock()
		return
	}
	var sends []*call
	for _, k := range c.pending {
		if k.kind == kindSend && k.cn != cn {
			k.cn = cn
			sends = append(sends, k)
		}
	}
	pres, reach := c.presence, c.reach
	c.mu.Unlock()
	c.e2e.mu.Lock()
	if c.e2e.dirs != nil {
		clear(c.e2e.dirs) // KeysChanged pushes may have been missed
	}
	c.e2e.mu.Unlock()
	if pres != nil {
		c.fireAndForget("set presence", func(ref uint64) any { p := *pres; p.Ref = ref; return &p }, nil)
	}
	if reach != nil {
		c.fireAndForget("set reach", func(ref uint64) any { r := *reach; r.Ref = ref; return &r }, nil)
	}
	slices.SortFunc(sends, func(a, b *call) int { return cmp.Compare(a.ref, b.ref) })
	for _, k := range sends {
		if err := cn.enqueue(ctx, k.frame); err != nil {
			return // the next reconnect sends them
		}
	}
	if len(sends) > 0 {
		c.log.Debug("sent pending messages again", "n", len(sends))
	}
}

// endSessionLocked forgets the session and returns the Sends that were
// waiting, for the caller to fail. c.mu must be held.
func (c *Client) endSessionLocked() []*call {
	c.authed = false
	c.loggingOut = false
	c.presence, c.reach = nil, nil
	var sends []*call
	for ref, k := range c.pending {
		if k.kind == kindSend {
			delete(c.pending, ref)
			sends = append(sends, k)
		}
	}
	return sends
}

// sessionOver reports whether err, the reason a connection ended or a
// resume failed, means the session is over: reconnecting cannot help.
func sessionOver(err error) bool {
	var we *wire.Err
	if !errors.As(err, &we) {
		return false
	}
	switch we.Code {
	case wire.CodeSessionExpired, wire.CodeReplaced, wire.CodeLoggedOut,
		wire.CodeBadCredentials, wire.CodeNoSuchUser, wire.CodeUnsupportedVersion:
		return true
	}
	return false
}

// connLost is called by cn's reader once cn has finished. Calls waiting on
// it fail; if it carried the session, the SDK reconnects or, if the server
// ended the session, gives up.
func (c *Client) connLost(cn *conn) {
	cause := cn.cause()
	c.mu.Lock()
	delete(c.conns, cn)
	if c.cn == cn {
		c.cn = nil
	}
	var failed, sends []*call
	for ref, k := range c.pending {
		if k.kind != kindSend && k.cn == cn {
			delete(c.pending, ref)
			failed = append(failed, k)
		}
	}
	start := false
	if cn.authed && c.authed && !c.closed {
		switch {
		case c.loggingOut:
			sends = c.endSessionLocked()
		case sessionOver(cause):
			sends = c.endSessionLocked()
			c.endErr = fmt.Errorf("%w: %w", ErrSessionEnded, cause)
			c.dq.pushForce(ConnEvent{Err: cause, Final: true})
			c.log.Info("session ended by the server", "err", cause)
		default:
			c.dq.pushForce(ConnEvent{Err: cause})
			c.log.Info("connection lost; reconnecting", "err", cause)
			if !c.reconnecting {
				c.reconnecting = true
				start = true
				c.wg.Add(1)
			}
		}
	}
	c.mu.Unlock()
	lost := cn.lostErr()
	for _, k := range failed {
		k.finish(nil, lost)
	}
	for _, k := range sends {
		k.finish(nil, fmt.Errorf("%w: %w", ErrSessionEnded, cause))
	}
	if start {
		go c.reconnectLoop()
	}
}

// reconnectLoop re-establishes the connection and resumes the session,
// with exponential back-off and jitter, until it succeeds, the session
// ends or the Client is closed.
func (c *Client) reconnectLoop() {
	defer c.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	done := func() {
		c.mu.Lock()
		c.reconnecting = false
		c.mu.Unlock()
	}
	delay := c.opts.ReconnectMin
	for attempt := 1; ; attempt++ {
		// Full jitter: anywhere between 0 and delay, so that the clients
		// of a node that died do not all come back at once.
		t := time.NewTimer(rand.N(delay + 1))
		select {
		case <-t.C:
		case <-c.closing:
			t.Stop()
			done()
			return
		}
		c.mu.Lock()
		if c.closed || !c.authed {
			c.reconnecting = false
			c.mu.Unlock()
			return
		}
		token := c.sess.Token
		c.mu.Unlock()

		err := c.resumeOnce(ctx, token)
		if err == nil {
			c.mu.Lock()
			up := c.cn != nil && c.cn.alive()
			if up || c.closed || !c.authed {
				c.reconnecting = false
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			delay = c.opts.ReconnectMin // dropped again at once: start over
			continue
		}
		if errors.Is(err, ErrClosed) {
			done()
			return
		}
		if sessionOver(err) {
			c.mu.Lock()
			var sends []*call
			if c.authed && !c.closed {
				sends = c.endSessionLocked()
				c.endErr = fmt.Errorf("%w: %w", ErrSessionEnded, err)
				c.dq.pushForce(ConnEvent{Err: err, Final: true})
			}
			c.reconnecting = false
			c.mu.Unlock()
			for _, k := range sends {
				k.finish(nil, fmt.Errorf("%w: %w", ErrSessionEnded, err))
			}
			c.log.Info("resume refused; session ended", "err", err)
			return
		}
		c.log.Debug("reconnect failed", "attempt", attempt, "err", err)
		delay = min(delay*2, c.opts.ReconnectMax)
		var we *wire.Err
		if errors.As(err, &we) && we.RetryAfter > 0 {
			delay = max(delay, time.Duration(we.RetryAfter)*time.Millisecond)
		}
	}
}

// resumeOnce makes one attempt to connect and resume the session.
func (c *Client) resumeOnce(ctx context.Context, token string) error {
	actx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	cn, err := c.connect(actx)
	if err != nil {
		return err
	}
	if _, err := c.request(actx, cn, kindReconnect, func(ref uint64) any {
		return &wire.Resume{Ref: ref, Token: token, Quiet: c.opts.Quiet}
	}); err != nil {
		cn.shutdown()
		return fmt.Errorf("resume: %w", err)
	}
	c.afterAuth(ctx, cn)
	return nil
}

// ackNow has the dispatcher send an Ack for everything it has handed to
// the app, and waits (briefly) until it is queued.
func (c *Client) ackNow(ctx context.Context) {
	req := make(chan struct{})
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case c.ackReq <- req:
		select {
		case <-req:
		case <-t.C:
		case <-ctx.Done():
		}
	case <-c.dispatchDone:
	case <-t.C:
	case <-ctx.Done():
	}
}

// flushAck tells the server, on cn, how far this device has got in its
// inbox, if that moved since the last Ack. It reports whether it had
// nothing to do or queued the Ack.
func (c *Client) flushAck(cn *conn) bool {
	upto, ok := c.tr.toAck()
	if !ok {
		return true
	}
	frame, err := wire.Encode(wire.Ack{Upto: upto})
	if err != nil || !cn.tryEnqueue(frame) {
		return false
	}
	c.tr.acked(upto)
	c.forgetAcked(upto)
	return true
}

// refOf returns the Ref of an answer.
func refOf(v any) uint64 {
	switch v := v.(type) {
	case *wire.IceConfig:
		return v.Ref
	case *wire.Keys:
		return v.Ref
	case *wire.Chunks:
		return v.Ref
	case *wire.Chunk:
		return v.Ref
	case *wire.ArchiveState:
		return v.Ref
	}
	return 0
}
