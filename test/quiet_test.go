package test

import (
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// quietLogin logs user in on a new connection as a quiet session (device:
// a new one unless given) and reads its login burst.
func quietLogin(t *testing.T, in *servertest.Instance, user string, device natter.DeviceID) *raw {
	t.Helper()
	r := hello(t, in)
	if device == "" {
		device = natter.NewDeviceID()
	}
	r.device = device
	a := r.call(wire.Login{User: natter.UserID(user), Password: "password-" + user, Device: device, Quiet: true}, wire.TAuthed).(*wire.Authed)
	r.user, r.token = a.User, a.Token
	r.drainLogin()
	r.barrier() // the server handled the Login whole (it tells contacts last)
	return r
}

// noPresence fails if any Presence frame reached r before a barrier.
func noPresence(t *testing.T, r *raw, when string) {
	t.Helper()
	for _, v := range r.barrier() {
		if p, ok := v.(*wire.Presence); ok {
			t.Errorf("%s: %s got %+v", when, r.user, p)
		}
	}
}

// TestQuietSession: a quiet session (a one-shot command's) is a full
// session for requests and pushes, but does not count for presence: a
// contact watching sees no presence change when it starts or ends, sees
// the user offline with the last seen of their last real session, and is
// told the recipient is offline when sending to them; messages still reach
// it live. It takes no connection info. Its status text is kept like any
// other; contacts of a user who is offline see the new text (and the same
// last seen) at once.
func TestQuietSession(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	befriend(t, a, b)

	a.call(wire.Logout{}, wire.TOK)
	a.closed(5 * time.Second)
	gone := b.expect(wire.TPresence).(*wire.Presence)
	if gone.Status != natter.StatusOffline || gone.LastSeen.IsZero() {
		t.Fatalf("bob sees %+v when alice logs out", gone)
	}

	// Last seen is when alice's real session ended, before this.
	quietFrom := time.Now()
	lastSeenBefore := func(where string, c wire.Contact) {
		t.Helper()
		if c.Status != natter.StatusOffline || c.LastSeen.IsZero() || !c.LastSeen.Before(quietFrom) {
			t.Fatalf("%s: %+v while alice has only quiet sessions; want offline, last seen before %v (her real session's end)", where, c, quietFrom)
		}
	}
	q := quietLogin(t, in, "alice", "")
	noPresence(t, b, "a quiet session started")
	cs := b.call(wire.ListContacts{}, wire.TContacts).(*wire.Contacts)
	lastSeenBefore("bob's contact list", contactOf(t, cs, "alice"))

	// Messages reach the quiet session live; the sender is told alice is
	// offline (the message waits for her real devices too).
	ack := sendMsg(t, b, "alice", "for the script")
	if ack.Online {
		t.Fatalf("SendAck %+v says alice is online: she has only a quiet session", ack)
	}
	if m := q.expect(wire.TMsg).(*wire.Msg); m.ID != ack.ID {
		t.Fatalf("the quiet session got %+v, want message %s", m, ack.ID)
	}

	// No connection info: contacts are never to dial it.
	cands := []natter.Candidate{{Type: "host", Proto: "udp", Addr: "192.0.2.1:5000"}}
	if _, err := q.try(wire.SetReach{Candidates: cands}, wire.TOK); errCode(err) != wire.CodeBadRequest {
		t.Fatalf("SetReach on a quiet session: %v, want bad_request", err)
	}

	// A status set from the quiet session: the text is kept; bob sees it
	// with alice still offline, last seen unchanged.
	q.call(wire.SetPresence{Status: natter.StatusBusy, Text: "set by a script"}, wire.TOK)
	q.barrier() // the server answers before it tells contacts
	var seen []*wire.Presence
	for _, v := range b.barrier() {
		if p, ok := v.(*wire.Presence); ok {
			seen = append(seen, p)
		}
	}
	if len(seen) != 1 || seen[0].Text != "set by a script" {
		t.Fatalf("bob saw %+v after a quiet SetPresence; want one Presence with the new text", seen)
	}
	lastSeenBefore("bob's Presence after a quiet SetPresence", wire.Contact{Status: seen[0].Status, LastSeen: seen[0].LastSeen})
	// The same again changes nothing bob sees.
	q.call(wire.SetPresence{Status: natter.StatusAway, Text: "set by a script"}, wire.TOK)
	q.barrier()
	noPresence(t, b, "a quiet SetPresence that changes nothing contacts see")

	q.call(wire.Logout{}, wire.TOK)
	q.closed(5 * time.Second) // the server cleans up before it closes
	noPresence(t, b, "a quiet session ended")
	cs = b.call(wire.ListContacts{}, wire.TContacts).(*wire.Contacts)
	c := contactOf(t, cs, "alice")
	lastSeenBefore("bob's contact list after the quiet session", c)
	if c.Text != "set by a script" {
		t.Fatalf("bob's contact list shows %+v; want the text kept from the quiet session", c)
	}

	// Beside a real session: the quiet one comes and goes unseen.
	a2 := login(t, in, "alice", "")
	a2.drainLogin()
	if p := b.expect(wire.TPresence).(*wire.Presence); p.Status != natter.StatusOnline {
		t.Fatalf("bob sees %+v when alice's real session starts", p)
	}
	q2 := quietLogin(t, in, "alice", "")
	noPresence(t, b, "a quiet session started beside a real one")
	if ack := sendMsg(t, b, "alice", "to both"); !ack.Online {
		t.Fatalf("SendAck %+v: alice has a real session online", ack)
	}
	q2.call(wire.Logout{}, wire.TOK)
	q2.closed(5 * time.Second)
	noPresence(t, b, "a quiet session ended beside a real one")
	a2.call(wire.Logout{}, wire.TOK)
	a2.closed(5 * time.Second)
	if p := b.expect(wire.TPresence).(*wire.Presence); p.Status != natter.StatusOffline || !p.LastSeen.After(quietFrom) {
		t.Fatalf("bob sees %+v when alice's real session ends", p)
	}
}

// TestQuietReplacesRealSession: a quiet login of a device whose real
// session is still registered (its process was killed, its connection has
// not timed out) replaces it, and contacts see the user go offline, since
// that real session is over; nor can they dial the device any more.
func TestQuietReplacesRealSession(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	befriend(t, a, b)
	cands := []natter.Candidate{{Type: "host", Proto: "udp", Addr: "192.0.2.1:5000"}}
	a.call(wire.SetReach{Candidates: cands}, wire.TOK)
	if r := b.expect(wire.TReach).(*wire.Reach); len(r.Candidates) == 0 {
		t.Fatalf("bob got %+v", r)
	}

	q := quietLogin(t, in, "alice", a.device)
	if bye := a.closed(5 * time.Second); bye == nil || bye.Code != wire.CodeReplaced {
		t.Fatalf("the replaced connection got %+v, want Bye replaced", bye)
	}
	var presence []*wire.Presence
	withdrawn := false
	for _, v := range b.barrier() {
		switch v := v.(type) {
		case *wire.Presence:
			presence = append(presence, v)
		case *wire.Reach:
			withdrawn = withdrawn || v.Device == a.device && len(v.Candidates) == 0
		}
	}
	if len(presence) != 1 || presence[0].Status != natter.StatusOffline || presence[0].LastSeen.IsZero() {
		t.Fatalf("bob saw %+v when a quiet session replaced alice's only real one; want one Presence: offline, last seen", presence)
	}
	if !withdrawn {
		t.Fatal("bob was not told that alice's device can no longer be reached")
	}
	q.call(wire.Logout{}, wire.TOK)
	q.closed(5 * time.Second)
	noPresence(t, b, "the quiet session ended")
}
