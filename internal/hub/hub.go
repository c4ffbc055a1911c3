// Package hub is natterd's heart: it speaks the wire protocol with each
// connection (package session carries the bytes), logs users in, keeps live
// sessions in the Registry, fans presence and connection info out to approved
// contacts, and routes messages and receipts through the Store (for
// durability) and the Bus (to whichever node holds the recipient's devices).
//
// The hub holds no state that another node would need: everything shared
// goes through the Store, Bus and Registry interfaces, so several natterd
// nodes can share them.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/auth"
	"github.com/natterim/natter/internal/session"
	"github.com/natterim/natter/wire"
)

// Config is what a Hub is built from. Store, Bus, Registry and Hasher are
// required; the rest have defaults.
type Config struct {
	Store    natter.Store
	Bus      natter.Bus
	Registry natter.Registry
	Hasher   *auth.Hasher
	// SharedLimits, if set, makes the per-user rate limits of messages and
	// contact requests (name "msgs", "contacts": perSecond, burst) shared
	// by a cluster's nodes (internal/natsthrottle); nil: each node limits
	// on its own.
	SharedLimits func(name string, perSecond float64, burst int) Limiter
	Throttle     Throttler    // per-account back-off after wrong passwords; default auth.NewThrottle()
	IPThrottle   Throttler    // per-address back-off; default auth.NewThrottle() with 20 free failures
	Metrics      *Metrics     // default: metrics registered nowhere
	Logger       *slog.Logger // default slog.Default()

	// ICE issues STUN/TURN credentials (natterd's UDP service); nil means
	// the server offers none and IceServers is answered "unavailable".
	ICE     ICECredentials
	ICEPort int    // UDP port of the STUN/TURN service
	ICEHost string // host of the STUN/TURN service, if not the one clients connect to

	Node       string // this node's name in the Registry; default random
	ServerName string // sent in Welcome

	Keepalive        time.Duration // silence after which a client is dropped; default 60s
	HandshakeTimeout time.Duration // time to say Hello; default 10s
	WriteTimeout     time.Duration // time for one batch of writes; default 15s
	MaxFrame         int           // inbound frame limit; default wire.DefaultMaxFrame
	MaxQueueBytes    int           // outbound queue bound per connection; default 4 MiB
	SessionTTL       time.Duration // login token lifetime; default 30 days

	// Blobs holds file chunks' bytes; nil means the server takes no files
	// (PutChunk, GetChunk and a Send with chunks are answered unavailable).
	Blobs Blobs
	// File limits. Zero means the default; a negative quota, none.
	MaxFileSize   int64         // bytes of chunks one message may carry; default 2 GiB
	UserQuota     int64         // bytes of distinct chunks a user may keep uploaded; default 5 GiB
	FileRetention time.Duration // chunks are forgotten this long after their last use; default 30 days

	// The archive, each user's optional server-side history (off for each
	// user until they turn it on). NoArchive refuses to turn archives on
	// or add to them (ArchiveSet On, ArchivePut and ArchiveKeyPut are
	// answered archive_off); what users stored before can still be read
	// and deleted. ArchiveQuota bounds the bytes of records one user may
	// keep: zero means DefaultArchiveQuota (1 GiB), negative none.
	NoArchive    bool
	ArchiveQuota int64

	// The store's bounds (retention.go). MaxDevices caps the devices of
	// one user (zero: DefaultMaxDevices; negative: none). Retention is how
	// long the inbox keeps what some device has not acknowledged (zero:
	// DefaultRetention; negative: forever). DeviceRetire retires devices
	// that have not logged in for that long (zero: DefaultDeviceRetire;
	// negative: never).
	MaxDevices   int
	Retention    time.Duration
	DeviceRetire time.Duration

	// Per-user limits (per node). Zero means the default; negative, none.
	MsgsPerSecond      float64 // messages (and copies) a user may send per second; default 50, bursts of 200
	ContactReqsPerHour float64 // contact requests (add) a user may make per hour; default 100, bursts of 20
	Now                func() time.Time
}

// ICECredentials issues short-lived TURN credentials for a logged-in user.
type ICECredentials interface {
	Credentials(user natter.UserID, now time.Time) (username, password string, expires time.Time)
}

// Hub serves connections. Create it with New; it is safe for concurrent use.
type Hub struct {
	cfg   Config
	log   *slog.Logger
	met   *Metrics
	now   func() time.Time
	seq   atomic.Uint64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[*client]struct{}
	down  bool
	paths *paths

	msgLimit     Limiter
	contactLimit Limiter
	typingLimit  Limiter

	// chunkMu orders uploads (shared) against the file sweeper
	// (exclusive): without it a sweep could delete a blob between an
	// upload's record and its check that the blob is present.
	chunkMu sync.RWMutex
}

// New returns a Hub.
func New(cfg Config) *Hub {
	if cfg.Throttle == nil {
		cfg.Throttle = auth.NewThrottle()
	}
	if cfg.IPThrottle == nil {
		cfg.IPThrottle = NewIPThrottle()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Node == "" {
		b := make([]byte, 4)
		rand.Read(b)
		cfg.Node = hex.EncodeToString(b)
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "natterd"
	}
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = 60 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 15 * time.Second
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = wire.DefaultMaxFrame
	}
	if cfg.MaxQueueBytes <= 0 {
		cfg.MaxQueueBytes = 4 << 20
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 30 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxFileSize <= 0 {
		cfg.MaxFileSize = DefaultMaxFileSize
	}
	if cfg.UserQuota == 0 {
		cfg.UserQuota = DefaultUserQuota
	}
	if cfg.ArchiveQuota == 0 {
		cfg.ArchiveQuota = DefaultArchiveQuota
	}
	if cfg.FileRetention <= 0 {
		cfg.FileRetention = DefaultFileRetention
	}
	if cfg.MaxDevices == 0 {
		cfg.MaxDevices = DefaultMaxDevices
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.DeviceRetire == 0 {
		cfg.DeviceRetire = DefaultDeviceRetire
	}
	if cfg.MsgsPerSecond == 0 {
		cfg.MsgsPerSecond = 50
	}
	if cfg.ContactReqsPerHour == 0 {
		cfg.ContactReqsPerHour = 100
	}
	limits := cfg.SharedLimits
	if limits == nil {
		limits = func(_ string, perSecond float64, burst int) Limiter { return newUserLimits(perSecond, burst) }
	}
	h := &Hub{cfg: cfg, log: cfg.Logger, met: cfg.Metrics, now: cfg.Now, conns: make(map[*client]struct{}), paths: newPaths(),
		msgLimit:     limits("msgs", cfg.MsgsPerSecond, max(1, int(4*cfg.MsgsPerSecond))),
		contactLimit: limits("contacts", cfg.ContactReqsPerHour/3600, max(1, int(cfg.ContactReqsPerHour/5))),
		// Typing notifications are ephemeral: each node limits its own.
		typingLimit: newUserLimits(typingPerSecond, typingBurst)}
	cfg.Metrics.watchPaths(h.paths, h.now)
	return h
}

// Node returns this node's name.
func (h *Hub) Node() string { return h.cfg.Node }

// Serve runs one connection until it ends, then cleans up after it (the
// live session, presence). It returns when the connection is closed.
func (h *Hub) Serve(conn session.Conn) {
	c := h.newClient(conn)
	h.mu.Lock()
	if h.down {
		h.mu.Unlock()
		conn.Close()
		return
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		h.wg.Done()
	}()
	c.run()
}

// Shutdown says Bye to every connection, lets each write what it has queued,
// and waits for them to end (or for ctx, after which they are closed hard).
// New connections are refused from the start.
func (h *Hub) Shutdown(ctx context.Context) {
	h.mu.Lock()
	h.down = true
	cs := make([]*client, 0, len(h.conns))
	for c := range h.conns {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.bye(wire.CodeShutdown, "server shutting down; reconnect later")
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		h.mu.Lock()
		for c := range h.conns {
			c.conn.Close()
		}
		h.mu.Unlock()
		<-done
	}
}

// Connections returns the number of open connections.
func (h *Hub) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}
