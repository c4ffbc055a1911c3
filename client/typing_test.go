package client_test

import (
	"testing"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

// typingFrom waits for u's next TypingEvent, failing on a MessageEvent
// first, and returns who is typing.
func typingFrom(t *testing.T, u *user) natter.UserID {
	t.Helper()
	ev := u.ev.until(func(e client.Event) bool {
		if m, ok := e.(client.MessageEvent); ok {
			t.Fatalf("%s got message %s before a typing event", u.name, m.Message.ID)
		}
		_, ok := e.(client.TypingEvent)
		return ok
	})
	return ev.(client.TypingEvent).From
}

// noTypingUntil reads u's events up to the message id, failing on any
// TypingEvent before it.
func noTypingUntil(t *testing.T, u *user, id natter.MessageID, why string) {
	t.Helper()
	u.ev.until(func(e client.Event) bool {
		if ty, ok := e.(client.TypingEvent); ok {
			t.Fatalf("%s: %s got typing from %s", why, u.name, ty.From)
		}
		m, ok := e.(client.MessageEvent)
		return ok && m.Message.ID == id
	})
}

// TestTypingThroughServer: without a peer-to-peer channel a typing
// notification goes through natterd to the contact's online devices (not
// to a quiet one); a non-contact's is dropped; none is stored, so a
// contact who was offline gets nothing when they come back.
func TestTypingThroughServer(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob := signup(t, inst, "bob", "b1")
	carol := signup(t, inst, "carol", "c1")
	befriend(t, alice, bob)
	bobQuiet, _ := login(t, inst, "bob", "b2", func(o *client.Options) { o.Quiet = true })

	if err := alice.SendTyping(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if from := typingFrom(t, bob); from != "alice" {
		t.Fatalf("bob sees %s typing", from)
	}
	// The quiet device got nothing before a message sent after it.
	res, err := alice.Send(ctx, "bob", []byte("after typing"))
	if err != nil {
		t.Fatal(err)
	}
	noTypingUntil(t, bobQuiet, res.ID, "a quiet device")
	bob.ev.message(res.ID)

	// carol is no contact of bob's: dropped. Her Contacts round trip
	// shows natterd handled the typing before alice types again.
	if err := carol.SendTyping(ctx, "bob"); err != nil {
		t.Fatalf("carol's typing: %v", err)
	}
	if _, err := carol.Contacts(ctx); err != nil {
		t.Fatal(err)
	}
	if err := alice.SendTyping(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if from := typingFrom(t, bob); from != "alice" {
		t.Fatalf("bob sees %s typing, a non-contact", from)
	}

	// Not stored: alice types while bob is offline; back online, bob gets
	// nothing before alice's next message.
	bob.Close()
	bobQuiet.Close()
	waitOffline(t, alice, "bob")
	if err := alice.SendTyping(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Contacts(ctx); err != nil { // natterd handled it
		t.Fatal(err)
	}
	bob2, _ := login(t, inst, "bob", "b1")
	res, err = alice.Send(ctx, "bob", []byte("back?"))
	if err != nil {
		t.Fatal(err)
	}
	noTypingUntil(t, bob2, res.ID, "back online after typing while offline")
}

// waitOffline waits until u sees peer go offline.
func waitOffline(t *testing.T, u *user, peer natter.UserID) {
	t.Helper()
	u.ev.until(func(e client.Event) bool {
		p, ok := e.(client.PresenceEvent)
		return ok && p.User == peer && p.Status == natter.StatusOffline
	})
}

// TestTypingDirect: with a peer-to-peer channel up, typing goes over it,
// both ways, and natterd relays none.
func TestTypingDirect(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1", withDirect(false))
	bob := signup(t, inst, "bob", "b1", withDirect(false))
	befriend(t, alice, bob)
	waitReach(t, alice, "bob")
	if path, _, err := alice.OpenDirect(ctx, "bob"); err != nil || path != client.PathDirect {
		t.Fatalf("open direct: %s, %v", path, err)
	}
	bob.ev.until(func(e client.Event) bool {
		p, ok := e.(client.PathEvent)
		return ok && p.Peer == "alice" && p.Path == client.PathDirect
	})

	if err := alice.SendTyping(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if from := typingFrom(t, bob); from != "alice" {
		t.Fatalf("bob sees %s typing", from)
	}
	if err := bob.SendTyping(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if from := typingFrom(t, alice); from != "bob" {
		t.Fatalf("alice sees %s typing", from)
	}
	if n := metricValue(t, inst, "natter_typing_total"); n != 0 {
		t.Fatalf("natter_typing_total = %v: natterd relayed typing while a channel was up", n)
	}
}
