package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client/internal/disk"
	"github.com/natterim/natter/p2p"
	"github.com/natterim/natter/wire"
)

// The peer-to-peer layer (Options.Direct): see docs/p2p.md.
//
// After login the Client asks natterd for STUN/TURN credentials, gathers its
// candidates and registers them (SetReach), and runs a p2p.Manager whose
// signals go through natterd. A conversation goes direct when the app calls
// OpenDirect (natter chat does) or, in the background, on the first Send to
// a contact that has a peer-to-peer-capable device online. Messages then go
// over the channel and are acknowledged by the peer; without an
// acknowledgement in directAckTimeout they go through the server under the
// same ID. Each side stores a copy in its own inbox (StoreCopy) for the
// user's other devices.

const (
	maxEarlyReach    = 4096 // Reach frames kept before the layer starts
	directAckTimeout = 2 * time.Second
	credsRefresh     = 5 * time.Minute // natterd's credentials last 10
	redialMin        = time.Second
	redialMax        = time.Minute
	gatherTimeout    = 5 * time.Second
	// typingEvery is the least time between two TypingEvents of one
	// channel: more frequent typing frames are dropped.
	typingEvery = 250 * time.Millisecond
)

// directFrame is what travels on a peer-to-peer channel: a message ("m"),
// the acknowledgement of one ("a"), or a typing notification ("t", with
// from and to only; never acknowledged, never stored).
type directFrame struct {
	T      string           `json:"t"`
	ID     natter.MessageID `json:"id"`
	From   natter.UserID    `json:"from,omitempty"`
	To     natter.UserID    `json:"to,omitempty"`
	Body   []byte           `json:"body,omitempty"`
	SentAt time.Time        `json:"sent_at,omitzero"`
}

type direct struct {
	c    *Client
	mgr  *p2p.Manager
	self natter.UserID

	mu      sync.Mutex
	conns   map[natter.UserID]*p2p.Conn                     // the channel to each peer (one device)
	reach   map[natter.UserID]map[natter.DeviceID]time.Time // peers' devices that registered candidates, and when
	acks    map[natter.MessageID]chan struct{}
	xfers   map[string]*xfer // files being pushed, by transfer
	dialing map[natter.UserID]bool
	wanted  map[natter.UserID]bool // peers the app talks to: dial when they become reachable
	backoff map[natter.UserID]time.Duration
	stop    chan struct{}
	ctx     context.Context // ends with the layer
	cancel  context.CancelFunc
}

// startDirect starts the peer-to-peer layer once logged in.
func (c *Client) startDirect(user natter.UserID) {
	if c.dr.Load() != nil {
		return
	}
	d := &direct{c: c, self: user,
		conns: map[natter.UserID]*p2p.Conn{}, reach: map[natter.UserID]map[natter.DeviceID]time.Time{},
		acks: map[natter.MessageID]chan struct{}{}, xfers: map[string]*xfer{}, dialing: map[natter.UserID]bool{}, wanted: map[natter.UserID]bool{},
		backoff: map[natter.UserID]time.Duration{}, stop: make(chan struct{})}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if dc, ok := c.chunks.(disk.ChunkDir); ok {
		c.wg.Go(func() { dc.Sweep(time.Now()) })
	}
	// The DTLS certificate is the one the device's signed bundle names.
	var cert *webrtc.Certificate
	if kr := c.Keyring(); kr != nil && kr.DTLS() != "" {
		var err error
		if cert, err = webrtc.CertificateFromPEM(kr.DTLS()); err != nil {
			c.log.Error("peer-to-peer disabled: DTLS certificate", "err", err)
			return
		}
	}
	mgr, err := p2p.New(p2p.Config{
		Self: user, SelfDevice: c.opts.Device, Signaler: c, Logger: c.log.With("component", "p2p"),
		RelayOnly: c.opts.DirectRelayOnly, SettingEngine: c.opts.DirectSettings, Certificate: cert,
	})
	if err != nil {
		c.log.Error("peer-to-peer disabled", "err", err)
		return
	}
	d.mgr = mgr
	c.mu.Lock()
	if !c.dr.CompareAndSwap(nil, d) {
		c.mu.Unlock()
		d.cancel()
		mgr.Close()
		return
	}
	early := c.earlyReach
	c.earlyReach = nil
	c.mu.Unlock()
	for _, r := range early {
		d.noteReach(r)
	}
	c.wg.Go(func() { d.run() })
	c.wg.Go(func() { d.accept() })
}

// run keeps credentials fresh and the device's candidates registered (a
// quiet Client registers none: contacts are never to dial it).
func (d *direct) run() {
	c := d.c
	for {
		ctx, cancel := context.WithTimeout(d.ctx, 15*time.Second)
		cfg, err := c.IceConfig(ctx)
		if err == nil {
			servers := p2p.ICEServers(cfg, d.c.serverHost())
			d.mgr.SetICEServers(servers)
			// The channels a quiet Client opens gather their own candidates.
			if !c.opts.Quiet {
				if cands, err := gather(ctx, servers, c.opts); err != nil {
					c.log.Warn("gather candidates", "err", err)
				} else if err := c.SetReach(ctx, cands); err != nil {
					c.log.Warn("register candidates", "err", err)
				}
			}
		} else if !errors.Is(err, ErrConnLost) {
			c.log.Warn("ice servers", "err", err)
		}
		cancel()
		wait := credsRefresh
		if err != nil {
			wait = 5 * time.Second
		}
		select {
		case <-d.stop:
			return
		case <-c.closing:
			return
		case <-time.After(wait):
		}
	}
}

// accept takes the channels contacts open to us.
func (d *direct) accept() {
	for conn := range d.mgr.Incoming() {
		_ = d.adopt(conn) // a refusal is logged and reported as a PathEvent
	}
}

// adopt makes conn the channel to its peer and reads it, once its DTLS
// certificate is the one the peer device's signed keys name (else natterd,
// which relayed the signalling, could be in the middle).
func (d *direct) adopt(conn *p2p.Conn) error {
	peer, dev := conn.Peer()
	if err := d.checkFingerprint(conn); err != nil {
		d.c.log.Warn("refusing peer-to-peer channel", "peer", peer, "device", dev, "err", err)
		conn.Close()
		d.mu.Lock()
		d.backoff[peer] = max(d.backoff[peer]*2, 5*time.Second)
		d.mu.Unlock()
		d.c.push(PathEvent{Peer: peer, Device: dev, Path: PathServer, Err: err})
		return err
	}
	d.mu.Lock()
	old := d.conns[peer]
	d.conns[peer] = conn
	delete(d.backoff, peer)
	d.mu.Unlock()
	if old != nil && old != conn {
		old.Close()
	}
	d.c.log.Info("peer-to-peer channel up", "peer", peer, "device", dev, "path", conn.Path(), "rtt", conn.RTT())
	if conn.Offerer() { // one side reports, so each channel counts once
		d.c.notify(&wire.PathReport{Peer: peer, Path: pathName(conn.Path())})
	}
	d.c.push(PathEvent{Peer: peer, Device: dev, Path: pathName(conn.Path()), RTT: conn.RTT()})
	d.c.wg.Go(func() { d.read(conn) })
	return nil
}

// checkFingerprint compares conn's remote DTLS certificate with the
// fingerprint in the peer device's bundle, which the device signed and the
// peer's identity certified.
func (d *direct) checkFingerprint(conn *p2p.Conn) error {
	peer, dev := conn.Peer()
	ctx, cancel := context.WithTimeout(d.ctx, keysTimeout)
	defer cancel()
	b, err := d.c.deviceBundle(ctx, peer, dev)
	if errors.Is(err, errNotCertified) {
		return fmt.Errorf("%w: %w", ErrFingerprintMismatch, err)
	}
	if err != nil {
		return err
	}
	if b.DTLS == "" || b.DTLS != conn.RemoteFingerprint() {
		return fmt.Errorf("%w: %s/%s presented %s, its keys name %q", ErrFingerprintMismatch, peer, dev, conn.RemoteFingerprint(), b.DTLS)
	}
	return nil
}

func pathName(p p2p.Path) string {
	if p == p2p.PathRelayed {
		return PathRelayed
	}
	return PathDirect
}

// read handles one channel's messages until it ends.
func (d *direct) read(conn *p2p.Conn) {
	peer, dev := conn.Peer()
	in := &incoming{offered: map[string]string{}}
	var typedAt time.Time
	for b := range conn.Messages() {
		if len(b) > 0 && b[0] == chunkFrame {
			d.takeChunk(conn, in, b[1:])
			continue
		}
		var f directFrame
		if err := json.Unmarshal(b, &f); err != nil {
			d.c.log.Warn("bad peer-to-peer frame", "peer", peer, "err", err)
			continue
		}
		switch f.T {
		case "fo", "fh", "ca":
			var ff fileFrame
			if err := json.Unmarshal(b, &ff); err != nil {
				d.c.log.Warn("bad peer-to-peer frame", "peer", peer, "err", err)
				continue
			}
			d.handleFileFrame(conn, in, ff)
		case "a":
			d.mu.Lock()
			ch := d.acks[f.ID]
			delete(d.acks, f.ID)
			d.mu.Unlock()
			if ch != nil {
				close(ch)
			}
		case "t":
			if f.From != peer || f.To != d.self {
				d.c.log.Warn("peer-to-peer typing with wrong parties", "peer", peer, "from", f.From, "to", f.To)
				continue
			}
			if now := time.Now(); now.Sub(typedAt) >= typingEvery {
				typedAt = now
				d.c.push(TypingEvent{From: peer})
			}
		case "m":
			if f.From != peer || f.To != d.self || natter.ValidateMessageID(string(f.ID)) != nil {
				d.c.log.Warn("peer-to-peer message with wrong parties", "peer", peer, "from", f.From, "to", f.To)
				continue
			}
			ack, _ := json.Marshal(directFrame{T: "a", ID: f.ID})
			conn.Send(ack)
			m := wire.Message{ID: f.ID, From: f.From, FromDevice: dev, To: f.To, Body: f.Body, SentAt: f.SentAt}
			d.c.push(directMsg{m: m, path: pathName(conn.Path())})
			d.copy(m)
		}
	}
	d.mu.Lock()
	if d.conns[peer] == conn {
		delete(d.conns, peer)
	}
	d.mu.Unlock()
	d.c.log.Info("peer-to-peer channel down", "peer", peer, "device", dev, "err", conn.Err())
	if conn.Offerer() {
		d.c.notify(&wire.PathReport{Peer: peer, Path: ""})
	}
	select {
	case <-d.c.closing:
		return
	default:
	}
	d.c.push(PathEvent{Peer: peer, Device: dev, Path: PathServer})
	d.redial(peer)
}

// copy stores a copy of a direct message in the user's own inbox, for the
// user's other devices; it retries in the background while reconnecting.
func (d *direct) copy(m wire.Message) {
	d.c.wg.Go(func() {
		for i := range 10 {
			ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
			err := d.c.StoreCopy(ctx, m)
			cancel()
			if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrNotLoggedIn) {
				return
			}
			select {
			case <-d.c.closing:
				return
			case <-time.After(time.Duration(i+1) * 500 * time.Millisecond):
			}
		}
	})
}

// noteReach records a contact device's connection info (Reach pushes).
func (d *direct) noteReach(r *wire.Reach) {
	d.mu.Lock()
	if len(r.Candidates) == 0 {
		delete(d.reach[r.User], r.Device)
		d.mu.Unlock()
		return
	}
	if d.reach[r.User] == nil {
		d.reach[r.User] = map[natter.DeviceID]time.Time{}
	}
	d.reach[r.User][r.Device] = time.Now()
	dial := d.wanted[r.User] && d.conns[r.User] == nil
	d.mu.Unlock()
	if dial {
		// A peer we talk to just became reachable: try now.
		d.openBackground(r.User)
	}
}

// forget drops dev's connection info, as a Reach without candidates
// does: natterd said it is not online.
func (d *direct) forget(peer natter.UserID, dev natter.DeviceID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.reach[peer], dev)
}

// device picks the peer device to open a channel to: the one that
// registered its connection info most recently.
func (d *direct) device(peer natter.UserID) (natter.DeviceID, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var best natter.DeviceID
	var at time.Time
	for dev, t := range d.reach[peer] {
		if t.After(at) {
			best, at = dev, t
		}
	}
	return best, best != ""
}

// open dials peer unless a channel exists or a dial is under way.
func (d *direct) open(ctx context.Context, peer natter.UserID) (*p2p.Conn, error) {
	d.mu.Lock()
	d.wanted[peer] = true
	if conn := d.conns[peer]; conn != nil {
		d.mu.Unlock()
		return conn, nil
	}
	d.mu.Unlock()
	dev, ok := d.device(peer)
	if !ok {
		return nil, fmt.Errorf("%s has no device online that takes peer-to-peer connections", peer)
	}
	conn, err := d.mgr.Dial(ctx, peer, dev)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	known := d.conns[peer] == conn
	d.mu.Unlock()
	if !known {
		if err := d.adopt(conn); err != nil {
			return nil, err
		}
	}
	return conn, nil
}

// openBackground dials peer in the background (once at a time).
func (d *direct) openBackground(peer natter.UserID) {
	d.mu.Lock()
	if d.dialing[peer] || d.conns[peer] != nil {
		d.mu.Unlock()
		return
	}
	d.dialing[peer] = true
	d.mu.Unlock()
	d.c.wg.Go(func() {
		ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
		_, err := d.open(ctx, peer)
		cancel()
		d.mu.Lock()
		delete(d.dialing, peer)
		d.mu.Unlock()
		if err != nil {
			d.c.log.Info("no peer-to-peer channel", "peer", peer, "err", err)
			select {
			case <-d.stop:
				return
			default:
			}
			dev, _ := d.device(peer)
			var we *wire.Err
			if errors.As(err, &we) && we.Code == wire.CodeOffline {
				// The device went offline while we dialled: nothing
				// failed, and there is nothing to dial until it (or
				// another device of peer's) says it is reachable again.
				d.forget(peer, dev)
				return
			}
			d.c.push(PathEvent{Peer: peer, Device: dev, Path: PathServer, Err: err})
			d.redial(peer)
		}
	})
}

// redial tries peer again after a growing pause, while it has a device
// online that takes peer-to-peer connections.
func (d *direct) redial(peer natter.UserID) {
	d.mu.Lock()
	b := min(max(2*d.backoff[peer], redialMin), redialMax)
	d.backoff[peer] = b
	d.mu.Unlock()
	if _, ok := d.device(peer); !ok {
		return
	}
	d.c.wg.Go(func() {
		select {
		case <-d.c.closing:
		case <-d.stop:
		case <-time.After(b):
			d.openBackground(peer)
		}
	})
}

// send tries to deliver a message over the channel to its recipient. It
// reports whether the peer acknowledged it.
func (d *direct) send(ctx context.Context, id natter.MessageID, to natter.UserID, body []byte) (SendResult, bool) {
	d.mu.Lock()
	conn := d.conns[to]
	d.wanted[to] = true
	d.mu.Unlock()
	if conn == nil {
		d.openBackground(to)
		return SendResult{}, false
	}
	now := time.Now()
	b, err := json.Marshal(directFrame{T: "m", ID: id, From: d.self, To: to, Body: body, SentAt: now})
	if err != nil || len(b) > p2p.MaxMessageSize {
		return SendResult{}, false
	}
	ack := make(chan struct{})
	d.mu.Lock()
	d.acks[id] = ack
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.acks, id)
		d.mu.Unlock()
	}()
	if err := conn.SendContext(ctx, b); err != nil {
		return SendResult{}, false
	}
	t := time.NewTimer(directAckTimeout)
	defer t.Stop()
	select {
	case <-ack:
	case <-conn.Done():
		return SendResult{}, false
	case <-t.C:
		d.c.log.Warn("peer did not acknowledge; closing the channel and using the server", "peer", to, "id", id)
		conn.Close()
		return SendResult{}, false
	case <-ctx.Done():
		return SendResult{}, false
	}
	_, dev := conn.Peer()
	m := wire.Message{ID: id, From: d.self, FromDevice: d.c.opts.Device, To: to, Body: body, SentAt: now}
	d.copy(m)
	return SendResult{ID: id, SentAt: now, Online: true, Path: pathName(conn.Path()), Device: dev}, true
}

// typing tells peer that the user is typing, over the channel to them. It
// reports whether a channel took it.
func (d *direct) typing(ctx context.Context, peer natter.UserID) bool {
	d.mu.Lock()
	conn := d.conns[peer]
	d.mu.Unlock()
	if conn == nil {
		return false
	}
	b, err := json.Marshal(directFrame{T: "t", From: d.self, To: peer})
	return err == nil && conn.SendContext(ctx, b) == nil
}

func (d *direct) close() {
	close(d.stop)
	d.cancel()
	d.mgr.Close()
}

// OpenDirect opens a peer-to-peer channel to peer (to the device that
// registered its connection info last) and returns its path and round-trip
// time. It needs Options.Direct. Sends to peer use the channel from then on.
func (c *Client) OpenDirect(ctx context.Context, peer natter.UserID) (path string, rtt time.Duration, err error) {
	d := c.dr.Load()
	if d == nil {
		return PathServer, 0, errors.New("peer-to-peer is off (Options.Direct) or not started")
	}
	conn, err := d.open(ctx, peer)
	if err != nil {
		return PathServer, 0, err
	}
	return pathName(conn.Path()), conn.RTT(), nil
}

// PathTo returns the current path to peer and, for a peer-to-peer channel,
// its round-trip time.
func (c *Client) PathTo(peer natter.UserID) (string, time.Duration) {
	d := c.dr.Load()
	if d == nil {
		return PathServer, 0
	}
	d.mu.Lock()
	conn := d.conns[peer]
	d.mu.Unlock()
	if conn == nil {
		return PathServer, 0
	}
	return pathName(conn.Path()), conn.RTT()
}

// gather collects this device's ICE candidates (host, server-reflexive from
// natterd's STUN, relay from its TURN) to register as connection info.
func gather(ctx context.Context, servers []webrtc.ICEServer, o Options) ([]natter.Candidate, error) {
	var se webrtc.SettingEngine
	if o.DirectSettings != nil {
		o.DirectSettings(&se)
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: servers})
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	var mu sync.Mutex
	var out []natter.Candidate
	pc.OnICECandidate(func(k *webrtc.ICECandidate) {
		if k == nil {
			return
		}
		mu.Lock()
		out = append(out, natter.Candidate{Type: k.Typ.String(), Proto: k.Protocol.String(),
			// (A browser's IPv6 address comes in brackets.)
			Addr: net.JoinHostPort(strings.Trim(k.Address, "[]"), strconv.Itoa(int(k.Port))), Priority: k.Priority})
		mu.Unlock()
	})
	if _, err := pc.CreateDataChannel("gather", nil); err != nil {
		return nil, err
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, err
	}
	t := time.NewTimer(gatherTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	if len(out) == 0 {
		return nil, errors.New("no candidates gathered")
	}
	return out, nil
}

// notify sends a frame that has no answer, if the Client is connected.
func (c *Client) notify(v any) {
	cn := c.liveConn()
	if cn == nil {
		return
	}
	frame, err := wire.Encode(v)
	if err != nil {
		c.log.Error("encode", "err", err)
		return
	}
	cn.tryEnqueue(frame)
}
