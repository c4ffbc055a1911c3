package p2p

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/natterim/natter"
	"github.com/pion/datachannel"
	"github.com/pion/ice/v4"
	"github.com/pion/sctp"
	"github.com/pion/webrtc/v4"
)

// Path says how a connection's packets travel, from its selected ICE
// candidate pair.
type Path string

// The paths.
const (
	// PathUnknown: no candidate pair is selected (yet).
	PathUnknown Path = ""
	// PathDirect: host to host (same LAN) or through NAT mappings (server-
	// or peer-reflexive candidates, UDP hole punching).
	PathDirect Path = "direct"
	// PathRelayed: through a TURN relay, on either side.
	PathRelayed Path = "relayed"
)

// Flow control of Send: a message waits while more than highWater bytes
// are queued in SCTP; the data channel says when the queue is back down to
// lowWater.
const (
	highWater = 1 << 20
	lowWater  = 256 << 10
)

// Bounds on what a peer can make an attempt hold: remote candidates
// (each one makes ICE send checks to its address), and signals queued but
// not yet applied.
const (
	maxRemoteCandidates = 64
	maxQueuedSignals    = 256
)

// dataChannelLabel names the one data channel of a connection. It is
// negotiated out of band (both sides create it with ID 0), so no DCEP
// round trip is needed.
const dataChannelLabel = "natter"

// Conn is a peer-to-peer connection with one device of a contact: one
// WebRTC data channel, reliable and ordered, encrypted with DTLS. Its
// methods are safe for concurrent use.
type Conn struct {
	m       *Manager
	key     sessKey
	offerer bool
	log     *slog.Logger

	// Guarded by m.mu.
	dial      *dial // the Dial this attempt will answer, if any
	connected bool

	inMu     sync.Mutex
	inQ      []signal
	inNotify chan struct{}

	// run's only.
	pendingCands []webrtc.ICECandidateInit // held until the remote description is set
	remoteCands  int                       // remote candidates taken

	outMu     sync.Mutex
	outQ      []signal
	outFinal  bool // the attempt is over: send bye (if outBye) and stop
	outBye    bool
	outNotify chan struct{}

	// Set by run before the Conn is handed out.
	pc       *webrtc.PeerConnection
	dc       *webrtc.DataChannel
	cert     *webrtc.Certificate
	localFP  string
	remoteFP string
	rw       datachannel.ReadWriteCloser // set by the OnOpen handler before opened is closed
	opened   chan struct{}
	openErr  error

	msgs   chan []byte
	low    chan struct{}
	sendMu sync.Mutex

	done     chan struct{} // closed by end
	endOnce  sync.Once
	err      error // why it ended; set before done is closed
	sendBye  bool
	closing  chan struct{} // closed by closeLocal: nobody reads Messages any more
	closeMu  sync.Once
	finished chan struct{} // closed once the PeerConnection is closed

	statMu      sync.Mutex
	remoteTypes map[string]webrtc.ICECandidateType // signalled remote candidates by address
	path        Path
	rtt         time.Duration

	stopCandidates func() // set by setup: stops onLocalCandidate's listening
}

func newConn(m *Manager, key sessKey, offerer bool) *Conn {
	role := "answerer"
	if offerer {
		role = "offerer"
	}
	return &Conn{
		m:           m,
		key:         key,
		offerer:     offerer,
		log:         m.log.With("peer", key.peer.String(), "session", key.id, "role", role),
		inNotify:    make(chan struct{}, 1),
		outNotify:   make(chan struct{}, 1),
		opened:      make(chan struct{}),
		msgs:        make(chan []byte, 256),
		low:         make(chan struct{}, 1),
		done:        make(chan struct{}),
		closing:     make(chan struct{}),
		finished:    make(chan struct{}),
		remoteTypes: make(map[string]webrtc.ICECandidateType),
	}
}

// Peer returns the contact's user and device.
func (c *Conn) Peer() (natter.UserID, natter.DeviceID) { return c.key.peer.user, c.key.peer.device }

// Session returns the attempt's session ID (the one in its signals).
func (c *Conn) Session() string { return c.key.id }

// Offerer reports whether this side sent the offer.
func (c *Conn) Offerer() bool { return c.offerer }

// Messages delivers the peer's messages in order. It is closed when the
// connection has ended and every message received before that has been
// delivered (or the Conn was closed on this side, which drops the rest).
// Keep reading it: while it is full the peer's Sends slow down and stop.
func (c *Conn) Messages() <-chan []byte { return c.msgs }

// Done is closed when the connection ends: Close on either side, a bye,
// or a broken path (Config.FailedTimeout of silence, a DTLS or SCTP
// failure). Err says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (an error wrapping ErrClosed,
// ErrPeerClosed, ErrFailed or ErrProtocol), or nil while it is up.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// LocalFingerprint is the SHA-256 fingerprint of this side's DTLS
// certificate ("sha-256 " and lower-case hex pairs joined by ':', as in
// SDP). RemoteFingerprint is the peer's, from the certificate it proved it
// holds in the DTLS handshake. A later protocol binds them to the users'
// identity keys; until then they vouch only as much as natterd does.
func (c *Conn) LocalFingerprint() string { return c.localFP }

// RemoteFingerprint: see LocalFingerprint.
func (c *Conn) RemoteFingerprint() string { return c.remoteFP }

// Path reports how the connection's packets travel now, from the selected
// ICE candidate pair; it follows the pair if ICE switches (in the
// browser, as of the last reading of its statistics: see the package
// doc). After the connection ended it is the last path seen.
func (c *Conn) Path() Path { return c.selectedPath() }

// RTT is the round-trip time of the selected candidate pair, measured by
// ICE's connectivity checks and keepalives (every Config.Keepalive on an
// idle path). Zero until measured; after the connection ended, the last
// value.
func (c *Conn) RTT() time.Duration { return c.selectedRTT() }

// pathOf is the path of a candidate pair from its candidates' types and
// the remote one's address. The caller holds c.statMu.
func (c *Conn) pathOf(local, remote webrtc.ICECandidateType, remoteAddr string) Path {
	if remote == webrtc.ICECandidateTypePrflx {
		// Learned from the peer's checks before its candidate was
		// signalled: the signalled type tells a relay.
		if t, ok := c.remoteTypes[remoteAddr]; ok {
			remote = t
		}
	}
	if local == webrtc.ICECandidateTypeRelay || remote == webrtc.ICECandidateTypeRelay {
		return PathRelayed
	}
	return PathDirect
}

// Send sends one message of at most MaxMessageSize bytes, reliably and in
// order. It returns once the message is queued; it blocks while more than
// about 1 MiB is queued for the peer (flow control), until the queue drains
// or the connection ends. See SendContext.
func (c *Conn) Send(b []byte) error { return c.SendContext(context.Background(), b) }

// SendContext is Send with a context that bounds the wait for queue space.
// ctx is only consulted before the message is queued: once queued, a
// message is never half sent.
func (c *Conn) SendContext(ctx context.Context, b []byte) error {
	if len(b) > MaxMessageSize {
		return fmt.Errorf("p2p: send %d bytes: %w", len(b), ErrTooLarge)
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	for {
		if err := c.Err(); err != nil {
			return fmt.Errorf("p2p: send: %w", err)
		}
		if c.dc.BufferedAmount() <= highWater {
			break
		}
		select {
		case <-c.low:
		case <-c.done:
		case <-ctx.Done():
			return fmt.Errorf("p2p: send: %w", ctx.Err())
		}
	}
	for _, f := range fragments(b) {
		if _, err := c.rw.WriteDataChannel(f, false); err != nil {
			// A message cut short would corrupt the framing.
			c.end(fmt.Errorf("%w: write: %w", ErrFailed, err), true)
			return fmt.Errorf("p2p: send: %w", c.Err())
		}
	}
	return nil
}

// Close ends the connection: it closes the data channel and the
// PeerConnection (the peer sees Done at once) and sends the peer a bye.
// Messages not yet delivered either way are dropped. It returns once the
// PeerConnection is closed; the bye is sent in the background.
func (c *Conn) Close() error {
	c.closeLocal()
	<-c.finished
	return nil
}

func (c *Conn) closeLocal() {
	c.closeMu.Do(func() { close(c.closing) })
	c.end(ErrClosed, true)
}

// end records why the attempt or connection ended and wakes run, which
// tears it down. bye says whether to tell the peer.
func (c *Conn) end(err error, bye bool) {
	c.endOnce.Do(func() {
		c.err, c.sendBye = err, bye
		close(c.done)
	})
}

func (c *Conn) isConnected() bool {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	return c.connected
}

// queue hands an incoming signal to run.
func (c *Conn) queue(s signal) {
	c.inMu.Lock()
	if len(c.inQ) >= maxQueuedSignals {
		c.inMu.Unlock()
		c.log.Debug("p2p: signal dropped: queue full", "kind", s.kind)
		return
	}
	c.inQ = append(c.inQ, s)
	c.inMu.Unlock()
	select {
	case c.inNotify <- struct{}{}:
	default:
	}
}

// send queues an outgoing signal for sendLoop.
func (c *Conn) send(s signal) {
	c.outMu.Lock()
	if !c.outFinal {
		c.outQ = append(c.outQ, s)
	}
	c.outMu.Unlock()
	notify(c.outNotify)
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run owns the attempt: it sets up the PeerConnection, applies incoming
// signals in order, hands the Conn out once the data channel is open and
// tears everything down when the connection ends.
func (c *Conn) run() {
	defer c.m.wg.Done()
	if err := c.setup(); err != nil {
		c.end(err, true)
	}
	timer := time.NewTimer(c.m.cfg.ConnectTimeout)
	defer timer.Stop()
	timeout, opened := timer.C, c.opened
	var out chan<- *Conn
	for {
		select {
		case <-c.done:
			c.teardown()
			return
		case <-c.inNotify:
			c.applySignals()
		case <-opened:
			opened, timeout = nil, nil
			out = c.onOpen()
		case out <- c:
			out = nil
			c.log.Debug("p2p: incoming connection delivered")
		case <-timeout:
			c.end(fmt.Errorf("%w after %v", ErrTimeout, c.m.cfg.ConnectTimeout), true)
		}
	}
}

func (c *Conn) setup() error {
	m := c.m
	m.mu.Lock()
	cfg, err := m.pcConfig()
	m.mu.Unlock()
	if err != nil {
		return err
	}
	c.cert = &cfg.Certificates[0]
	pc, err := m.newAPI(c.log).NewPeerConnection(cfg)
	if err != nil {
		return fmt.Errorf("p2p: new peer connection: %w", err)
	}
	c.pc = pc
	negotiated, id := true, uint16(0)
	dc, err := pc.CreateDataChannel(dataChannelLabel, &webrtc.DataChannelInit{Negotiated: &negotiated, ID: &id})
	if err != nil {
		return fmt.Errorf("p2p: data channel: %w", err)
	}
	c.dc = dc
	prepareDataChannel(dc)
	dc.SetBufferedAmountLowThreshold(lowWater)
	dc.OnBufferedAmountLow(func() { notify(c.low) })
	var once sync.Once
	dc.OnOpen(func() {
		once.Do(func() {
			c.rw, c.openErr = dc.Detach()
			close(c.opened)
		})
	})
	dc.OnClose(func() { c.end(ErrPeerClosed, true) })
	c.stopCandidates = c.onLocalCandidate(func(cand webrtc.ICECandidateInit) {
		c.send(signal{kind: KindCandidate, cand: cand})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		c.log.Debug("p2p: connection state", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateFailed:
			c.end(ErrFailed, true)
		case webrtc.PeerConnectionStateClosed:
			c.end(ErrPeerClosed, true)
		}
	})
	if c.offerer {
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			return fmt.Errorf("p2p: create offer: %w", err)
		}
		// Queued before SetLocalDescription starts gathering, so that the
		// peer gets the offer before any candidate.
		c.send(signal{kind: KindOffer, desc: offer})
		if err := pc.SetLocalDescription(offer); err != nil {
			return fmt.Errorf("p2p: set offer: %w", err)
		}
	}
	return nil
}

// applySignals applies the queued incoming signals, in order.
func (c *Conn) applySignals() {
	c.inMu.Lock()
	q := c.inQ
	c.inQ = nil
	c.inMu.Unlock()
	for _, s := range q {
		if c.pc == nil || c.Err() != nil {
			return
		}
		if err := c.apply(s); err != nil {
			c.log.Debug("p2p: signal failed", "kind", s.kind, "err", err)
			c.end(err, true)
			return
		}
	}
}

func (c *Conn) apply(s signal) error {
	pc := c.pc
	switch s.kind {
	case KindOffer:
		if c.offerer || pc.RemoteDescription() != nil {
			return nil
		}
		if err := pc.SetRemoteDescription(s.desc); err != nil {
			return fmt.Errorf("%w: offer: %w", ErrBadSignal, err)
		}
		answer, err := pc.CreateAnswer(nil)
		if err != nil {
			return fmt.Errorf("p2p: create answer: %w", err)
		}
		c.send(signal{kind: KindAnswer, desc: answer})
		if err := pc.SetLocalDescription(answer); err != nil {
			return fmt.Errorf("p2p: set answer: %w", err)
		}
		return c.addPendingCandidates()
	case KindAnswer:
		if !c.offerer || pc.RemoteDescription() != nil {
			return nil
		}
		if err := pc.SetRemoteDescription(s.desc); err != nil {
			return fmt.Errorf("%w: answer: %w", ErrBadSignal, err)
		}
		return c.addPendingCandidates()
	case KindCandidate:
		if c.remoteCands >= maxRemoteCandidates {
			c.log.Debug("p2p: candidate dropped: too many")
			return nil
		}
		c.remoteCands++
		c.noteCandidate(s.cand)
		if pc.RemoteDescription() == nil {
			c.pendingCands = append(c.pendingCands, s.cand)
			return nil
		}
		if err := pc.AddICECandidate(s.cand); err != nil {
			c.log.Debug("p2p: candidate dropped", "err", err)
		}
	case KindBye:
		c.end(ErrPeerClosed, false)
	}
	return nil
}

func (c *Conn) addPendingCandidates() error {
	q := c.pendingCands
	c.pendingCands = nil
	for _, cand := range q {
		if err := c.pc.AddICECandidate(cand); err != nil {
			c.log.Debug("p2p: candidate dropped", "err", err)
		}
	}
	return nil
}

// noteCandidate remembers a signalled remote candidate's type by address,
// for Path.
func (c *Conn) noteCandidate(init webrtc.ICECandidateInit) {
	cand, err := ice.UnmarshalCandidate(strings.TrimPrefix(init.Candidate, "candidate:"))
	if err != nil {
		return
	}
	t, err := webrtc.NewICECandidateType(cand.Type().String())
	if err != nil {
		return
	}
	c.statMu.Lock()
	c.remoteTypes[net.JoinHostPort(cand.Address(), strconv.Itoa(cand.Port()))] = t
	c.statMu.Unlock()
}

// onOpen runs once the data channel is open: it completes the Conn and
// settles the Dial waiting for it, or returns the channel to hand it out
// on (Incoming).
func (c *Conn) onOpen() chan<- *Conn {
	if c.openErr != nil {
		c.end(fmt.Errorf("%w: detach: %w", ErrFailed, c.openErr), true)
		return nil
	}
	c.localFP, c.remoteFP = c.fingerprints()
	c.watchPath()
	path := c.Path()
	c.log.Debug("p2p: connected", "path", string(path), "rtt", c.RTT())

	m := c.m
	m.wg.Add(1)
	go c.readLoop()
	m.mu.Lock()
	defer m.mu.Unlock()
	c.connected = true
	if c.dial != nil {
		m.settle(c.dial, c, nil)
		c.dial = nil
		return nil
	}
	return m.incoming
}

// teardown closes everything once the connection or attempt has ended.
func (c *Conn) teardown() {
	m := c.m
	m.mu.Lock()
	m.forget(c)
	if c.dial != nil {
		m.settle(c.dial, nil, c.err)
		c.dial = nil
	}
	m.mu.Unlock()
	level := slog.LevelDebug
	if errors.Is(c.err, ErrFailed) || errors.Is(c.err, ErrTimeout) || errors.Is(c.err, ErrProtocol) {
		level = slog.LevelInfo
	}
	c.log.Log(context.Background(), level, "p2p: ended", "connected", c.isConnected(), "err", c.err)

	select {
	case <-c.opened:
		if c.rw != nil {
			c.rw.Close() // resets the stream: the peer's channel closes at once
		}
	default:
	}
	if c.pc != nil {
		if err := c.closePeerConnection(); err != nil {
			c.log.Debug("p2p: close peer connection", "err", err)
		}
		if c.stopCandidates != nil {
			c.stopCandidates()
		}
	}
	c.outMu.Lock()
	c.outFinal, c.outBye, c.outQ = true, c.sendBye, nil
	c.outMu.Unlock()
	notify(c.outNotify)
	close(c.finished)
}

// sendLoop sends the attempt's outgoing signals in order, then a bye if
// the attempt ended on this side.
func (c *Conn) sendLoop() {
	defer c.m.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for range c.outNotify {
		for {
			c.outMu.Lock()
			if len(c.outQ) == 0 {
				final, bye := c.outFinal, c.outBye
				c.outMu.Unlock()
				if !final {
					break
				}
				if bye {
					byeCtx, cancel := context.WithTimeout(context.Background(), c.m.cfg.SignalTimeout)
					c.signal(byeCtx, signal{kind: KindBye})
					cancel()
				}
				return
			}
			s := c.outQ[0]
			c.outQ = c.outQ[1:]
			c.outMu.Unlock()
			sctx, scancel := context.WithTimeout(ctx, c.m.cfg.SignalTimeout)
			c.signal(sctx, s)
			scancel()
		}
	}
}

func (c *Conn) signal(ctx context.Context, s signal) {
	data, err := encodeSignal(s)
	if err == nil {
		err = c.m.cfg.Signaler.Signal(ctx, c.key.peer.user, c.key.peer.device, c.key.id, s.kind, data)
	}
	if err != nil {
		c.log.Debug("p2p: signal not sent", "kind", s.kind, "err", err)
		if s.kind == KindOffer || s.kind == KindAnswer {
			c.end(fmt.Errorf("%w: %s not sent: %w", ErrFailed, s.kind, err), false)
		}
	}
}

// readLoop reads the data channel, reassembles messages and delivers them
// on Messages, which it closes when the channel ends.
func (c *Conn) readLoop() {
	defer c.m.wg.Done()
	defer close(c.msgs)
	buf := make([]byte, maxFragment)
	var r reassembler
	for {
		n, _, err := c.rw.ReadDataChannel(buf)
		if err != nil {
			switch {
			case errors.Is(err, io.ErrShortBuffer):
				c.end(fmt.Errorf("%w: fragment over %d bytes", ErrProtocol, maxFragment), true)
			case errors.Is(err, io.EOF), errors.Is(err, sctp.ErrUserInitiatedAbort):
				// The peer reset the stream or closed the association.
				c.end(ErrPeerClosed, true)
			default:
				c.end(fmt.Errorf("%w: read: %w", ErrFailed, err), true)
			}
			return
		}
		msg, ok, err := r.add(buf[:n])
		if err != nil {
			c.end(err, true)
			return
		}
		if !ok {
			continue
		}
		select {
		case c.msgs <- msg:
		case <-c.closing:
			return
		case <-c.m.closing:
			// The Conn has ended on the peer's side and nobody reads.
			return
		}
	}
}

// Fingerprint is the SHA-256 fingerprint of a DTLS certificate as
// Conn.LocalFingerprint and RemoteFingerprint give it ("sha-256 ab:cd:..."),
// for binding a device's certificate to its keys.
func Fingerprint(cert *webrtc.Certificate) string { return certFingerprint(cert) }

// certFingerprint is the SHA-256 fingerprint of cert, as in SDP.
func certFingerprint(cert *webrtc.Certificate) string {
	fps, err := cert.GetFingerprints()
	if err != nil {
		return ""
	}
	for _, fp := range fps {
		if fp.Algorithm == "sha-256" {
			return "sha-256 " + strings.ToLower(fp.Value)
		}
	}
	return ""
}

// derFingerprint is the SHA-256 fingerprint of a DER certificate, as in
// SDP.
func derFingerprint(der []byte) string {
	if len(der) == 0 {
		return ""
	}
	sum := sha256.Sum256(der)
	var b strings.Builder
	b.WriteString("sha-256 ")
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02x", x)
	}
	return b.String()
}
