//go:build !js

// Native only: these tests make pion's own PeerConnections.

package p2p

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// memNet wires Managers together in memory: a Signal from one is handed to
// the other's HandleSignal at once, in order, as natterd would.
type memNet struct {
	mu       sync.Mutex
	managers map[peerKey]*Manager
	// drop, if set, drops the signals it returns true for.
	drop func(from, to peerKey, kind string) bool
	// gate, if set, is called before a signal is delivered; it may block.
	gate func(r sigRecord)
	log  []sigRecord
}

type sigRecord struct {
	from, to peerKey
	session  string
	kind     string
	data     []byte
}

func newMemNet() *memNet { return &memNet{managers: make(map[peerKey]*Manager)} }

func (n *memNet) signaler(from peerKey) Signaler { return memSignaler{n, from} }

type memSignaler struct {
	n    *memNet
	from peerKey
}

func (s memSignaler) Signal(ctx context.Context, to natter.UserID, device natter.DeviceID, session, kind string, data []byte) error {
	tk := peerKey{to, device}
	s.n.mu.Lock()
	m := s.n.managers[tk]
	drop := s.n.drop != nil && s.n.drop(s.from, tk, kind)
	rec := sigRecord{s.from, tk, session, kind, data}
	s.n.log = append(s.n.log, rec)
	gate := s.n.gate
	s.n.mu.Unlock()
	if m == nil {
		return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, tk)
	}
	if drop {
		return nil
	}
	if gate != nil {
		gate(rec)
	}
	m.HandleSignal(s.from.user, s.from.device, session, kind, data)
	return nil
}

func (n *memNet) records() []sigRecord {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]sigRecord(nil), n.log...)
}

// loopbackOnly keeps ICE on 127.0.0.1 over UDP, without mDNS: fast and
// deterministic.
func loopbackOnly(se *webrtc.SettingEngine) {
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() && ip.To4() != nil })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("P2P_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: levelTrace}))
}

// newManager starts a Manager on n for user/device; t.Cleanup closes it.
func (n *memNet) newManager(t testing.TB, user natter.UserID, device natter.DeviceID, edit func(*Config)) *Manager {
	t.Helper()
	pk := peerKey{user, device}
	cfg := Config{
		Self:           user,
		SelfDevice:     device,
		Signaler:       n.signaler(pk),
		Logger:         testLogger(t),
		ConnectTimeout: 5 * time.Second,
		SettingEngine:  loopbackOnly,
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	n.managers[pk] = m
	n.mu.Unlock()
	t.Cleanup(func() { m.Close() })
	return m
}

// accept waits for the next incoming Conn.
func accept(t testing.TB, m *Manager) *Conn {
	t.Helper()
	select {
	case c, ok := <-m.Incoming():
		if !ok {
			t.Fatal("Incoming closed")
		}
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no incoming connection")
	}
	return nil
}

// connect dials b from a and returns both ends.
func connect(t testing.TB, a, b *Manager) (ca, cb *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := a.Dial(ctx, b.cfg.Self, b.cfg.SelfDevice)
	if err != nil {
		t.Fatal(err)
	}
	return ca, accept(t, b)
}

// waitGoroutines waits until at most n goroutines run; pion winds some down
// in the background.
func waitGoroutines(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sessionCount is how many attempts and connections m has.
func sessionCount(m *Manager) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// waitSessions waits until m has n sessions.
func waitSessions(t testing.TB, m *Manager, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for sessionCount(m) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions, want %d", sessionCount(m), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func noIncoming(t testing.TB, m *Manager, wait time.Duration) {
	t.Helper()
	select {
	case c := <-m.Incoming():
		u, d := c.Peer()
		t.Errorf("unexpected incoming connection from %s/%s", u, d)
	case <-time.After(wait):
	}
}

func waitDone(t testing.TB, c *Conn, within time.Duration) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(within):
		t.Fatalf("conn not done after %v", within)
	}
}

func natterUser(s string) natter.UserID     { return natter.UserID(s) }
func natterDevice(s string) natter.DeviceID { return natter.DeviceID(s) }

func (n *memNet) setDrop(f func(from, to peerKey, kind string) bool) {
	n.mu.Lock()
	n.drop = f
	n.mu.Unlock()
}

func (n *memNet) setGate(f func(r sigRecord)) {
	n.mu.Lock()
	n.gate = f
	n.mu.Unlock()
}
