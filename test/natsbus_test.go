package test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/natsbus"
	"github.com/natterim/natter/internal/natstest"
	"github.com/natterim/natter/internal/server"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// TestNATSDeadNodeTellsContacts: natterd on a NATS bus and registry
// (--bus). Another node on the same NATS holds a session of alice's, with
// connection info, and dies without a word (its NATS connection ends, its
// heartbeat stops): within the keepalive, natterd removes that session,
// withdraws its connection info from alice's contacts and tells them she
// went offline, with last seen.
func TestNATSDeadNodeTellsContacts(t *testing.T) {
	srv := natstest.Start(t, "")
	const keepalive = 3 * time.Second
	in := servertest.Start(t, func(c *server.Config) { c.Bus, c.Keepalive = srv.URL(), keepalive })
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	befriend(t, a, b)
	a.call(wire.Logout{}, wire.TOK)
	a.closed(5 * time.Second)
	for {
		if p := b.expect(wire.TPresence).(*wire.Presence); p.User == "alice" && p.Status == natter.StatusOffline {
			break
		}
	}

	ctx := context.Background()
	x, err := natsbus.Open(ctx, natsbus.Config{URLs: srv.URL(), Node: "x", Timeout: keepalive})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	phone := natter.LiveSession{User: "alice", Device: "phone", Conn: "x-1", Node: "x", Status: natter.StatusBusy,
		Reach: []natter.Candidate{{Type: "host", Proto: "udp", Addr: "192.0.2.7:4000"}}, Since: time.Now()}
	if err := x.Registry().Put(ctx, phone); err != nil {
		t.Fatal(err)
	}
	// natterd reads the registry from its local copy, which a watch keeps
	// up with other nodes' writes (natsbus: "The registry's local copy"):
	// node x's Put reaches it within the watch's delivery, not at once.
	for deadline := time.Now().Add(5 * time.Second); ; {
		cs := b.call(wire.ListContacts{}, wire.TContacts).(*wire.Contacts)
		c := contactOf(t, cs, "alice")
		if c.Status == natter.StatusBusy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob sees alice %+v 5 s after her phone went on node x; want busy", c)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// bob keeps his connection alive (pings) while he waits.
	stop := make(chan struct{})
	var pings sync.WaitGroup
	defer func() { close(stop); pings.Wait() }()
	pings.Go(func() {
		tk := time.NewTicker(keepalive / 4)
		defer tk.Stop()
		ping, _ := wire.Encode(wire.Ping{})
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				b.c.Write(ping)
			}
		}
	})
	died := time.Now()
	x.Crash()
	r := b.expect(wire.TReach).(*wire.Reach)
	if r.User != "alice" || r.Device != "phone" || len(r.Candidates) != 0 {
		t.Fatalf("bob got %+v; want alice's phone's connection info withdrawn", r)
	}
	p := b.expect(wire.TPresence).(*wire.Presence)
	if p.User != "alice" || p.Status != natter.StatusOffline || p.LastSeen.IsZero() {
		t.Fatalf("bob got %+v; want alice offline, with last seen", p)
	}
	t.Logf("bob told alice is offline %v after node x died (keepalive %v)", time.Since(died).Round(time.Millisecond), keepalive)
	if n := in.Metric(t, "natter_registry_expired_total"); n != 1 {
		t.Errorf("natter_registry_expired_total = %v, want 1", n)
	}
}
