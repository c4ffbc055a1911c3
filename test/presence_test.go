package test

import (
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// barrier does a Ping round trip and returns every frame that arrived
// before its Pong (those read earlier and kept for later too). The server
// handles a connection's frames in order and queues its pushes in order, so
// whatever the server had pushed to r when the Ping was read is among them.
func (r *raw) barrier() []any {
	r.t.Helper()
	got := r.queue
	r.queue = nil
	r.ref++
	ref := r.ref
	r.send(wire.Ping{Ref: ref})
	for {
		v := r.next()
		if p, ok := v.(*wire.Pong); ok && p.Ref == ref {
			return got
		}
		got = append(got, v)
	}
}

// contactOf returns user's row in a contact list.
func contactOf(t *testing.T, cs *wire.Contacts, user natter.UserID) wire.Contact {
	t.Helper()
	for _, c := range cs.Contacts {
		if c.User == user {
			return c
		}
	}
	t.Fatalf("%s is not in the contact list %+v", user, cs.Contacts)
	return wire.Contact{}
}

// wantOffline checks that c shows user offline, last seen, with text.
func wantOffline(t *testing.T, where string, c wire.Contact, text string) {
	t.Helper()
	if c.State != natter.ContactApproved || c.Status != natter.StatusOffline || c.LastSeen.IsZero() || c.Text != text {
		t.Errorf("%s: %+v; want approved, offline, last seen, text %q", where, c, text)
	}
}

// TestStatusTextKeptWhenOffline: the status text a user set stays visible
// to their approved contacts, with last seen, once their last session has
// ended: in the Presence push, in the contact list, at the contacts' next
// login, to a contact approved while the user is offline, after a later
// session that set no text, and after natterd restarts. Setting an empty
// text clears it.
func TestStatusTextKeptWhenOffline(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	c := signup(t, in, "carol")
	befriend(t, a, b)
	// alice asks carol, who accepts once alice has gone.
	a.call(wire.ContactOp{Op: natter.OpAdd, User: "carol"}, wire.TOK)
	c.expect(wire.TContactUpdate)

	a.call(wire.SetPresence{Status: natter.StatusAway, Text: "at lunch"}, wire.TOK)
	if p := b.expect(wire.TPresence).(*wire.Presence); p.Status != natter.StatusAway || p.Text != "at lunch" {
		t.Fatalf("bob sees %+v while alice is away", p)
	}
	a.call(wire.Logout{}, wire.TOK)
	a.closed(5 * time.Second)

	p := b.expect(wire.TPresence).(*wire.Presence)
	if p.User != "alice" || p.Status != natter.StatusOffline || p.LastSeen.IsZero() || p.Text != "at lunch" {
		t.Fatalf("bob sees %+v when alice logs out; want offline, last seen, %q", p, "at lunch")
	}
	seen := p.LastSeen

	// A contact approved while alice is offline sees the same.
	c.call(wire.ContactOp{Op: natter.OpAccept, User: "alice"}, wire.TOK)
	u := c.expect(wire.TContactUpdate).(*wire.ContactUpdate)
	wantOffline(t, "carol's update when she accepts", u.Contact, "at lunch")

	// A later session that sets no text leaves the kept one as it is.
	a2 := login(t, in, "alice", "")
	a2.drainLogin()
	if p := b.expect(wire.TPresence).(*wire.Presence); p.Status != natter.StatusOnline || p.Text != "" {
		t.Fatalf("bob sees %+v when alice is back without a text", p)
	}
	a2.call(wire.Logout{}, wire.TOK)
	a2.closed(5 * time.Second)
	p = b.expect(wire.TPresence).(*wire.Presence)
	if p.Status != natter.StatusOffline || p.Text != "at lunch" || !p.LastSeen.After(seen) {
		t.Fatalf("bob sees %+v after alice's second session; want offline, %q, last seen after %v", p, "at lunch", seen)
	}

	look := func(t *testing.T, when, text string) {
		t.Helper()
		for _, who := range []string{"bob", "carol"} {
			r := login(t, in, who, "")
			cs, _ := r.drainLogin()
			wantOffline(t, when+": "+who+"'s contact list at login", contactOf(t, cs, "alice"), text)
			cs = r.call(wire.ListContacts{}, wire.TContacts).(*wire.Contacts)
			wantOffline(t, when+": "+who+"'s contact list asked for", contactOf(t, cs, "alice"), text)
			r.call(wire.Logout{}, wire.TOK)
		}
	}
	look(t, "before the restart", "at lunch")

	in.Restart()
	look(t, "after the restart", "at lunch")

	// An empty text clears it.
	a3 := login(t, in, "alice", "")
	a3.drainLogin()
	a3.call(wire.SetPresence{Status: natter.StatusOnline, Text: ""}, wire.TOK)
	a3.call(wire.Logout{}, wire.TOK)
	a3.closed(5 * time.Second)
	look(t, "after clearing", "")
}

// TestStatusTextSurvivesSIGKILL: the text is kept when it is set, not when
// the user's session ends, so a natterd killed with SIGKILL (no session
// ends cleanly) still shows it after the restart.
func TestStatusTextSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills natterd")
	}
	dir := t.TempDir()
	p := startProc(t, dir, "127.0.0.1:0")
	a := p.signup(t, "alice")
	b := p.signup(t, "bob")
	befriend(t, a, b)
	a.call(wire.SetPresence{Status: natter.StatusBusy, Text: "in a meeting"}, wire.TOK)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()

	p = startProc(t, dir, "127.0.0.1:0")
	r := p.hello(t)
	r.call(wire.Login{User: "bob", Password: "password-bob", Device: b.device}, wire.TAuthed)
	cs, _ := r.drainLogin()
	if c := contactOf(t, cs, "alice"); c.Status != natter.StatusOffline || c.Text != "in a meeting" {
		t.Fatalf("bob sees %+v after natterd was killed; want offline, %q", c, "in a meeting")
	}
}

// TestPresenceOnlyToApprovedContacts: a user's presence (status, text,
// last seen) reaches approved contacts and nobody else: not users with a
// request pending either way, not a contact who was removed (by either
// side), not a user blocked by them or blocking them, not a stranger.
// Each check reads everything the observer was sent up to a Ping round
// trip made after the server has pushed the presence.
func TestPresenceOnlyToApprovedContacts(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	friend := signup(t, in, "friend") // approved: the control, who must see each change

	type observer struct {
		name  string
		setup func(t *testing.T, o *raw) // from no relationship to the one tested
		state natter.ContactState        // the observer's row for alice afterwards
	}
	observers := []observer{
		{"pending-in", func(t *testing.T, o *raw) { // alice asked them
			a.call(wire.ContactOp{Op: natter.OpAdd, User: o.user}, wire.TOK)
			o.expect(wire.TContactUpdate)
		}, natter.ContactPendingIn},
		{"pending-out", func(t *testing.T, o *raw) { // they asked alice
			o.call(wire.ContactOp{Op: natter.OpAdd, User: "alice"}, wire.TOK)
			a.expect(wire.TContactUpdate)
		}, natter.ContactPendingOut},
		{"removed-by-alice", func(t *testing.T, o *raw) {
			befriend(t, a, o)
			a.call(wire.ContactOp{Op: natter.OpRemove, User: o.user}, wire.TOK)
			if u := o.expect(wire.TContactUpdate).(*wire.ContactUpdate); u.User != "alice" || u.State != natter.ContactNone {
				t.Fatalf("%s after alice removed them: %+v", o.user, u)
			}
			for {
				if u := a.expect(wire.TContactUpdate).(*wire.ContactUpdate); u.User == o.user {
					if u.State != natter.ContactNone {
						t.Fatalf("alice after removing %s: %+v", o.user, u)
					}
					break
				}
			}
		}, natter.ContactNone},
		{"removed-alice", func(t *testing.T, o *raw) {
			befriend(t, a, o)
			o.call(wire.ContactOp{Op: natter.OpRemove, User: "alice"}, wire.TOK)
			if u := o.expect(wire.TContactUpdate).(*wire.ContactUpdate); u.User != "alice" || u.State != natter.ContactNone {
				t.Fatalf("%s after removing alice: %+v", o.user, u)
			}
			for {
				if u := a.expect(wire.TContactUpdate).(*wire.ContactUpdate); u.User == o.user {
					if u.State != natter.ContactNone {
						t.Fatalf("alice after %s removed her: %+v", o.user, u)
					}
					break
				}
			}
		}, natter.ContactNone},
		{"blocked-by-alice", func(t *testing.T, o *raw) {
			befriend(t, a, o)
			a.call(wire.ContactOp{Op: natter.OpBlock, User: o.user}, wire.TOK)
			o.expect(wire.TContactUpdate)
		}, natter.ContactNone},
		{"blocking-alice", func(t *testing.T, o *raw) {
			befriend(t, a, o)
			o.call(wire.ContactOp{Op: natter.OpBlock, User: "alice"}, wire.TOK)
			a.expect(wire.TContactUpdate)
		}, natter.ContactBlocked},
		{"stranger", func(t *testing.T, o *raw) {}, natter.ContactNone},
	}
	befriend(t, a, friend)
	obs := make([]*raw, len(observers))
	for i, ob := range observers {
		obs[i] = signup(t, in, ob.name)
		ob.setup(t, obs[i])
	}
	// What each observer was sent while being set up is not under test.
	for _, o := range obs {
		o.barrier()
	}
	a.barrier()
	friend.barrier()

	// noPresence checks that no observer was sent anything about alice's
	// presence, once alice's change has been pushed.
	noPresence := func(t *testing.T, change string) {
		t.Helper()
		for i, o := range obs {
			for _, v := range o.barrier() {
				switch f := v.(type) {
				case *wire.Presence:
					if f.User == "alice" {
						t.Errorf("%s: %s was sent alice's presence %+v", change, observers[i].name, f)
					}
				case *wire.ContactUpdate:
					if f.User == "alice" {
						t.Errorf("%s: %s was sent a contact update about alice %+v", change, observers[i].name, f)
					}
				}
			}
		}
	}
	// friendSees checks the control: the approved contact sees the change.
	friendSees := func(t *testing.T, status natter.Status, text string) {
		t.Helper()
		p := friend.expect(wire.TPresence).(*wire.Presence)
		if p.User != "alice" || p.Status != status || p.Text != text {
			t.Fatalf("friend sees %+v; want %s %q", p, status, text)
		}
	}

	// 1. A new status and text: pushed before alice's next Ping is answered.
	a.call(wire.SetPresence{Status: natter.StatusBusy, Text: "secret plans"}, wire.TOK)
	a.barrier()
	friendSees(t, natter.StatusBusy, "secret plans")
	noPresence(t, "status set")

	// 2. Offline, with last seen: natterd closes alice's connection only
	// after it has told her contacts.
	a.call(wire.Logout{}, wire.TOK)
	a.closed(5 * time.Second)
	friendSees(t, natter.StatusOffline, "secret plans")
	noPresence(t, "logout")

	// No contact list shows presence, a status text or last seen for
	// alice, except the friend's.
	for i, ob := range observers {
		r := login(t, in, ob.name, "")
		cs, _ := r.drainLogin()
		row := wire.Contact{User: "alice"} // ContactNone: no row
		for _, c := range cs.Contacts {
			if c.User == "alice" {
				row = c
			}
		}
		if row != (wire.Contact{User: "alice", State: ob.state}) {
			t.Errorf("%s's contact list at login shows %+v for alice; want state %q and no presence", ob.name, row, ob.state)
		}
		r.call(wire.Logout{}, wire.TOK)
		obs[i].barrier()
	}

	// 3. Online again: pushed before the new connection's Ping is answered.
	a = login(t, in, "alice", "")
	a.drainLogin()
	a.barrier()
	friendSees(t, natter.StatusOnline, "")
	noPresence(t, "login")
}
