package p2p

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/natterim/natter"
	"github.com/pion/webrtc/v4"
)

// Config configures a Manager. Self, SelfDevice and Signaler are required;
// the other fields have usable defaults.
type Config struct {
	// Self and SelfDevice name this device. They decide glare (see the
	// package doc) and are never sent by the Manager itself: the server
	// stamps signals with the sender.
	Self       natter.UserID
	SelfDevice natter.DeviceID

	// ICEServers are the STUN and TURN servers to gather candidates with,
	// usually natterd's (see ICEServers). Manager.SetICEServers replaces
	// them for later attempts, e.g. when TURN credentials are renewed.
	// Each attempt's PeerConnection is made with the servers current when
	// the attempt starts (the browser takes them only then).
	ICEServers []webrtc.ICEServer

	// Signaler sends this side's offers, answers, candidates and byes.
	Signaler Signaler

	// Logger receives the package's logs (failed attempts and broken
	// paths at Info, the rest at Debug) and pion's, tagged with the peer
	// and session (pion's Error as Warn, its Info and Warn as Debug, its
	// Debug and Trace below Debug). Default: none. In the browser pion
	// has no logs to give: the browser's are in its own console and
	// webrtc-internals.
	Logger *slog.Logger

	// RelayOnly gathers and uses relay candidates only (TURN), for tests
	// and for users who do not want to show their addresses to peers.
	RelayOnly bool

	// ConnectTimeout bounds an attempt, from the first signal to the data
	// channel being open. Default 10 s.
	ConnectTimeout time.Duration

	// DisconnectedTimeout is the silence on the selected path after which
	// ICE calls it disconnected (it may recover); FailedTimeout the silence
	// after which it has failed and the Conn ends (Done). Keepalive is how
	// often ICE checks an idle path. Defaults 2 s, 5 s and 1 s, far below
	// pion's (5 s, 30 s, 2 s), so that the SDK can fall back to the server
	// promptly. In the browser they do not apply: its RTCPeerConnection
	// keeps its own ICE timeouts, and Keepalive is only how often Path and
	// RTT are read from its statistics.
	DisconnectedTimeout time.Duration
	FailedTimeout       time.Duration
	Keepalive           time.Duration

	// SignalTimeout bounds one Signaler.Signal call. Default 5 s.
	SignalTimeout time.Duration

	// MaxPending bounds the attempts in progress (not yet connected), ours
	// and our contacts'; offers beyond it, or beyond 4 from one device,
	// are dropped. Default 32.
	MaxPending int

	// Certificate is the DTLS certificate of every connection of this
	// Manager, so that LocalFingerprint is stable and can be bound to the
	// user's identity key. Default: a new ECDSA P-256 certificate, replaced
	// by a new one a day before it expires. The browser does not use it:
	// each RTCPeerConnection makes its own (see the package doc).
	Certificate *webrtc.Certificate

	// SettingEngine, if set, is called with the SettingEngine the Manager
	// has prepared (timeouts, detached data channels, logging) before the
	// webrtc.API is built: tests restrict interfaces and candidates with it
	// (SetIPFilter, SetIncludeLoopbackCandidate, SetNet for a virtual
	// network, ...). In the browser pion's SettingEngine has nothing to
	// set but DetachDataChannels.
	SettingEngine func(*webrtc.SettingEngine)
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.DisconnectedTimeout <= 0 {
		c.DisconnectedTimeout = 2 * time.Second
	}
	if c.FailedTimeout <= c.DisconnectedTimeout {
		c.FailedTimeout = max(5*time.Second, c.DisconnectedTimeout+time.Second)
	}
	if c.Keepalive <= 0 {
		c.Keepalive = time.Second
	}
	if c.SignalTimeout <= 0 {
		c.SignalTimeout = 5 * time.Second
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 32
	}
}

// peerKey names one device of a contact.
type peerKey struct {
	user   natter.UserID
	device natter.DeviceID
}

func (k peerKey) String() string { return string(k.user) + "/" + string(k.device) }

// less orders devices for glare: the smaller keeps the offerer role.
func (k peerKey) less(o peerKey) bool {
	if k.user != o.user {
		return k.user < o.user
	}
	return k.device < o.device
}

// sessKey names one attempt with one device: session IDs are chosen by
// the offerer, so they are only unique per peer.
type sessKey struct {
	peer peerKey
	id   string
}

// recentSessions is how many ended sessions the Manager remembers, so that
// late or replayed signals for them are ignored rather than taken for new
// attempts.
const recentSessions = 256

// Manager makes and accepts peer-to-peer connections for one device. It is
// safe for concurrent use.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	se       webrtc.SettingEngine // prepared once; each attempt's API copies it
	incoming chan *Conn
	closing  chan struct{} // closed by Close
	wg       sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	servers  []webrtc.ICEServer
	cert     *webrtc.Certificate
	ownCert  bool // cert was made here and is renewed here
	sessions map[sessKey]*Conn
	dials    map[peerKey]*dial
	recent   map[sessKey]struct{}
	recentQ  []sessKey // ring of recent's keys, oldest first
}

// dial is a Dial in progress; concurrent Dials to one device share it.
type dial struct {
	done    chan struct{} // closed when settled
	conn    *Conn         // the result, if it succeeded
	err     error         // else why not
	sess    *Conn         // the attempt that will settle it
	waiters int
}

// New returns a Manager. The caller must Close it.
func New(cfg Config) (*Manager, error) {
	if err := natter.ValidateUserID(string(cfg.Self)); err != nil {
		return nil, fmt.Errorf("p2p: config: %w", err)
	}
	if err := natter.ValidateDeviceID(string(cfg.SelfDevice)); err != nil {
		return nil, fmt.Errorf("p2p: config: %w", err)
	}
	if cfg.Signaler == nil {
		return nil, errors.New("p2p: config: no Signaler")
	}
	cfg.setDefaults()
	m := &Manager{
		cfg:      cfg,
		log:      cfg.Logger.With("p2p", string(cfg.Self)+"/"+string(cfg.SelfDevice)),
		incoming: make(chan *Conn, 16),
		closing:  make(chan struct{}),
		servers:  slices.Clone(cfg.ICEServers),
		cert:     cfg.Certificate,
		sessions: make(map[sessKey]*Conn),
		dials:    make(map[peerKey]*dial),
		recent:   make(map[sessKey]struct{}),
	}
	if m.cert == nil {
		cert, err := newCertificate()
		if err != nil {
			return nil, err
		}
		m.cert, m.ownCert = cert, true
	}

	m.se = newSettingEngine(cfg)
	return m, nil
}

func newCertificate() (*webrtc.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("p2p: certificate key: %w", err)
	}
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return nil, fmt.Errorf("p2p: certificate: %w", err)
	}
	return cert, nil
}

// SetICEServers replaces the STUN and TURN servers for attempts started
// from now on (attempts in progress keep theirs).
func (m *Manager) SetICEServers(servers []webrtc.ICEServer) {
	m.mu.Lock()
	m.servers = slices.Clone(servers)
	m.mu.Unlock()
}

// LocalFingerprint is the SHA-256 fingerprint of this Manager's current
// DTLS certificate, as Conn.LocalFingerprint gives it. In the browser it
// is empty: each RTCPeerConnection makes its own certificate (see the
// package doc).
func (m *Manager) LocalFingerprint() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.certFingerprint()
}

// pcConfig returns the configuration for a new PeerConnection. The caller
// holds m.mu.
func (m *Manager) pcConfig() (webrtc.Configuration, error) {
	if m.ownCert && time.Until(m.cert.Expires()) < 24*time.Hour {
		cert, err := newCertificate()
		if err != nil {
			return webrtc.Configuration{}, err
		}
		m.cert = cert
	}
	cfg := webrtc.Configuration{
		ICEServers:   slices.Clone(m.servers),
		Certificates: []webrtc.Certificate{*m.cert},
	}
	if m.cfg.RelayOnly {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	return cfg, nil
}

// Incoming delivers the connections contacts opened to this device (this
// side answered). Read it continually: a connection not yet taken from it
// is up for the peer, whose messages wait unread. It is closed by Close.
func (m *Manager) Incoming() <-chan *Conn { return m.incoming }

func (m *Manager) self() peerKey { return peerKey{m.cfg.Self, m.cfg.SelfDevice} }

// Dial opens a connection to one device of a contact: it sends an offer and
// waits until the data channel is open, ctx ends, Config.ConnectTimeout
// passes, or the attempt fails. Concurrent Dials to the same device share
// one attempt and return the same Conn. If the peer dials us at the same
// time (glare), the attempt the rule in the package doc keeps is the one
// Dial returns, whichever side offered. A connection the peer is opening
// to us, not yet connected, is taken over in the same way: Dial returns it
// rather than Incoming.
func (m *Manager) Dial(ctx context.Context, peer natter.UserID, device natter.DeviceID) (*Conn, error) {
	pk := peerKey{peer, device}
	if pk == m.self() {
		return nil, fmt.Errorf("p2p: dial %s: %w", pk, natter.ErrSelf)
	}
	if err := natter.ValidateDeviceID(string(device)); err != nil || peer == "" {
		return nil, fmt.Errorf("p2p: dial %s: %w: bad user or device", pk, natter.ErrBadRequest)
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("p2p: dial %s: %w", pk, ErrClosed)
	}
	d := m.dials[pk]
	if d == nil {
		d = &dial{done: make(chan struct{})}
		if c := m.unclaimedIncoming(pk); c != nil {
			c.dial, d.sess = d, c
		} else {
			if m.pending(nil) >= m.cfg.MaxPending {
				m.mu.Unlock()
				return nil, fmt.Errorf("p2p: dial %s: %w", pk, ErrBusy)
			}
			c := m.startSession(sessKey{pk, newSessionID()}, true)
			c.dial, d.sess = d, c
		}
		m.dials[pk] = d
	}
	d.waiters++
	m.mu.Unlock()

	select {
	case <-d.done:
	case <-ctx.Done():
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	d.waiters--
	select {
	case <-d.done:
		if d.err != nil {
			return nil, fmt.Errorf("p2p: dial %s: %w", pk, d.err)
		}
		return d.conn, nil
	default:
	}
	if d.waiters == 0 {
		// Nobody wants the attempt any more. One we offered ends; one the
		// peer offered goes on, to Incoming.
		d.sess.dial = nil
		if d.sess.offerer {
			d.sess.end(fmt.Errorf("dial abandoned: %w", ctx.Err()), true)
		}
		m.settle(d, nil, ctx.Err())
	}
	return nil, fmt.Errorf("p2p: dial %s: %w", pk, ctx.Err())
}

// unclaimedIncoming returns an attempt pk is making to us that is not yet
// connected or promised to a Dial. The caller holds m.mu.
func (m *Manager) unclaimedIncoming(pk peerKey) *Conn {
	for k, c := range m.sessions {
		if k.peer == pk && !c.offerer && c.dial == nil && !c.connected {
			return c
		}
	}
	return nil
}

// pending counts the attempts not yet connected, all or (if pk is not
// nil) with one device. The caller holds m.mu.
func (m *Manager) pending(pk *peerKey) int {
	n := 0
	for k, c := range m.sessions {
		if !c.connected && (pk == nil || k.peer == *pk) {
			n++
		}
	}
	return n
}

// maxPendingPerPeer bounds the attempts in progress with one device, so
// that one contact cannot take all of Config.MaxPending.
const maxPendingPerPeer = 4

// settle ends a Dial with its result. The caller holds m.mu.
func (m *Manager) settle(d *dial, c *Conn, err error) {
	select {
	case <-d.done:
		return
	default:
	}
	d.conn, d.err = c, err
	close(d.done)
	if d.sess != nil && m.dials[d.sess.key.peer] == d {
		delete(m.dials, d.sess.key.peer)
	}
}

// startSession registers a new attempt and starts its goroutines. The
// caller holds m.mu.
func (m *Manager) startSession(key sessKey, offerer bool) *Conn {
	c := newConn(m, key, offerer)
	m.sessions[key] = c
	m.wg.Add(2)
	go c.run()
	go c.sendLoop()
	return c
}

// forget removes an ended attempt and remembers its key. The caller holds
// m.mu.
func (m *Manager) forget(c *Conn) {
	if m.sessions[c.key] != c {
		return
	}
	delete(m.sessions, c.key)
	if len(m.recentQ) >= recentSessions {
		delete(m.recent, m.recentQ[0])
		m.recentQ = m.recentQ[1:]
	}
	m.recent[c.key] = struct{}{}
	m.recentQ = append(m.recentQ, c.key)
}

// HandleSignal takes a signal from a contact's device (a wire.SignalIn). It
// never blocks for long: it decodes the signal and queues it for the
// attempt it belongs to. Signals that cannot be decoded, and signals for
// unknown or ended attempts, are logged at Debug level and dropped.
// Call it in the order the signals arrived.
func (m *Manager) HandleSignal(from natter.UserID, fromDevice natter.DeviceID, session, kind string, data []byte) {
	pk := peerKey{from, fromDevice}
	log := m.log.With("peer", pk.String(), "session", session, "kind", kind)
	if from == "" || natter.ValidateDeviceID(string(fromDevice)) != nil || !validSessionID(session) || pk == m.self() {
		log.Debug("p2p: signal dropped: bad sender or session")
		return
	}
	sig, err := decodeSignal(kind, data)
	if err != nil {
		log.Debug("p2p: signal dropped", "err", err)
		return
	}
	key := sessKey{pk, session}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if c := m.sessions[key]; c != nil {
		if kind == KindOffer {
			log.Debug("p2p: signal dropped: repeated offer")
			return
		}
		c.queue(sig)
		return
	}
	if kind != KindOffer {
		log.Debug("p2p: signal dropped: no such session")
		return
	}
	if _, ok := m.recent[key]; ok {
		log.Debug("p2p: signal dropped: session ended")
		return
	}
	d := m.dials[pk]
	if d != nil && d.sess.offerer {
		// Glare: we are offering to the same device.
		if m.self().less(pk) {
			log.Debug("p2p: glare: keeping our offer")
			return
		}
		log.Debug("p2p: glare: answering theirs")
		own := d.sess
		own.dial = nil
		own.end(errGlare, true)
	} else if m.pending(nil) >= m.cfg.MaxPending || m.pending(&pk) >= maxPendingPerPeer {
		log.Warn("p2p: offer dropped: too many attempts in progress")
		return
	} else {
		d = nil
	}
	c := m.startSession(key, false)
	if d != nil {
		c.dial, d.sess = d, c
	}
	c.queue(sig)
}

// errGlare ends our own attempt when the peer's offer wins.
var errGlare = errors.New("p2p: glare: the peer's attempt was kept")

// Close ends every connection and attempt (sending bye to each peer, with
// Config.SignalTimeout), waits for their goroutines, and closes Incoming.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.closing)
	for _, c := range m.sessions {
		c.closeLocal()
	}
	for _, d := range m.dials {
		m.settle(d, nil, ErrClosed)
	}
	m.mu.Unlock()
	m.wg.Wait()
	close(m.incoming)
	// Conns delivered but never taken are closed already; drain them.
	for range m.incoming {
	}
	return nil
}

func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
