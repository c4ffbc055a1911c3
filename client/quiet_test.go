package client_test

import (
	"testing"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

func quiet(o *client.Options) { o.Quiet = true }

// aliceIn returns alice's row in u's contact list.
func aliceIn(t *testing.T, u *user) wire.Contact {
	t.Helper()
	cs, err := u.Contacts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.User == "alice" {
			return c
		}
	}
	t.Fatalf("alice is not in %s's contacts %+v", u.name, cs)
	return wire.Contact{}
}

// TestQuietClient: with Options.Quiet every session of the Client is quiet,
// the automatic resume after a drop included: contacts see the user
// offline, with the last seen of their last real session, and senders are
// told the user is offline, while messages reach the Client live. It
// registers no connection info.
func TestQuietClient(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob := signup(t, inst, "bob", "b1")
	befriend(t, alice, bob)
	alice.Close()
	waitOffline(t, bob, "alice")
	seen := aliceIn(t, bob).LastSeen

	q, _ := login(t, inst, "alice", "a2", quiet, withDirect(false))
	check := func(when string) {
		t.Helper()
		if c := aliceIn(t, bob); c.Status != natter.StatusOffline || !c.LastSeen.Equal(seen) {
			t.Fatalf("%s: bob sees %+v; want alice offline, last seen %v", when, c, seen)
		}
		res, err := bob.Send(ctx, "alice", []byte(when))
		if err != nil || res.Online {
			t.Fatalf("%s: bob's send %+v, %v; want alice offline", when, res, err)
		}
		if ev := q.ev.message(res.ID); ev.Offline {
			t.Fatalf("%s: the quiet Client got the message from the store, not live: %+v", when, ev)
		}
	}
	check("quiet login")
	if err := q.SetReach(ctx, []natter.Candidate{{Type: "host", Proto: "udp", Addr: "127.0.0.1:9"}}); wireCode(err) != wire.CodeBadRequest {
		t.Fatalf("SetReach on a quiet Client: %v, want bad_request", err)
	}

	// natterd restarts: the quiet Client resumes, quietly.
	inst.Restart()
	q.ev.until(func(e client.Event) bool { c, ok := e.(client.ConnEvent); return ok && c.Up })
	bob.ev.until(func(e client.Event) bool { c, ok := e.(client.ConnEvent); return ok && c.Up })
	check("quiet resume")

	// Nothing told bob of alice's quiet sessions: the first presence he
	// sees is her real device coming back.
	alice2, _ := login(t, inst, "alice", "a1")
	p := bob.ev.until(func(e client.Event) bool { _, ok := e.(client.PresenceEvent); return ok }).(client.PresenceEvent)
	if p.User != "alice" || p.Status != natter.StatusOnline {
		t.Fatalf("bob's first presence event after alice's quiet sessions: %+v", p)
	}
	alice2.Close()
}
