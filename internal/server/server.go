// Package server assembles natterd: it opens the store, loads or creates the
// TLS certificate (or gets one over ACME: acme.go), binds the listeners
// (TLS/TCP for native clients, HTTPS for browsers with the browser client's
// files (webui.go) and WebSocket, a localhost admin listener for health and
// metrics) and runs the hub until told to stop, then drains.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/crypto/acme"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/auth"
	"github.com/natterim/natter/internal/hub"
	"github.com/natterim/natter/internal/session"
	"github.com/natterim/natter/internal/turnsrv"
	"github.com/natterim/natter/web"
	"github.com/natterim/natter/wire"
)

// Config is natterd's configuration. The zero value of each field but
// DataDir and Listen means its default.
type Config struct {
	DataDir string // SQLite database, blobs and TLS certificate live here; made private (0700, files 0600)
	Listen  string // TLS/TCP listener for native clients
	HTTP    string // HTTPS + WebSocket listener; "" disables it
	Admin   string // plain-HTTP admin listener (/healthz, /metrics); "" disables it
	UDP     string // STUN/TURN service for peer-to-peer; "" disables it
	RelayIP string // address TURN relays are advertised on; default: UDP's IP, else this host's first public-looking IPv4

	// Bind is an IP address of this host that every listener address
	// naming no host (":7443") binds: so Bind "127.0.0.1" keeps the TLS,
	// HTTPS and STUN/TURN listeners (and TURN relays) on loopback with
	// their default ports. An address that names a host keeps it, such as
	// the admin listener's default 127.0.0.1:9090. "" (the default): such
	// addresses bind every interface.
	Bind string

	// The certificate of the TLS and HTTPS listeners: CertFile and KeyFile
	// (--tls-cert, --tls-key) if given, else one over ACME if ACMEDomains
	// names any host, else the self-generated one kept in DataDir (naming
	// localhost, its loopback addresses and Hosts).
	CertFile, KeyFile string   // operator-supplied certificate chain and key (PEM)
	Hosts             []string // extra names/addresses for the self-generated certificate
	ACMEDomains       []string // public names to get certificates for over ACME (TLS-ALPN-01 on HTTP)
	ACMEDirectory     string   // the ACME CA's directory URL; default DefaultACMEDirectory (Let's Encrypt)
	ACMEEmail         string   // contact address given to the ACME CA; optional
	ACMECAFile        string   // PEM roots to trust for the ACME directory's HTTPS (a private CA); default: the system's

	// Web is the browser client served on the HTTPS listener; default
	// web.FS(). See webui.go.
	Web fs.FS

	Keepalive        time.Duration // default 60s
	HandshakeTimeout time.Duration // TLS handshake and Hello; default 10s
	MaxFrame         int           // default wire.DefaultMaxFrame
	MaxQueueBytes    int           // outbound queue bound per connection; default 4 MiB
	HashWorkers      int           // argon2id workers; default GOMAXPROCS
	NoGroupCommit    bool          // one commit per write (for benchmarks)
	// CheckpointInterval is how often the store copies its WAL back into
	// the database file; zero: sqlite.DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	Node               string        // node name; default random
	ShutdownTimeout    time.Duration // time to drain on stop; default 10s

	// Store is the store's URL: "" for the SQLite file in DataDir, or a
	// postgres:// URL for a PostgreSQL database shared by several nodes
	// (see store_open.go).
	Store string

	// Bus is where the bus and the live-session registry are: "" for the
	// in-process ones (a single node), or nats:// URLs of NATS that
	// several nodes share (see bus_open.go).
	Bus string

	// Limits. Zero means the default; negative means none.
	MaxConnsPerIP      int     // open connections from one address; default 4096
	MsgsPerSecond      float64 // per user; default 50 (bursts of 200)
	ContactReqsPerHour float64 // per user; default 100 (bursts of 20)

	// Files (docs/files.md). Zero means the default; a negative quota, none.
	MaxFileSize    int64         // bytes of chunks one message may carry; default 2 GiB
	UserQuota      int64         // bytes of distinct chunks a user may keep uploaded; default 5 GiB
	FileRetention  time.Duration // chunks are forgotten this long after their last use; default 30 days
	FileSweepEvery time.Duration // how often expired chunks are deleted (and once at start); default 1h

	// The archive, users' optional server-side history (see hub.Config).
	NoArchive    bool  // users may not turn their archive on or add to it
	ArchiveQuota int64 // bytes of archive records a user may keep; zero: 1 GiB; negative: none

	// Bounds are the store's bounds: devices per user, retention, device
	// retirement and how often they are applied (bounds.go).
	Bounds Bounds

	Logger *slog.Logger
}

// Server is a running natterd.
type Server struct {
	cfg        Config
	log        *slog.Logger
	store      natter.Store
	blobs      hub.Blobs
	blobsClose func()
	// throttleClose closes the shared login throttle's connection.
	throttleClose func()
	bus           natter.Bus
	hash          *auth.Hasher
	hub           *hub.Hub
	turn          *turnsrv.Server
	reg           *prometheus.Registry

	refusedConns prometheus.Counter
	handshaking  *prometheus.GaugeVec // by transport: see handshake.go
	cert         tls.Certificate      // the self-generated or operator's certificate; unused with ACME
	acme         *acmeCerts           // nil unless ACMEDomains
	hsts         bool                 // the certificate is one browsers accept: send Strict-Transport-Security
	fp           string               // cert's fingerprint; "" with ACME
	web          *webUI

	relayIP net.IP
	ips     *perIP
	bufs    session.Buffers // frame buffers lent to the TLS connections

	ln      net.Listener // TLS/TCP (raw TCP; TLS per connection)
	httpLn  net.Listener
	adminLn net.Listener
	httpSrv *http.Server
	admin   *http.Server
	wg      sync.WaitGroup
}

// New opens the store and certificate and binds every listener, so that
// addresses are known (and port clashes reported) before Serve.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	if err := checkNode(cfg.Node); err != nil {
		return nil, fmt.Errorf("node name: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = wire.DefaultMaxFrame
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.HashWorkers <= 0 {
		cfg.HashWorkers = runtime.GOMAXPROCS(0)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.FileSweepEvery <= 0 {
		cfg.FileSweepEvery = time.Hour
	}
	if cfg.MaxConnsPerIP == 0 {
		cfg.MaxConnsPerIP = 4096
	}
	if err := cfg.applyBind(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, ips: newPerIP(cfg.MaxConnsPerIP)}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	if err := prepareDataDir(cfg.DataDir, s.log); err != nil {
		return nil, err
	}
	if err := s.loadCertificate(); err != nil {
		return nil, err
	}
	if cfg.Web == nil {
		cfg.Web = web.FS()
	}
	if s.web, err = newWebUI(cfg.Web, s.log); err != nil {
		return nil, err
	}

	s.hash = auth.NewHasher(cfg.HashWorkers, 4*cfg.HashWorkers+64, auth.DefaultParams)
	s.reg = prometheus.NewRegistry()
	s.refusedConns = prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_refused_connections_total",
		Help: "Connections refused because their address had too many open."})
	s.handshaking = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "natter_handshaking_connections",
		Help: "Connections accepted and not yet welcomed (TLS handshake, WebSocket upgrade, waiting for Hello), by transport."},
		[]string{"transport"})
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		s.refusedConns, s.handshaking)
	s.store, err = openStore(ctx, cfg, s.log.With("component", "store"), s.reg)
	if err != nil {
		return nil, err
	}
	if s.blobs, s.blobsClose, err = openBlobs(ctx, cfg); err != nil {
		return nil, err
	}
	var registry natter.Registry
	if s.bus, registry, err = openBus(ctx, cfg, s.log.With("component", "bus"), s.reg); err != nil {
		return nil, err
	}
	hcfg := hub.Config{
		Store: s.store, Bus: s.bus, Registry: registry, Hasher: s.hash,
		Metrics: hub.NewMetrics(s.reg), Logger: s.log, Node: cfg.Node, ServerName: "natterd/" + Version,
		Keepalive: cfg.Keepalive, HandshakeTimeout: cfg.HandshakeTimeout, MaxFrame: cfg.MaxFrame,
		MaxQueueBytes: cfg.MaxQueueBytes,
		MsgsPerSecond: cfg.MsgsPerSecond, ContactReqsPerHour: cfg.ContactReqsPerHour,
		Blobs: s.blobs, MaxFileSize: cfg.MaxFileSize, UserQuota: cfg.UserQuota, FileRetention: cfg.FileRetention,
		NoArchive: cfg.NoArchive, ArchiveQuota: cfg.ArchiveQuota,
	}
	cfg.Bounds.hubBounds(&hcfg)
	if s.throttleClose, err = openThrottles(ctx, cfg, &hcfg, s.log.With("component", "throttle")); err != nil {
		return nil, err
	}
	if cfg.UDP != "" {
		if s.turn, err = s.startTURN(registry); err != nil {
			return nil, err
		}
		hcfg.ICE, hcfg.ICEPort = s.turn, s.turn.Addr().Port
	}
	s.hub = hub.New(hcfg)
	watchExpiry(registry, s.hub)

	// A *net.OpError names the network and address ("listen tcp
	// 127.0.0.1:7443: bind: address already in use"): each error below
	// adds only which listener it is.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("tls listener: %w", err)
	}
	s.ln = handshakeListener{Listener: ln, g: s.handshaking.WithLabelValues("tls")}
	if cfg.HTTP != "" {
		ln, err := net.Listen("tcp", cfg.HTTP)
		if err != nil {
			return nil, fmt.Errorf("https listener: %w", err)
		}
		s.httpLn = handshakeListener{Listener: ln, g: s.handshaking.WithLabelValues("ws")}
	}
	if cfg.Admin != "" {
		if s.adminLn, err = net.Listen("tcp", cfg.Admin); err != nil {
			return nil, fmt.Errorf("admin listener: %w", err)
		}
	}
	return s, nil
}

// applyBind puts Bind's address into every listener address that names no
// host.
func (cfg *Config) applyBind() error {
	if cfg.Bind == "" {
		return nil
	}
	if net.ParseIP(cfg.Bind) == nil {
		return fmt.Errorf("--bind %q: need an IP address of this host", cfg.Bind)
	}
	for _, l := range []struct {
		flag string
		addr *string
	}{{"--listen", &cfg.Listen}, {"--http", &cfg.HTTP}, {"--admin", &cfg.Admin}, {"--udp", &cfg.UDP}} {
		if *l.addr == "" {
			continue // disabled
		}
		host, port, err := net.SplitHostPort(*l.addr)
		if err != nil {
			return fmt.Errorf("%s %q: %w", l.flag, *l.addr, err)
		}
		if host == "" {
			*l.addr = net.JoinHostPort(cfg.Bind, port)
		}
	}
	return nil
}

// Version is natterd's version, reported in Welcome.
const Version = "0.1.0"

// Addr is the TLS/TCP listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// HTTPAddr is the HTTPS listener's address, or nil.
func (s *Server) HTTPAddr() net.Addr { return addrOf(s.httpLn) }

// AdminAddr is the admin listener's address, or nil.
func (s *Server) AdminAddr() net.Addr { return addrOf(s.adminLn) }

func addrOf(l net.Listener) net.Addr {
	if l == nil {
		return nil
	}
	return l.Addr()
}

// UDPAddr is the STUN/TURN service's address, or nil.
func (s *Server) UDPAddr() net.Addr {
	if s.turn == nil {
		return nil
	}
	return s.turn.Addr()
}

// RelayIP is the address TURN relays are advertised on, or nil without
// STUN/TURN.
func (s *Server) RelayIP() net.IP { return s.relayIP }

// Fingerprint is the SHA-256 of the server certificate (see tlscert), or
// "" with ACME (whose certificates change at each renewal).
func (s *Server) Fingerprint() string { return s.fp }

// Store returns the server's store (for tests and tools in this module).
func (s *Server) Store() natter.Store { return s.store }

// tlsConfig returns a new TLS configuration offering the given ALPN
// protocols. Each listener gets its own: http.Server changes the one it is
// given (it adds h2), so sharing one would race with the TLS/TCP listener.
func (s *Server) tlsConfig(protos ...string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: protos}
	if s.acme != nil {
		cfg.GetCertificate = s.acme.getCertificate
	} else {
		cfg.Certificates = []tls.Certificate{s.cert}
	}
	return cfg
}

// Serve runs until ctx ends, then stops accepting, says Bye to every client,
// lets them drain (up to ShutdownTimeout) and closes the store.
func (s *Server) Serve(ctx context.Context) error {
	s.log.Info("listening", "kind", "tls", "addr", s.ln.Addr().String())
	if s.httpLn != nil {
		s.log.Info("listening", "kind", "https", "addr", s.httpLn.Addr().String())
	}
	if s.adminLn != nil {
		s.log.Info("listening", "kind", "admin", "addr", s.adminLn.Addr().String())
	}
	if s.turn != nil {
		s.log.Info("listening", "kind", "udp", "addr", s.turn.Addr().String(), "relay_ip", s.relayIP.String())
	}
	if s.acme != nil {
		s.log.Info("certificate", "acme", strings.Join(s.acme.domains, ","), "directory", s.acme.m.Client.DirectoryURL)
		s.acme.start()
	} else {
		s.log.Info("certificate", "sha256", s.fp)
	}

	tcfg := s.tlsConfig("natter/1")
	s.wg.Go(func() { s.acceptTLS(tcfg) })
	if s.httpLn != nil {
		protos := []string{"http/1.1"}
		if s.acme != nil {
			protos = append(protos, acme.ALPNProto) // TLS-ALPN-01 challenges
		}
		s.httpSrv = &http.Server{Handler: s.httpHandler(), TLSConfig: s.tlsConfig(protos...),
			ReadHeaderTimeout: s.cfg.HandshakeTimeout, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				return context.WithValue(ctx, handshakeKey{}, handshakeOf(c))
			}}
		s.wg.Go(func() {
			if err := s.httpSrv.ServeTLS(s.httpLn, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("https", "err", err)
			}
		})
	}
	if s.adminLn != nil {
		s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
		s.wg.Go(func() {
			if err := s.admin.Serve(s.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("admin", "err", err)
			}
		})
	}
	s.wg.Go(func() { s.sweepFiles(ctx) })
	s.wg.Go(func() { s.sweepInboxes(ctx) })
	<-ctx.Done()
	s.log.Info("shutting down", "connections", s.hub.Connections())
	s.ln.Close()
	if s.httpSrv != nil {
		s.httpSrv.Close() // WebSocket connections are hijacked: the hub drains them
	}
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.hub.Shutdown(dctx)
	if s.admin != nil {
		s.admin.Close()
	}
	s.wg.Wait()
	err := s.closeAll()
	s.log.Info("stopped")
	return err
}

// sweepFiles deletes the file chunks past their retention, at once and
// then every FileSweepEvery, until ctx ends.
func (s *Server) sweepFiles(ctx context.Context) {
	t := time.NewTicker(s.cfg.FileSweepEvery)
	defer t.Stop()
	for {
		n, err := s.hub.SweepFiles(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("file sweep", "err", err, "deleted", n)
		} else if n > 0 {
			s.log.Info("file sweep", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) closeAll() error {
	var errs []error
	for _, l := range []net.Listener{s.ln, s.httpLn, s.adminLn} {
		if l != nil {
			l.Close()
		}
	}
	if s.turn != nil {
		errs = append(errs, s.turn.Close())
	}
	if s.hash != nil {
		s.hash.Close()
	}
	if s.bus != nil {
		s.bus.Close()
	}
	if s.blobsClose != nil {
		s.blobsClose()
	}
	if s.throttleClose != nil {
		s.throttleClose()
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	return errors.Join(errs...)
}

func (s *Server) acceptTLS(cfg *tls.Config) {
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		host, ok := s.ips.acquire(nc.RemoteAddr())
		if !ok {
			s.refusedConns.Inc()
			nc.Close() // over the per-address limit: refused before any TLS work
			continue
		}
		s.wg.Go(func() { s.serveTLS(nc, cfg, host) })
	}
}

// serveTLS runs the TLS handshake and starts the connection in the hub,
// which reads it with goroutines of its own (none while it is idle: see
// session.RecordConn); this goroutine, whose stack the handshake grew,
// ends. The address's connection count is released when the connection
// ends.
func (s *Server) serveTLS(nc net.Conn, cfg *tls.Config, host string) {
	hc := handshakeOf(nc)
	var sc syscall.Conn // the socket, to wait for input on
	if hc != nil {
		sc, _ = hc.Conn.(syscall.Conn)
	} else {
		sc, _ = nc.(syscall.Conn)
	}
	rc := session.NewRecordConn(nc, sc)
	tc := tls.Server(rc, cfg)
	nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		s.log.Debug("tls handshake", "remote", nc.RemoteAddr().String(), "err", err)
		nc.Close()
		s.ips.release(host)
		return
	}
	nc.SetDeadline(time.Time{})
	s.wg.Add(1) // the connection's life, which goes on after this goroutine
	s.hub.Start(watchWelcome(session.NewStreamConn(tc, s.cfg.MaxFrame, &s.bufs, rc), hc), func() {
		s.ips.release(host)
		s.wg.Done()
	})
}

func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		hc, _ := r.Context().Value(handshakeKey{}).(*handshakeConn)
		defer hc.done() // if never welcomed
		remote, _ := net.ResolveTCPAddr("tcp", r.RemoteAddr)
		host, ok := s.ips.acquire(remote)
		if !ok {
			s.refusedConns.Inc()
			http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
			return
		}
		defer s.ips.release(host)
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"natter.v1"}})
		if err != nil {
			s.log.Debug("websocket accept", "err", err)
			return
		}
		s.hub.Serve(watchWelcome(session.NewWSConn(c, remote, s.cfg.MaxFrame), hc))
	})
	mux.Handle("GET /", s.web) // the browser client
	// A request other than the upgrade ends the connection's handshake.
	return securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/ws" {
			hc, _ := r.Context().Value(handshakeKey{}).(*handshakeConn)
			hc.done()
		}
		mux.ServeHTTP(w, r)
	}), s.hsts)
}

// handshakeKey is the request context key of the connection's
// *handshakeConn.
type handshakeKey struct{}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := s.store.UserExists(ctx, "healthz"); err != nil {
			http.Error(w, "store: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ok\nconnections %d\n", s.hub.Connections())
	})
	mux.Handle("GET /metrics", promhttpHandler(s.reg))
	// Profiling, on the admin listener only (localhost unless told otherwise).
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}
