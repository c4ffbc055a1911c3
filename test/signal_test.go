package test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

func TestSignalRouting(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	b2 := login(t, in, "bob", "")
	b2.drainLogin()
	c := signup(t, in, "carol")
	befriend(t, a, b)

	// To one device of an approved contact, and only that device.
	a.call(wire.Signal{To: "bob", Device: b2.device, Session: "s1", Kind: "offer", Data: []byte(`{"sdp":"x"}`)}, wire.TOK)
	got := b2.expect(wire.TSignalIn).(*wire.SignalIn)
	if got.From != "alice" || got.FromDevice != a.device || got.Session != "s1" || got.Kind != "offer" || string(got.Data) != `{"sdp":"x"}` {
		t.Fatalf("bob's second device got %+v", got)
	}
	for {
		v, err := b.read(300 * time.Millisecond)
		if err != nil {
			break
		}
		if s, ok := v.(*wire.SignalIn); ok {
			t.Fatalf("bob's other device got a signal meant for %s: %+v", b2.device, s)
		}
	}

	for _, tc := range []struct {
		name string
		from *raw
		sig  wire.Signal
		code wire.Code
	}{
		{"non-contact", c, wire.Signal{To: "bob", Device: b.device, Session: "s", Kind: "offer"}, wire.CodeNotContact},
		{"offline device", a, wire.Signal{To: "bob", Device: "gone", Session: "s", Kind: "offer"}, wire.CodeOffline},
		{"bad kind", a, wire.Signal{To: "bob", Device: b.device, Session: "s", Kind: "telegram"}, wire.CodeBadRequest},
		{"no session", a, wire.Signal{To: "bob", Device: b.device, Kind: "offer"}, wire.CodeBadRequest},
		{"oversized data", a, wire.Signal{To: "bob", Device: b.device, Session: "s", Kind: "offer", Data: make([]byte, 65<<10)}, wire.CodeBadRequest},
	} {
		if _, err := tc.from.try(tc.sig, wire.TOK); errCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}

// TestDirectCopies: a copy of a peer-to-peer message goes to the poster's
// own devices only, never to the other user, and is not counted as relayed.
func TestDirectCopies(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	a2 := login(t, in, "alice", "")
	a2.drainLogin()
	b := signup(t, in, "bob")
	c := signup(t, in, "carol")
	befriend(t, a, b)
	relayed := metric(t, in, "natter_messages_total")

	m := wire.Message{ID: "direct-1", From: "alice", To: "bob", Body: []byte("went direct")}
	a.call(wire.Copy{Message: m}, wire.TOK)
	got := a2.expect(wire.TMsg).(*wire.Msg)
	if !got.Direct || got.ID != "direct-1" || got.ConvSeq != 0 || string(got.Body) != "went direct" || got.FromDevice != a.device {
		t.Fatalf("alice's other device got %+v", got)
	}
	if v, err := b.read(300 * time.Millisecond); err == nil {
		t.Fatalf("bob got %T %+v from alice's copy", v, v)
	}
	// bob stores his own copy of what he received.
	b.call(wire.Copy{Message: m}, wire.TOK)
	// A repeat stores nothing new.
	a.call(wire.Copy{Message: m}, wire.TOK)
	if n := metric(t, in, "natter_direct_copies_total"); n != 2 {
		t.Fatalf("natter_direct_copies_total = %v, want 2", n)
	}
	if n := metric(t, in, "natter_messages_total"); n != relayed {
		t.Fatalf("copies counted as relayed messages: %v -> %v", relayed, n)
	}
	// A new device of alice gets the copy in its inbox.
	a3 := login(t, in, "alice", "")
	_, inbox := a3.drainLogin()
	found := false
	for _, f := range inbox {
		for _, g := range f.Groups {
			for _, mm := range g.Messages {
				found = found || mm.ID == "direct-1" && mm.Direct
			}
		}
	}
	if !found {
		t.Fatal("copy missing from a new device's inbox")
	}
	for _, tc := range []struct {
		name string
		from *raw
		msg  wire.Message
		code wire.Code
	}{
		{"not own message", c, wire.Message{ID: "x", From: "alice", To: "bob"}, wire.CodeBadRequest},
		{"non-contact", c, wire.Message{ID: "x", From: "carol", To: "bob"}, wire.CodeNotContact},
		{"bad id", a, wire.Message{ID: "bad id", From: "alice", To: "bob"}, wire.CodeBadRequest},
	} {
		if _, err := tc.from.try(wire.Copy{Message: tc.msg}, wire.TOK); errCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}

// TestIceServers: a logged-in user gets STUN/TURN credentials for natterd's
// own UDP service; they stop working for allocations after logout.
func TestIceServers(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	cfg := a.call(wire.IceServers{}, wire.TIceConfig).(*wire.IceConfig)
	if cfg.Port == 0 || cfg.Username == "" || cfg.Password == "" || !cfg.Expires.After(time.Now()) {
		t.Fatalf("ice config %+v", cfg)
	}
	if in.UDPAddr == "" || !strings.HasSuffix(in.UDPAddr, fmt.Sprintf(":%d", cfg.Port)) {
		t.Fatalf("port %d, service at %s", cfg.Port, in.UDPAddr)
	}
	// Before login it is refused.
	r := hello(t, in)
	if _, err := r.try(wire.IceServers{}, wire.TIceConfig); errCode(err) != wire.CodeProtocol {
		t.Fatalf("ice servers before login: %v", err)
	}
}

// turnAllocate tries a TURN allocation at natterd's UDP service with the
// given credentials.
func turnAllocate(t *testing.T, in *servertest.Instance, username, password string) error {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: in.UDPAddr, TURNServerAddr: in.UDPAddr,
		Username: username, Password: password, Realm: "natter",
		Conn: conn, RTO: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err == nil {
		relay.Close()
	}
	return err
}

// TestRelayOnlyForLiveSessions: natterd's TURN relay takes the credentials
// it issued while their user is logged in, and refuses them after logout,
// and refuses made-up ones.
func TestRelayOnlyForLiveSessions(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	cfg := a.call(wire.IceServers{}, wire.TIceConfig).(*wire.IceConfig)
	if err := turnAllocate(t, in, cfg.Username, cfg.Password); err != nil {
		t.Fatalf("allocation with fresh credentials while logged in: %v", err)
	}
	if err := turnAllocate(t, in, cfg.Username, "forged-password"); err == nil {
		t.Fatal("allocation with a wrong password succeeded")
	}
	if err := turnAllocate(t, in, "9999999999:alice", cfg.Password); err == nil {
		t.Fatal("allocation with a forged username succeeded")
	}
	a.call(wire.Logout{}, wire.TOK)
	a.closed(5 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for turnAllocate(t, in, cfg.Username, cfg.Password) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the relay still takes alice's credentials after she logged out")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
