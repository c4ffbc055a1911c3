//go:build !js

// Native only: these tests make pion's own PeerConnections.

package p2p

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
)

// startTURN runs a TURN server on 127.0.0.1 with one static long-term
// credential and returns it as ICE servers.
func startTURN(t *testing.T) []webrtc.ICEServer {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const realm, user, pass = "natter", "alice", "secret"
	key := turn.GenerateAuthKey(user, realm, pass)
	s, err := turn.NewServer(turn.ServerConfig{
		Realm: realm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			return ra.Username, key, ra.Username == user
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.IPv4(127, 0, 0, 1),
				Address:      "127.0.0.1",
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return []webrtc.ICEServer{{
		URLs:       []string{"turn:" + pc.LocalAddr().String() + "?transport=udp"},
		Username:   user,
		Credential: pass,
	}}
}

func TestRelayOnly(t *testing.T) {
	servers := startTURN(t)
	n := newMemNet()
	a := n.newManager(t, "alice", "phone", func(c *Config) { c.RelayOnly, c.ICEServers = true, servers })
	// b learns its servers later, as the SDK does from IceConfig.
	b := n.newManager(t, "bob", "laptop", func(c *Config) { c.RelayOnly = true })
	b.SetICEServers(servers)
	ca, cb := connect(t, a, b)
	for _, c := range []*Conn{ca, cb} {
		if p := c.Path(); p != PathRelayed {
			t.Errorf("path = %q, want relayed", p)
		}
	}
	for i := range 100 {
		if err := ca.Send(testMessage(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		if msg := <-cb.Messages(); string(msg) != string(testMessage(i)) {
			t.Fatalf("message %d differs", i)
		}
	}
	if ca.RTT() <= 0 {
		t.Errorf("RTT = %v", ca.RTT())
	}
}

func TestGlare(t *testing.T) {
	for i := range 3 {
		n := newMemNet()
		a := n.newManager(t, "alice", "phone", nil)
		b := n.newManager(t, "bob", "laptop", nil)
		// Hold both offers until both are on their way, so that each side
		// sees the other's offer while its own is pending.
		var offers sync.WaitGroup
		offers.Add(2)
		release := make(chan struct{})
		var gated atomic.Int32
		n.setGate(func(r sigRecord) {
			if r.kind == KindOffer && gated.Add(1) <= 2 {
				offers.Done()
				<-release
			}
		})
		go func() { offers.Wait(); close(release) }()

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var ca, cb *Conn
		var errA, errB error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); ca, errA = a.Dial(ctx, "bob", "laptop") }()
		go func() { defer wg.Done(); cb, errB = b.Dial(ctx, "alice", "phone") }()
		wg.Wait()
		cancel()
		if errA != nil || errB != nil {
			t.Fatalf("run %d: dial: %v, %v", i, errA, errB)
		}
		if ca.Session() != cb.Session() || !ca.Offerer() || cb.Offerer() {
			t.Fatalf("run %d: a: session %s offerer %v; b: session %s offerer %v", i, ca.Session(), ca.Offerer(), cb.Session(), cb.Offerer())
		}
		if err := cb.Send([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		if msg := <-ca.Messages(); string(msg) != "hi" {
			t.Fatalf("got %q", msg)
		}
		offerSessions := map[string]bool{}
		for _, r := range n.records() {
			if r.kind == KindOffer {
				offerSessions[r.session] = true
			}
		}
		if len(offerSessions) != 2 {
			t.Fatalf("run %d: %d offers, want 2 (glare)", i, len(offerSessions))
		}
		noIncoming(t, a, 50*time.Millisecond)
		noIncoming(t, b, 50*time.Millisecond)
		waitSessions(t, a, 1)
		waitSessions(t, b, 1)
		a.Close()
		b.Close()
	}
}

// A Dial to a device that is already connecting to us takes its attempt
// over rather than starting a second one.
func TestDialTakesOverIncoming(t *testing.T) {
	n := newMemNet()
	a := n.newManager(t, "alice", "phone", nil)
	b := n.newManager(t, "bob", "laptop", nil)
	release := make(chan struct{})
	n.setGate(func(r sigRecord) {
		if r.kind == KindAnswer {
			<-release
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ca *Conn
	var errA error
	done := make(chan struct{})
	go func() { defer close(done); ca, errA = a.Dial(ctx, "bob", "laptop") }()
	waitSessions(t, b, 1)
	go func() {
		// Let b's Dial register first.
		for {
			b.mu.Lock()
			nd := len(b.dials)
			b.mu.Unlock()
			if nd == 1 {
				close(release)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	cb, err := b.Dial(ctx, "alice", "phone")
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if errA != nil {
		t.Fatal(errA)
	}
	if ca.Session() != cb.Session() || cb.Offerer() {
		t.Fatalf("sessions %s, %s; b offerer %v", ca.Session(), cb.Session(), cb.Offerer())
	}
	noIncoming(t, b, 50*time.Millisecond)
}

func TestConcurrentDialsShare(t *testing.T) {
	n := newMemNet()
	a := n.newManager(t, "alice", "phone", nil)
	b := n.newManager(t, "bob", "laptop", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conns := make([]*Conn, 3)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := a.Dial(ctx, "bob", "laptop")
			if err != nil {
				t.Error(err)
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if conns[0] == nil || conns[0] != conns[1] || conns[1] != conns[2] {
		t.Fatalf("conns %p %p %p", conns[0], conns[1], conns[2])
	}
	accept(t, b)
	noIncoming(t, b, 50*time.Millisecond)
}

func TestPeerClose(t *testing.T) {
	n := newMemNet()
	a := n.newManager(t, "alice", "phone", nil)
	b := n.newManager(t, "bob", "laptop", nil)
	ca, cb := connect(t, a, b)
	if err := ca.Send([]byte("bye now")); err != nil {
		t.Fatal(err)
	}
	if msg := <-cb.Messages(); string(msg) != "bye now" {
		t.Fatalf("got %q", msg)
	}
	start := time.Now()
	ca.Close()
	waitDone(t, cb, time.Second)
	t.Logf("peer saw the close after %v", time.Since(start))
	if !errors.Is(cb.Err(), ErrPeerClosed) {
		t.Errorf("peer's Err = %v, want ErrPeerClosed", cb.Err())
	}
	if !errors.Is(ca.Err(), ErrClosed) {
		t.Errorf("Err = %v, want ErrClosed", ca.Err())
	}
	if err := ca.Send([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	if err := cb.Send([]byte("x")); !errors.Is(err, ErrPeerClosed) {
		t.Errorf("Send after peer's Close: %v", err)
	}
	select {
	case _, ok := <-cb.Messages():
		if ok {
			t.Error("message after close")
		}
	case <-time.After(5 * time.Second):
		t.Error("Messages not closed")
	}
	waitSessions(t, a, 0)
	waitSessions(t, b, 0)
}

func TestManagerClose(t *testing.T) {
	n := newMemNet()
	a := n.newManager(t, "alice", "phone", nil)
	b := n.newManager(t, "bob", "laptop", nil)
	ca, cb := connect(t, a, b)
	b.Close()
	waitDone(t, cb, time.Second)
	waitDone(t, ca, 2*time.Second)
	if _, ok := <-b.Incoming(); ok {
		t.Error("Incoming open after Close")
	}
	if _, err := b.Dial(context.Background(), "alice", "phone"); !errors.Is(err, ErrClosed) {
		t.Errorf("Dial after Close: %v", err)
	}
	b.HandleSignal("alice", "phone", "abc", KindBye, nil) // no panic
}

func TestDialTimeout(t *testing.T) {
	n := newMemNet()
	a := n.newManager(t, "alice", "phone", func(c *Config) { c.ConnectTimeout = 300 * time.Millisecond })
	b := n.newManager(t, "bob", "laptop", nil)
	n.setDrop(func(from, to peerKey, kind string) bool { return from.user == "bob" })
	start := time.Now()
	_, err := a.Dial(context.Background(), "bob", "laptop")
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timed out after %v", d)
	}
	waitSessions(t, a, 0)
	waitSessions(t, b, 0) // the bye ended b's side too
}

func TestDialCancel(t *testing.T) {
	n := newMemNet()
	a := n.newManager(t, "alice", "phone", nil)
	b := n.newManager(t, "bob", "laptop", nil)
	n.setDrop(func(from, to peerKey, kind string) bool { return from.user == "bob" })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := a.Dial(ctx, "bob", "laptop"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	waitSessions(t, a, 0)
	waitSessions(t, b, 0)
}

func TestDialErrors(t *testing.T) {
	n := newMemNet()
	a := n.newManager(t, "alice", "phone", nil)
	ctx := context.Background()
	if _, err := a.Dial(ctx, "alice", "phone"); err == nil {
		t.Error("dialled itself")
	}
	if _, err := a.Dial(ctx, "bob", "bad device!"); err == nil {
		t.Error("dialled a bad device ID")
	}
	// Nobody there: the offer cannot be sent.
	if _, err := a.Dial(ctx, "carol", "tablet"); !errors.Is(err, ErrFailed) {
		t.Errorf("dial to nobody: %v", err)
	}
}

// Signals that are garbage, or for sessions that do not exist, are dropped
// without a panic and without a trace.
func TestBadSignals(t *testing.T) {
	n := newMemNet()
	b := n.newManager(t, "bob", "laptop", nil)
	offer := []byte(`{"type":"offer","sdp":"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"}`)
	cand := []byte(`{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host","sdpMid":"0"}`)
	for _, tc := range []struct {
		name                 string
		from, device, sessID string
		kind                 string
		data                 []byte
	}{
		{"unknown kind", "alice", "phone", "s1", "hello", nil},
		{"bad json offer", "alice", "phone", "s1", KindOffer, []byte("{")},
		{"offer typed answer", "alice", "phone", "s1", KindOffer, []byte(`{"type":"answer","sdp":"v=0\r\n"}`)},
		{"offer with garbage sdp", "alice", "phone", "s1", KindOffer, []byte(`{"type":"offer","sdp":"garbage"}`)},
		{"bad candidate", "alice", "phone", "s1", KindCandidate, []byte(`{"candidate":"candidate:x y z"}`)},
		{"candidate for unknown session", "alice", "phone", "s1", KindCandidate, cand},
		{"answer for unknown session", "alice", "phone", "s1", KindAnswer, []byte(`{"type":"answer","sdp":"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"}`)},
		{"bye for unknown session", "alice", "phone", "s1", KindBye, nil},
		{"bad session id", "alice", "phone", "s 1", KindOffer, offer},
		{"empty session id", "alice", "phone", "", KindOffer, offer},
		{"no sender", "", "phone", "s1", KindOffer, offer},
		{"bad device", "alice", "", "s1", KindOffer, offer},
		{"from self", "bob", "laptop", "s1", KindOffer, offer},
		{"too large", "alice", "phone", "s1", KindOffer, make([]byte, maxSignalData+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.HandleSignal(natterUser(tc.from), natterDevice(tc.device), tc.sessID, tc.kind, tc.data)
			if n := sessionCount(b); n != 0 {
				t.Fatalf("%d sessions", n)
			}
		})
	}

	// An offer that parses but cannot be applied starts an attempt that
	// ends at once, with a bye to the sender.
	mallory := n.newManager(t, "mallory", "pc", nil)
	_ = mallory
	b.HandleSignal("mallory", "pc", "s2", KindOffer, offer)
	waitSessions(t, b, 0)
	deadline := time.Now().Add(5 * time.Second)
	for !hasSignal(n, "bob", "mallory", "s2", KindBye) {
		if time.Now().After(deadline) {
			t.Fatal("no bye for the bad offer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A repeat of that offer is ignored: the session has ended.
	b.HandleSignal("mallory", "pc", "s2", KindOffer, offer)
	if n := sessionCount(b); n != 0 {
		t.Fatalf("%d sessions after a repeated offer", n)
	}
	noIncoming(t, b, 10*time.Millisecond)
}

func hasSignal(n *memNet, from, to, session, kind string) bool {
	for _, r := range n.records() {
		if string(r.from.user) == from && string(r.to.user) == to && r.session == session && r.kind == kind {
			return true
		}
	}
	return false
}

// A replayed offer of a connection that has ended does not open a new one.
func TestOldSessionIgnored(t *testing.T) {
	n := newMemNet()
	a := n.newManager(t, "alice", "phone", nil)
	b := n.newManager(t, "bob", "laptop", nil)
	ca, cb := connect(t, a, b)
	var offer sigRecord
	for _, r := range n.records() {
		if r.kind == KindOffer {
			offer = r
		}
	}
	ca.Close()
	waitDone(t, cb, time.Second)
	waitSessions(t, b, 0)
	b.HandleSignal(offer.from.user, offer.from.device, offer.session, offer.kind, offer.data)
	if n := sessionCount(b); n != 0 {
		t.Fatalf("replayed offer started %d sessions", n)
	}
}

// A path that goes silent ends the connection within about
// Config.FailedTimeout, so that the SDK can fall back to the server.
func TestPathBreak(t *testing.T) {
	lf := logging.NewDefaultLoggerFactory()
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "10.0.0.0/24", LoggerFactory: lf})
	if err != nil {
		t.Fatal(err)
	}
	var cut atomic.Bool
	wan.AddChunkFilter(func(vnet.Chunk) bool { return !cut.Load() })
	nets := map[string]*vnet.Net{}
	for user, ip := range map[string]string{"alice": "10.0.0.2", "bob": "10.0.0.3"} {
		vn, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
		if err != nil {
			t.Fatal(err)
		}
		if err := wan.AddNet(vn); err != nil {
			t.Fatal(err)
		}
		nets[user] = vn
	}
	if err := wan.Start(); err != nil {
		t.Fatal(err)
	}
	defer wan.Stop()

	n := newMemNet()
	onNet := func(user string) func(*Config) {
		return func(c *Config) {
			c.DisconnectedTimeout, c.FailedTimeout, c.Keepalive = 300*time.Millisecond, time.Second, 100*time.Millisecond
			c.SettingEngine = func(se *webrtc.SettingEngine) {
				se.SetNet(nets[user])
				se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
				se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
			}
		}
	}
	a := n.newManager(t, "alice", "phone", onNet("alice"))
	b := n.newManager(t, "bob", "laptop", onNet("bob"))
	ca, cb := connect(t, a, b)
	if p := ca.Path(); p != PathDirect {
		t.Errorf("path %q", p)
	}
	time.Sleep(300 * time.Millisecond) // idle: keepalives hold the path up
	if ca.Err() != nil || cb.Err() != nil {
		t.Fatalf("ended while idle: %v, %v", ca.Err(), cb.Err())
	}
	start := time.Now()
	cut.Store(true)
	waitDone(t, ca, 3*time.Second)
	waitDone(t, cb, 3*time.Second)
	t.Logf("path break noticed after %v", time.Since(start))
	// The side that notices first tells the other with a bye, through the
	// server, which still works.
	for _, c := range []*Conn{ca, cb} {
		if !errors.Is(c.Err(), ErrFailed) && !errors.Is(c.Err(), ErrPeerClosed) {
			t.Errorf("Err = %v; want ErrFailed or ErrPeerClosed", c.Err())
		}
	}
	if !errors.Is(ca.Err(), ErrFailed) && !errors.Is(cb.Err(), ErrFailed) {
		t.Errorf("Err = %v, %v; want one ErrFailed", ca.Err(), cb.Err())
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		n := newMemNet()
		a := n.newManager(t, "alice", "phone", nil)
		b := n.newManager(t, "bob", "laptop", nil)
		ca, cb := connect(t, a, b)
		for i := range 10 {
			if err := ca.Send(testMessage(i)); err != nil {
				t.Fatal(err)
			}
			<-cb.Messages()
		}
		// One connection closed by its Conn, one left for Manager.Close,
		// one attempt that never connects.
		ca2, _ := connect(t, b, a)
		ca2.Close()
		n.setDrop(func(from, to peerKey, kind string) bool { return true })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		a.Dial(ctx, "bob", "laptop")
		cancel()
		a.Close()
		b.Close()
	}()
	waitGoroutines(t, before+2)
}

// A Conn ended by its peer whose Messages nobody reads does not hold up
// Manager.Close.
func TestCloseWithUnreadMessages(t *testing.T) {
	n := newMemNet()
	a := n.newManager(t, "alice", "phone", nil)
	b := n.newManager(t, "bob", "laptop", nil)
	ca, cb := connect(t, a, b)
	for i := range 400 { // more than Messages buffers
		if err := ca.Send([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	ca.Close()
	waitDone(t, cb, time.Second)
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Manager.Close hangs")
	}
}

// One contact flooding offers gets a few attempts, not all of them.
func TestOfferFlood(t *testing.T) {
	n := newMemNet()
	a := n.newManager(t, "alice", "phone", nil)
	b := n.newManager(t, "bob", "laptop", nil)
	n.newManager(t, "mallory", "pc", nil) // takes b's answers and ignores them
	offer, _, _ := realSignals(t)
	for i := range 20 {
		b.HandleSignal("mallory", "pc", fmt.Sprintf("flood%d", i), KindOffer, offer)
	}
	if got := sessionCount(b); got != maxPendingPerPeer {
		t.Fatalf("%d attempts from one device, want %d", got, maxPendingPerPeer)
	}
	ca, cb := connect(t, a, b)
	if u, _ := cb.Peer(); u != "alice" || ca.Err() != nil {
		t.Fatalf("peer %s, err %v", u, ca.Err())
	}
}
