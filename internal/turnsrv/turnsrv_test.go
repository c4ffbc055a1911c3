package turnsrv

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/leaktest"
)

// TestMain fails the run if, once every test has finished, a goroutine of
// the service or of pion's server or client is still running.
func TestMain(m *testing.M) {
	leaktest.Main(m,
		"natter/internal/turnsrv.",
		"turn/v5.NewServer.func",
		"turn/v5.(*Server).readLoop",
		"allocation.(*Allocation).",
		"turn/v5.(*Client).Listen",
		"client.(*PeriodicTimer).Start",
	)
}

// clock is a settable clock for Config.Now.
type clock struct{ t atomic.Pointer[time.Time] }

func newClock() *clock          { c := &clock{}; c.set(time.Now()); return c }
func (c *clock) now() time.Time { return *c.t.Load() }
func (c *clock) set(t time.Time) {
	c.t.Store(&t)
}

// testServer is a Server on 127.0.0.1 with its own metrics registry.
type testServer struct {
	*Server
	reg *prometheus.Registry
}

func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	cfg.Registerer = reg
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return &testServer{Server: s, reg: reg}
}

// metric returns the value of the metric name (with the given label
// value, if any) in the server's registry.
func (s *testServer) metric(t testing.TB, name string, label ...string) float64 {
	t.Helper()
	fams, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(label) > 0 && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label[0]) {
				continue
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Counter != nil:
				return m.Counter.GetValue()
			}
		}
	}
	t.Fatalf("no metric %s %v", name, label)
	return 0
}

// waitMetric waits until the metric has the value want.
func (s *testServer) waitMetric(t testing.TB, want float64, name string, label ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := s.metric(t, name, label...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %v = %v, want %v", name, label, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// quiet is a logger for servers whose logs no test looks at.
var quiet = slog.New(slog.DiscardHandler)

// quietPion keeps pion's client logs out of the test output.
type quietPion struct{}

func (quietPion) NewLogger(string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope("", logging.LogLevelDisabled, os.Stderr)
}

// newClient is a pion TURN client on its own 127.0.0.1 socket; the
// cleanup closes it.
func newClient(t testing.TB, s *testServer, username, password string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: s.Addr().String(),
		TURNServerAddr: s.Addr().String(),
		Username:       username,
		Password:       password,
		Realm:          "natter",
		Conn:           conn,
		RTO:            50 * time.Millisecond,
		LoggerFactory:  quietPion{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		conn.Close()
	})
	return c
}

// allocate makes an allocation for a client with fresh credentials of
// user; the cleanup releases it.
func allocate(t testing.TB, s *testServer, user natter.UserID) (*turn.Client, net.PacketConn) {
	t.Helper()
	u, p, _ := s.Credentials(user, time.Now())
	c := newClient(t, s, u, p)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate for %s: %v", user, err)
	}
	t.Cleanup(func() { relay.Close() })
	return c, relay
}

func TestBinding(t *testing.T) {
	s := startServer(t, Config{})
	c := newClient(t, s, "", "")
	local := clientLocalAddr(t, c)
	for i := 1; i <= 3; i++ {
		got, err := c.SendBindingRequest()
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != local.String() {
			t.Fatalf("reflexive address %s, want the client's own %s", got, local)
		}
		// The service counts an answer once it is sent: wait for it.
		s.waitMetric(t, float64(i), "natter_stun_binding_total")
	}
}

// clientLocalAddr finds the client's socket address by asking it to send
// to a socket of our own.
func clientLocalAddr(t testing.TB, c *turn.Client) net.Addr {
	t.Helper()
	probe, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if _, err := c.WriteTo([]byte("where are you"), probe.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	probe.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	_, from, err := probe.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	return from
}

func TestRelayBothWays(t *testing.T) {
	s := startServer(t, Config{})
	_, relay := allocate(t, s, "alice")
	if got := s.metric(t, "natter_turn_allocations"); got != 1 {
		t.Fatalf("natter_turn_allocations = %v, want 1", got)
	}
	if got := s.metric(t, "natter_turn_allocations_total"); got != 1 {
		t.Fatalf("natter_turn_allocations_total = %v, want 1", got)
	}
	ra := relay.LocalAddr().(*net.UDPAddr)
	if !ra.IP.Equal(net.IPv4(127, 0, 0, 1)) || ra.Port == 0 || ra.Port == s.Addr().Port {
		t.Fatalf("relayed address %s, want 127.0.0.1 and a port of its own", ra)
	}

	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	relay.SetReadDeadline(time.Now().Add(10 * time.Second))

	// Enough rounds for both of pion's paths: Send/Data indications first,
	// ChannelData once the client's channel binding is done.
	var toPeer, toClient int
	buf := make([]byte, 1500)
	for i := range 20 {
		out := fmt.Appendf(nil, "client to peer %d", i)
		if _, err := relay.WriteTo(out, peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		n, from, err := peer.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != string(out) || from.String() != ra.String() {
			t.Fatalf("peer got %q from %s, want %q from the relay %s", buf[:n], from, out, ra)
		}
		toPeer += n

		back := fmt.Appendf(nil, "peer to client, round %d", i)
		if _, err := peer.WriteTo(back, ra); err != nil {
			t.Fatal(err)
		}
		n, from, err = relay.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != string(back) || from.String() != peer.LocalAddr().String() {
			t.Fatalf("client got %q from %s, want %q from %s", buf[:n], from, back, peer.LocalAddr())
		}
		toClient += n
		time.Sleep(time.Millisecond) // let the channel binding land
	}
	s.waitMetric(t, float64(toPeer), "natter_turn_relayed_bytes_total", "to_peer")
	s.waitMetric(t, float64(toClient), "natter_turn_relayed_bytes_total", "to_client")

	relay.Close() // the client deallocates
	s.waitMetric(t, 0, "natter_turn_allocations")
}

func TestRefused(t *testing.T) {
	past := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name   string
		creds  func(s *Server) (string, string)
		reason string
	}{
		{"wrong password", func(s *Server) (string, string) {
			u, _, _ := s.Credentials("alice", time.Now())
			return u, "bm90IHRoZSBwYXNzd29yZA=="
		}, reasonBadPassword},
		{"another user's password", func(s *Server) (string, string) {
			u, p, _ := s.Credentials("alice", time.Now())
			return strings.Replace(u, ":alice", ":bob", 1), p
		}, reasonBadPassword},
		{"another server's secret", func(*Server) (string, string) {
			other, err := New(Config{Logger: quiet, Addr: "127.0.0.1:0"})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			u, p, _ := other.Credentials("alice", time.Now())
			return u, p
		}, reasonBadPassword},
		{"expired", func(s *Server) (string, string) {
			u, p, exp := s.Credentials("alice", past)
			if !exp.Before(time.Now()) {
				t.Fatalf("credentials made an hour ago expire at %v", exp)
			}
			return u, p
		}, reasonExpired},
		{"not logged in", func(s *Server) (string, string) {
			u, p, _ := s.Credentials("mallory", time.Now())
			return u, p
		}, reasonUnauthorized},
		{"no expiry", func(s *Server) (string, string) { return "alice", s.password("alice") }, reasonMalformed},
		{"bad user name", func(s *Server) (string, string) {
			u := fmt.Sprintf("%d:Not A User", time.Now().Add(time.Hour).Unix())
			return u, s.password(u)
		}, reasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, Config{Authorize: func(u natter.UserID) bool { return u != "mallory" }})
			u, p := tc.creds(s.Server)
			c := newClient(t, s, u, p)
			relay, err := c.Allocate()
			if err == nil {
				relay.Close()
				t.Fatal("allocation made")
			}
			// RFC 8489 section 9.2.4 and RFC 8656 section 7.2: refused
			// credentials are answered 401 Unauthorized (pion/turn v4
			// said 400 Bad Request, which clients do not take as a
			// credentials problem).
			if code, ok := turnErrorCode(err); !ok || code != stun.CodeUnauthorized {
				t.Errorf("allocate said %v, want error 401 Unauthorized", err)
			}
			if got := s.metric(t, "natter_turn_auth_failures_total", tc.reason); got < 1 {
				t.Errorf("natter_turn_auth_failures_total{reason=%q} = %v, want >= 1 (allocate said %v)", tc.reason, got, err)
			}
			if got := s.metric(t, "natter_turn_allocations_total"); got != 0 {
				t.Errorf("natter_turn_allocations_total = %v", got)
			}
			// STUN Binding needs no credentials.
			if _, err := c.SendBindingRequest(); err != nil {
				t.Errorf("binding after a refused allocation: %v", err)
			}
			// The right credentials allocate.
			allocate(t, s, "alice")
		})
	}
}

// turnErrorCode returns the STUN error code of a TURN client's error, if it
// carries one.
func turnErrorCode(err error) (stun.ErrorCode, bool) {
	var te *stun.TurnError
	if !errors.As(err, &te) {
		return 0, false
	}
	return te.ErrorCodeAttr.Code, true
}

func TestQuota(t *testing.T) {
	s := startServer(t, Config{MaxAllocationsPerUser: 2})
	_, first := allocate(t, s, "alice")
	allocate(t, s, "alice")

	u, p, _ := s.Credentials("alice", time.Now())
	c := newClient(t, s, u, p)
	if relay, err := c.Allocate(); err == nil {
		relay.Close()
		t.Fatal("third allocation made, quota is 2")
	} else if code, ok := turnErrorCode(err); !ok || code != stun.CodeAllocQuotaReached {
		t.Errorf("refused with %v, want error 486 Allocation Quota Reached", err)
	}
	if got := s.metric(t, "natter_turn_quota_refusals_total"); got != 1 {
		t.Errorf("natter_turn_quota_refusals_total = %v, want 1", got)
	}
	allocate(t, s, "bob") // other users are not affected

	first.Close()
	s.waitMetric(t, 2, "natter_turn_allocations")
	allocate(t, s, "alice") // a freed place can be taken again
}

// TestExpiredCredentialsKeepTheirAllocation: once made, an allocation goes
// on while the user is logged in, even past the credentials' expiry; new
// allocations need fresh credentials, and logging out ends it.
func TestExpiredCredentialsKeepTheirAllocation(t *testing.T) {
	clk := newClock()
	var loggedIn atomic.Bool
	loggedIn.Store(true)
	s := startServer(t, Config{Now: clk.now, TTL: time.Minute,
		Authorize: func(natter.UserID) bool { return loggedIn.Load() }})
	u, p, exp := s.Credentials("alice", clk.now())
	c := newClient(t, s, u, p)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	clk.set(exp.Add(time.Second))
	peer := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 9}
	if err := c.CreatePermission(peer); err != nil {
		t.Fatalf("create permission past expiry, on the allocation the credentials made: %v", err)
	}
	other := newClient(t, s, u, p)
	if r, err := other.Allocate(); err == nil {
		r.Close()
		t.Fatal("expired credentials made a new allocation")
	}
	loggedIn.Store(false)
	if err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 3), Port: 9}); err == nil {
		t.Fatal("create permission after logout succeeded")
	}
	if got := s.metric(t, "natter_turn_auth_failures_total", reasonUnauthorized); got != 1 {
		t.Errorf("unauthorized refusals = %v, want 1", got)
	}
}

func TestRevoke(t *testing.T) {
	s := startServer(t, Config{})
	_, a1 := allocate(t, s, "alice")
	_, a2 := allocate(t, s, "alice")
	allocate(t, s, "bob")
	if n := s.Revoke("alice"); n != 2 {
		t.Fatalf("Revoke = %d, want 2", n)
	}
	s.waitMetric(t, 1, "natter_turn_allocations")
	for _, r := range []net.PacketConn{a1, a2} {
		pc, err := net.ListenPacket("udp4", r.LocalAddr().String())
		if err != nil {
			t.Fatalf("revoked relay port still bound: %v", err)
		}
		pc.Close()
	}
	if n := s.Revoke("alice"); n != 0 {
		t.Fatalf("second Revoke = %d", n)
	}
}

func TestCloseReleasesPorts(t *testing.T) {
	s, err := New(Config{Logger: quiet, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, reg: prometheus.NewRegistry()}
	_, relay := allocate(t, ts, "alice")
	addr, relayAddr := s.Addr().String(), relay.LocalAddr().String()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, a := range []string{addr, relayAddr} {
		pc, err := net.ListenPacket("udp4", a)
		if err != nil {
			t.Fatalf("%s still bound after Close: %v", a, err)
		}
		pc.Close()
	}
	s.mu.Lock()
	live := len(s.allocs)
	s.mu.Unlock()
	if live != 0 {
		t.Fatalf("%d allocations live after Close", live)
	}
}

// TestMetricsRegistration: a second server cannot register the same
// metrics, and Close unregisters them so that a restarted service can.
func TestMetricsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	s1, err := New(Config{Logger: quiet, Addr: "127.0.0.1:0", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if s2, err := New(Config{Logger: quiet, Addr: "127.0.0.1:0", Registerer: reg}); err == nil {
		s2.Close()
		s1.Close()
		t.Fatal("two servers registered the same metrics")
	} else if !errors.Is(err, ErrBadConfig) {
		t.Errorf("error %v is not ErrBadConfig", err)
	}
	s1.Close()
	s3, err := New(Config{Logger: quiet, Addr: "127.0.0.1:0", Registerer: reg})
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	s3.Close()
}

func TestRelayPortRange(t *testing.T) {
	// A free range: the OS's pick and the ones above it (nothing is
	// guaranteed, but a collision is unlikely in a test's lifetime).
	probe, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lo := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	if lo > 65000 {
		lo = 50000
	}
	hi := lo + 20
	s := startServer(t, Config{RelayPortMin: uint16(lo), RelayPortMax: uint16(hi)})
	for range 3 {
		_, relay := allocate(t, s, "alice")
		if p := relay.LocalAddr().(*net.UDPAddr).Port; p < lo || p > hi {
			t.Fatalf("relay port %d outside %d-%d", p, lo, hi)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no relay IP on a wildcard address", Config{Addr: ":0"}},
		{"IPv6 relay IP", Config{Addr: ":0", RelayIP: net.ParseIP("::1")}},
		{"half a port range", Config{Addr: "127.0.0.1:0", RelayPortMin: 40000}},
		{"reversed port range", Config{Addr: "127.0.0.1:0", RelayPortMin: 40010, RelayPortMax: 40000}},
		{"bad address", Config{Addr: "nonsense"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = quiet
			s, err := New(tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("New accepted it")
			}
			if !errors.Is(err, ErrBadConfig) {
				t.Errorf("%v is not ErrBadConfig", err)
			}
		})
	}
	// A wildcard address with a relay IP is fine.
	s, err := New(Config{Logger: quiet, Addr: "0.0.0.0:0", RelayIP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func TestDefaultAllowPeer(t *testing.T) {
	for _, tc := range []struct {
		ip                 string
		loopbackRelay, lan bool
	}{
		{"203.0.113.7", true, true},
		{"10.1.2.3", true, true},
		{"127.0.0.1", true, false},
		{"::1", true, false},
		{"0.0.0.0", false, false},
		{"224.0.0.1", false, false},
		{"255.255.255.255", false, false},
	} {
		ip := net.ParseIP(tc.ip)
		if got := defaultAllowPeer(true)(ip); got != tc.loopbackRelay {
			t.Errorf("relay on loopback: allow %s = %v", ip, got)
		}
		if got := defaultAllowPeer(false)(ip); got != tc.lan {
			t.Errorf("relay on a LAN address: allow %s = %v", ip, got)
		}
	}
}

// TestCredentialsAreTURNREST: pion's own TURN REST API handler, given the
// day's key, accepts our credentials, so any TURN REST client or server
// agrees with them.
func TestCredentialsAreTURNREST(t *testing.T) {
	secret := []byte("shared secret")
	s := startServer(t, Config{Secret: secret, TTL: time.Hour})
	now := time.Now()
	u, p, exp := s.Credentials("alice", now)
	if want := fmt.Sprintf("%d:alice", now.Add(time.Hour).Unix()); u != want {
		t.Fatalf("username %q, want %q", u, want)
	}
	if exp.Unix() != now.Add(time.Hour).Unix() {
		t.Fatalf("expires %v", exp)
	}
	_, key, ok := turn.LongTermTURNRESTAuthHandler(string(s.secretFor(exp)), nil)(&turn.RequestAttributes{Username: u, Realm: "natter"})
	if !ok || string(key) != string(turn.GenerateAuthKey(u, "natter", p)) {
		t.Fatal("pion's TURN REST handler does not agree with Credentials")
	}
	id, ours, ok := s.authenticate(&turn.RequestAttributes{Username: u, Realm: "natter", SrcAddr: &net.UDPAddr{}})
	if !ok || string(ours) != string(key) {
		t.Fatal("authenticate does not agree with pion's TURN REST handler")
	}
	if id != u {
		t.Fatalf("user ID %q, want the whole username %q (an allocation is refreshed with the credentials that made it)", id, u)
	}
	if _, _, ok := s.authenticate(&turn.RequestAttributes{Username: u, Realm: "another realm", SrcAddr: &net.UDPAddr{}}); ok {
		t.Fatal("another realm accepted")
	}
}

// TestWireConstants checks count's STUN constants against pion/stun.
func TestWireConstants(t *testing.T) {
	if got := stun.BindingSuccess.Value(); got != typeBindingSuccess {
		t.Errorf("binding success is %#x", got)
	}
	if got := stun.NewType(stun.MethodData, stun.ClassIndication).Value(); got != typeDataIndication {
		t.Errorf("data indication is %#x", got)
	}
	if stun.AttrData != attrData {
		t.Errorf("DATA is %#x", uint16(stun.AttrData))
	}
}

func TestLimiter(t *testing.T) {
	var now time.Time
	l := newLimiter(func() time.Time { return now })
	now = time.Unix(1000, 0)
	for i := range limitBurst {
		if ok, _ := l.allow(); !ok {
			t.Fatalf("line %d held back", i)
		}
	}
	for range 5 {
		if ok, _ := l.allow(); ok {
			t.Fatal("burst exceeded")
		}
	}
	now = now.Add(limitWindow)
	if ok, dropped := l.allow(); !ok || dropped != 5 {
		t.Fatalf("next window: ok %v, dropped %d, want true, 5", ok, dropped)
	}
}

// TestConcurrentClients runs several users relaying at once, under -race.
func TestConcurrentClients(t *testing.T) {
	s := startServer(t, Config{})
	var wg sync.WaitGroup
	for i := range 6 {
		user := natter.UserID(fmt.Sprintf("user%d", i))
		_, relay := allocate(t, s, user)
		wg.Go(func() {
			peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Error(err)
				return
			}
			defer peer.Close()
			peer.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 100)
			for j := range 20 {
				if _, err := relay.WriteTo(fmt.Appendf(nil, "%s %d", user, j), peer.LocalAddr()); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := peer.ReadFrom(buf); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestIPv6RelayRefused: relays are IPv4 only, so an Allocate asking for an
// IPv6 relayed address is refused (508 Insufficient Capacity, pion's
// answer when the relay socket cannot be opened) and one that names no
// family gets IPv4, even from a client whose socket is IPv6.
func TestIPv6RelayRefused(t *testing.T) {
	s := startServer(t, Config{})
	for _, tc := range []struct {
		name   string
		family turn.RequestedAddressFamily
		want   stun.ErrorCode // 0: allocated, on IPv4
	}{
		{"ipv6 asked", turn.RequestedAddressFamilyIPv6, stun.CodeInsufficientCapacity},
		{"ipv4 asked", turn.RequestedAddressFamilyIPv4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			u, p, _ := s.Credentials("alice", time.Now())
			c, err := turn.NewClient(&turn.ClientConfig{
				STUNServerAddr: s.Addr().String(), TURNServerAddr: s.Addr().String(),
				Username: u, Password: p, Realm: "natter", Conn: conn, RTO: 50 * time.Millisecond,
				LoggerFactory: quietPion{}, RequestedAddressFamily: tc.family,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Listen(); err != nil {
				t.Fatal(err)
			}
			relay, err := c.Allocate()
			if tc.want == 0 {
				if err != nil {
					t.Fatal(err)
				}
				defer relay.Close()
				if ip := relay.LocalAddr().(*net.UDPAddr).IP; ip.To4() == nil {
					t.Fatalf("relayed address %s is not IPv4", ip)
				}
				return
			}
			if err == nil {
				relay.Close()
				t.Fatal("allocation made")
			}
			if code, ok := turnErrorCode(err); !ok || code != tc.want {
				t.Fatalf("allocate said %v, want error %d", err, tc.want)
			}
		})
	}
}

// TestAddressInUse: a port already taken is reported once, with the
// address, and matches syscall.EADDRINUSE.
func TestAddressInUse(t *testing.T) {
	taken, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.LocalAddr().String()
	s, err := New(Config{Logger: quiet, Addr: addr})
	if err == nil {
		s.Close()
		t.Fatal("New listened on a port in use")
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("%v is not EADDRINUSE", err)
	}
	msg := err.Error()
	if strings.Count(msg, "listen udp") != 1 || strings.Count(msg, addr) != 1 {
		t.Errorf("error %q: want \"listen udp\" and %s said once each", msg, addr)
	}
}
