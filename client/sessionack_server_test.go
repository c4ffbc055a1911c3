package client_test

import (
	"slices"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

// TestServerSessionAck: through a real natterd, every device that opens a
// message starting a session with it acknowledges it (bob's two devices,
// and alice's other device, which gets a copy), so that alice's device
// stops attaching the inits; the acks are no messages: the conversation's
// history holds the one message sent.
func TestServerSessionAck(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob1 := signup(t, inst, "bob", "b1")
	befriend(t, alice, bob1)
	bob2, _ := login(t, inst, "bob", "b2")
	alice2, _ := login(t, inst, "alice", "a2")
	// a1 seals for a2 once it has a2's keys (it fetched its own at login).
	alice.ev.until(func(e client.Event) bool {
		k, ok := e.(client.KeysEvent)
		return ok && k.User == "alice" && slices.Contains(k.Devices, "a2")
	})

	res, err := alice.Send(ctx, "bob", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*user{bob1, bob2, alice2} {
		u.ev.message(res.ID)
	}
	kr := alice.Keyring()
	for _, d := range []struct {
		user natter.UserID
		dev  natter.DeviceID
	}{{"bob", "b1"}, {"bob", "b2"}, {"alice", "a2"}} {
		waitUntil(t, string(d.user)+"/"+string(d.dev)+"'s ack", func() bool { return kr.Confirmed(d.user, d.dev) })
	}
	for _, u := range []*user{bob1, alice} {
		peer := natter.UserID("bob")
		if u == bob1 {
			peer = "alice"
		}
		h, err := u.History(ctx, peer, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 1 || h[0].Message.ID != res.ID {
			t.Fatalf("%s's history with %s: %+v, want the one message", u.name, peer, h)
		}
	}
	// The next message reaches everyone without the inits.
	res2, err := alice.Send(ctx, "bob", []byte("again"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*user{bob1, bob2, alice2} {
		if me := u.ev.message(res2.ID); me.OpenErr != nil || string(me.Message.Body) != "again" {
			t.Fatalf("%s/%s: %q, %v", u.name, u.dev, me.Message.Body, me.OpenErr)
		}
	}
}

// waitUntil polls cond (state with no event to wait for) until it holds,
// failing after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
