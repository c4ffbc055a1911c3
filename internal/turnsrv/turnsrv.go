// Package turnsrv is natterd's STUN and TURN service on UDP, built on
// pion/turn's server (v5, the major version pion/ice uses too, so that the
// binary holds one TURN implementation).
//
// One UDP socket answers STUN Binding requests from anyone (a client learns
// its server-reflexive address, the public address its NAT gave it) and
// TURN requests from logged-in users only (a client gets a relayed address
// on this host, for peers it cannot reach directly).
//
// Credentials follow the TURN REST API scheme (draft-uberti-behave-turn-rest):
// the hub hands a logged-in user a username "<expiry unix seconds>:<user>"
// and a password base64(HMAC-SHA1(secret, username)), made by
// Server.Credentials. The TURN server checks them without any state of its
// own. A request is refused if the password is wrong, if the user is not
// logged in (Config.Authorize), or if the credentials have expired, with one
// exception: an allocation made while the credentials were valid may go on
// being refreshed (and given permissions and channels) from the same client
// address with the same credentials for as long as the user stays logged
// in. A relayed call therefore lasts as long as the session, not as long as
// the credentials, while a leaked username/password pair can make no new
// allocation once expired. Revoke ends a user's allocations at once (the hub
// calls it when the user's last session ends).
//
// The secret is random per process unless configured: after a restart old
// credentials no longer verify, and clients fetch new ones (IceServers) as
// they do when theirs expire.
//
// Metrics (registered with Config.Registerer, if set):
//
//	natter_turn_allocations                    live allocations (gauge)
//	natter_turn_allocations_total              allocations made
//	natter_turn_auth_failures_total{reason}    refused requests: malformed, expired,
//	                                           unauthorized (no live session), bad_integrity (wrong password)
//	natter_turn_quota_refusals_total           allocations refused by MaxAllocationsPerUser
//	natter_turn_relayed_bytes_total{direction} payload bytes relayed: to_peer, to_client
//	natter_stun_binding_total                  STUN Binding requests answered
//
// pion/turn's server counts no bytes; the service counts them on the way
// out of its sockets (see relayConn and listenConn), so a datagram counts
// once it has actually been relayed.
package turnsrv

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/natterim/natter"
)

// Config configures a Server. The zero value of each field means its
// default; RelayIP is required when Addr does not name one IP address.
type Config struct {
	// Addr is the UDP address to listen on, e.g. ":3478" or
	// "10.0.0.1:3478"; port 0 picks a free one. Default ":3478".
	Addr string
	// RelayIP is the IPv4 address relayed allocations are advertised on:
	// the address peers send to. It must reach this host (on a host behind
	// a 1:1 NAT, the public address). Default: the IP of Addr, if Addr
	// names one; otherwise it is required. pion/turn relays IPv4 only.
	RelayIP net.IP
	// RelayPortMin and RelayPortMax bound the relay ports (both inclusive),
	// for firewalls. Both 0 (the default): the OS picks any free port.
	RelayPortMin, RelayPortMax uint16
	// Realm is the STUN realm. Default "natter".
	Realm string
	// Secret is the secret the credentials' HMAC keys come from: each
	// day's key is derived from it (Server.secretFor), so credentials are
	// signed with a key that changes daily. Default: random per process,
	// used as it is, so credentials die with a restart and clients fetch
	// new ones. The nodes of a cluster, which must honour each other's
	// credentials (a client's relay may be another node than the one that
	// gave it credentials), need the same Secret (natterd reads it from
	// NATTER_TURN_SECRET).
	Secret []byte
	// TTL is how long new credentials are valid. Default 10 minutes.
	TTL time.Duration
	// Authorize reports whether user may use the relay now: true only if
	// the user has a live session. It is called on every authenticated
	// TURN request (Allocate, Refresh, CreatePermission, ChannelBind), on
	// the server's single read loop, so it must be quick and must not
	// block (an in-memory registry look-up). Nil allows every user with
	// valid credentials.
	Authorize func(user natter.UserID) bool
	// AllowPeer reports whether a relay may send to (and receive from)
	// peer. Default: every address except unspecified, multicast and
	// broadcast ones, and except loopback ones unless RelayIP is itself a
	// loopback address, so that the relay cannot reach services that
	// listen on this host's loopback.
	AllowPeer func(peer net.IP) bool
	// MaxAllocationsPerUser bounds a user's live allocations (over all
	// their devices); an Allocate beyond it is refused with 486
	// (Allocation Quota Reached). Default 8.
	MaxAllocationsPerUser int
	// Logger receives the service's logs and pion's. Refused requests are
	// logged at debug level only, so that a flood cannot fill the logs;
	// pion's warnings and errors are rate-limited. Default slog.Default().
	Logger *slog.Logger
	// Registerer, if set, gets the service's metrics (listed in the
	// package doc); Close unregisters them.
	Registerer prometheus.Registerer
	// Now is the clock for credential expiry. Default time.Now.
	Now func() time.Time
}

// Server is a running STUN and TURN service.
type Server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	secret []byte
	shared bool // secret is Config.Secret: derive a key per day from it
	m      *metrics
	conn   *listenConn
	turn   *turn.Server

	mu      sync.Mutex
	closed  bool
	relays  map[string]*relayConn  // advertised relay address → its socket, while open
	allocs  map[string]*allocation // client address → its live allocation
	perUser map[natter.UserID]int  // live allocations per user
}

// allocation is what the server knows of one live TURN allocation.
type allocation struct {
	user     natter.UserID
	username string // the TURN username it was made with
	relay    *relayConn
}

// New binds the UDP socket and starts serving.
func New(cfg Config) (_ *Server, err error) {
	if cfg.Addr == "" {
		cfg.Addr = ":3478"
	}
	if cfg.Realm == "" {
		cfg.Realm = "natter"
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Minute
	}
	if cfg.MaxAllocationsPerUser <= 0 {
		cfg.MaxAllocationsPerUser = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if (cfg.RelayPortMin == 0) != (cfg.RelayPortMax == 0) || cfg.RelayPortMin > cfg.RelayPortMax {
		return nil, fmt.Errorf("%w: relay port range %d-%d: set both bounds, min <= max", ErrBadConfig,
			cfg.RelayPortMin, cfg.RelayPortMax)
	}
	secret, shared := cfg.Secret, len(cfg.Secret) > 0
	if !shared {
		secret = make([]byte, 32)
		rand.Read(secret)
	}

	la, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%w: listen address %q: %v", ErrBadConfig, cfg.Addr, err)
	}
	relayIP := cfg.RelayIP
	if relayIP == nil {
		if la.IP == nil || la.IP.IsUnspecified() {
			return nil, fmt.Errorf("%w: RelayIP is required when the listen address %q names no IP: "+
				"peers must be told which address of this host to send to", ErrBadConfig, cfg.Addr)
		}
		relayIP = la.IP
	}
	if relayIP.To4() == nil {
		return nil, fmt.Errorf("%w: RelayIP %s is not an IPv4 address (pion/turn relays IPv4 only)", ErrBadConfig, relayIP)
	}
	relayIP = relayIP.To4()
	// Relay sockets bind the listen IP when it is a specific IPv4
	// address, else every IPv4 address.
	bindIP := net.IPv4zero
	if ip4 := la.IP.To4(); ip4 != nil && !ip4.IsUnspecified() {
		bindIP = ip4
	}
	if cfg.AllowPeer == nil {
		cfg.AllowPeer = defaultAllowPeer(relayIP.IsLoopback())
	}

	s := &Server{
		cfg: cfg, log: cfg.Logger.With("component", "turn"), now: cfg.Now, secret: secret, shared: shared,
		m:       newMetrics(),
		relays:  make(map[string]*relayConn),
		allocs:  make(map[string]*allocation),
		perUser: make(map[natter.UserID]int),
	}
	if cfg.Registerer != nil {
		if err := s.m.register(cfg.Registerer); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				s.m.unregister(cfg.Registerer)
			}
		}()
	}

	pc, err := net.ListenPacket("udp", cfg.Addr)
	if err != nil {
		// A *net.OpError already says "listen udp ADDR: ...": adding the
		// same words again only doubles them.
		return nil, err
	}
	s.conn = newListenConn(pc, s.m, s.log)

	gen := &relayGen{s: s, bindIP: bindIP, advertise: relayIP, min: cfg.RelayPortMin, max: cfg.RelayPortMax}
	s.turn, err = turn.NewServer(turn.ServerConfig{
		Realm: cfg.Realm,
		// An Allocate that names no address family gets IPv4 (RFC 6156's
		// default) whatever the listening socket's family: relays are
		// IPv4 only.
		StrictAddressFamily: true,
		AuthHandler:         s.authenticate,
		QuotaHandler:        s.quota,
		LoggerFactory:       newPionLogs(s.log),
		EventHandler: turn.EventHandler{
			OnAuth:              s.onAuth,
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            s.conn,
			RelayAddressGenerator: gen,
			PermissionHandler: func(client net.Addr, peer net.IP) bool {
				if cfg.AllowPeer(peer) {
					return true
				}
				s.log.Debug("relay to peer refused", "client", client.String(), "peer", peer.String())
				return false
			},
		}},
	})
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("start turn server: %w", err)
	}
	// Debug only: natterd logs its listeners itself, once each.
	s.log.Debug("listening", "addr", pc.LocalAddr().String(), "relay_ip", relayIP.String())
	return s, nil
}

// defaultAllowPeer is the default Config.AllowPeer.
func defaultAllowPeer(allowLoopback bool) func(net.IP) bool {
	return func(ip net.IP) bool {
		switch {
		case ip.IsUnspecified(), ip.IsMulticast(), ip.Equal(net.IPv4bcast):
			return false
		case ip.IsLoopback():
			return allowLoopback
		}
		return true
	}
}

// Addr is the UDP address the service listens on. Clients are told its
// port (wire.IceConfig.Port).
func (s *Server) Addr() *net.UDPAddr { return s.conn.LocalAddr().(*net.UDPAddr) }

// Revoke ends every live allocation of user at once, closing their relay
// sockets, and reports how many it ended. The hub calls it when the user's
// last session ends; Authorize then refuses new ones. Credentials are per
// user, not per device, so Revoke is for users with no device left online.
func (s *Server) Revoke(user natter.UserID) int {
	var victims []*relayConn
	s.mu.Lock()
	for _, a := range s.allocs {
		if a.user == user && a.relay != nil {
			victims = append(victims, a.relay)
		}
	}
	s.mu.Unlock()
	for _, r := range victims {
		r.Close() // pion's relay loop sees the closed socket and deletes the allocation
	}
	if len(victims) > 0 {
		s.log.Debug("allocations revoked", "user", user, "count", len(victims))
	}
	return len(victims)
}

// Close stops the service: it closes the UDP socket and every relay
// socket, and waits (up to a few seconds) until pion has deleted every
// allocation. When it returns the ports are free.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	err := s.turn.Close()
	select {
	case <-s.conn.done:
	case <-time.After(5 * time.Second):
		s.log.Warn("turn read loop did not stop")
	}
	s.mu.Lock()
	relays := make([]*relayConn, 0, len(s.relays))
	for _, r := range s.relays {
		relays = append(relays, r)
	}
	s.mu.Unlock()
	for _, r := range relays {
		r.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.allocs)
		s.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			s.log.Warn("allocations still live after close", "count", n)
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if s.cfg.Registerer != nil {
		s.m.unregister(s.cfg.Registerer)
	}
	if err != nil {
		return fmt.Errorf("close turn server: %w", err)
	}
	return nil
}

// onAllocationCreated records a new allocation. pion calls it on its read
// loop, before it answers the Allocate, so the quota check of the next
// request already counts it.
func (s *Server) onAllocationCreated(src, _ net.Addr, _, username, _ string, relayAddr net.Addr, _ int) {
	user, _, err := parseUsername(username)
	if err != nil { // cannot happen: authenticate accepted it
		s.log.Warn("allocation with a malformed username", "username", username)
	}
	s.mu.Lock()
	s.allocs[src.String()] = &allocation{user: user, username: username, relay: s.relays[relayAddr.String()]}
	s.perUser[user]++
	s.mu.Unlock()
	s.m.allocations.Inc()
	s.m.allocationsTotal.Inc()
	s.log.Debug("allocation created", "user", user, "client", src.String(), "relay", relayAddr.String())
}

// onAllocationDeleted forgets an allocation: expired, deleted by the
// client, revoked, or closed with the server.
func (s *Server) onAllocationDeleted(src, _ net.Addr, _, username, _ string) {
	s.mu.Lock()
	a, ok := s.allocs[src.String()]
	if ok && a.username == username {
		delete(s.allocs, src.String())
		if s.perUser[a.user]--; s.perUser[a.user] <= 0 {
			delete(s.perUser, a.user)
		}
	} else {
		ok = false
	}
	s.mu.Unlock()
	if ok {
		s.m.allocations.Dec()
		s.log.Debug("allocation deleted", "user", a.user, "client", src.String())
	}
}
