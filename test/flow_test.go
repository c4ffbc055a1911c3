package test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// befriend makes a and b approved contacts.
func befriend(t *testing.T, a, b *raw) {
	t.Helper()
	a.call(wire.ContactOp{Op: natter.OpAdd, User: b.user}, wire.TOK)
	u := b.expect(wire.TContactUpdate).(*wire.ContactUpdate)
	if u.User != a.user || u.State != natter.ContactPendingIn {
		t.Fatalf("%s should see a request from %s, got %+v", b.user, a.user, u)
	}
	b.call(wire.ContactOp{Op: natter.OpAccept, User: a.user}, wire.TOK)
	for _, r := range []*raw{a, b} {
		for {
			u := r.expect(wire.TContactUpdate).(*wire.ContactUpdate)
			if u.State == natter.ContactApproved {
				break
			}
		}
	}
}

func sendMsg(t *testing.T, from *raw, to natter.UserID, body string) *wire.SendAck {
	t.Helper()
	return from.call(wire.Send{ID: natter.NewMessageID(time.Now()), To: to, Body: []byte(body)}, wire.TSendAck).(*wire.SendAck)
}

func TestSignupLoginResume(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")

	// Taken and invalid names get clear errors.
	r := hello(t, in)
	for _, tc := range []struct {
		user string
		code wire.Code
	}{
		{"alice", wire.CodeUserExists},
		{"Al", wire.CodeInvalidName},
		{"9lives", wire.CodeInvalidName},
		{"bad name", wire.CodeInvalidName},
	} {
		_, err := r.try(wire.Signup{User: natter.UserID(tc.user), Password: "long enough", Device: "d1"}, wire.TAuthed)
		if errCode(err) != tc.code {
			t.Errorf("signup %q: %v, want %s", tc.user, err, tc.code)
		}
	}
	_, err := r.try(wire.Signup{User: "shortpw", Password: "short", Device: "d1"}, wire.TAuthed)
	if errCode(err) != wire.CodeBadRequest {
		t.Errorf("short password: %v", err)
	}

	// Resume with the token: no password.
	r2 := hello(t, in)
	au := r2.call(wire.Resume{Token: a.token}, wire.TAuthed).(*wire.Authed)
	if au.User != "alice" || au.Device != a.device {
		t.Fatalf("resume: %+v", au)
	}
	// Logout ends the token for everyone.
	r2.call(wire.Logout{}, wire.TOK)
	if b := r2.closed(5 * time.Second); b == nil || b.Code != wire.CodeLoggedOut {
		t.Fatalf("after logout: bye %+v", b)
	}
	r3 := hello(t, in)
	if _, err := r3.try(wire.Resume{Token: a.token}, wire.TAuthed); errCode(err) != wire.CodeSessionExpired {
		t.Fatalf("resume after logout: %v", err)
	}
	if _, err := r3.try(wire.Resume{Token: "made-up"}, wire.TAuthed); errCode(err) != wire.CodeSessionExpired {
		t.Fatalf("resume with a made-up token: %v", err)
	}
}

func TestWrongPasswordBackoff(t *testing.T) {
	in := servertest.Start(t)
	signup(t, in, "alice")
	r := hello(t, in)
	_, err := r.try(wire.Login{User: "alice", Password: "wrong-password", Device: "d1"}, wire.TAuthed)
	var first int64
	if e, ok := err.(*wire.Err); !ok || e.Code != wire.CodeBadCredentials || e.RetryAfter <= 0 {
		t.Fatalf("wrong password: %v", err)
	} else {
		first = e.RetryAfter
	}
	// Trying again at once is refused without checking the password.
	_, err = r.try(wire.Login{User: "alice", Password: "password-alice", Device: "d1"}, wire.TAuthed)
	if errCode(err) != wire.CodeRateLimited {
		t.Fatalf("immediate retry: %v", err)
	}
	// After the wait, another wrong password doubles the back-off.
	time.Sleep(time.Duration(first)*time.Millisecond + 50*time.Millisecond)
	_, err = r.try(wire.Login{User: "alice", Password: "wrong-again", Device: "d1"}, wire.TAuthed)
	if e, ok := err.(*wire.Err); !ok || e.Code != wire.CodeBadCredentials || e.RetryAfter <= first {
		t.Fatalf("second wrong password: %v (first back-off %d ms)", err, first)
	}
	// Unknown users get the same answer as a wrong password.
	r2 := hello(t, in)
	if _, err := r2.try(wire.Login{User: "nobody", Password: "whatever1", Device: "d1"}, wire.TAuthed); errCode(err) != wire.CodeBadCredentials {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestContactsAndPresence(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	c := signup(t, in, "carol")

	if _, err := a.try(wire.ContactOp{Op: natter.OpAdd, User: "nobody"}, wire.TOK); errCode(err) != wire.CodeNoSuchUser {
		t.Fatalf("add unknown: %v", err)
	}
	if _, err := a.try(wire.ContactOp{Op: natter.OpAccept, User: "carol"}, wire.TOK); errCode(err) != wire.CodeNoRequest {
		t.Fatalf("accept without request: %v", err)
	}
	// carol asks alice; alice refuses.
	c.call(wire.ContactOp{Op: natter.OpAdd, User: "alice"}, wire.TOK)
	a.expect(wire.TContactUpdate)
	if u := c.expect(wire.TContactUpdate).(*wire.ContactUpdate); u.State != natter.ContactPendingOut {
		t.Fatalf("carol's own devices after her request: %+v", u)
	}
	a.call(wire.ContactOp{Op: natter.OpRefuse, User: "carol"}, wire.TOK)
	if u := c.expect(wire.TContactUpdate).(*wire.ContactUpdate); u.State != natter.ContactNone {
		t.Fatalf("carol after refusal: %+v", u)
	}

	befriend(t, a, b)
	// Presence changes reach approved contacts only.
	b.call(wire.SetPresence{Status: natter.StatusAway, Text: "at lunch"}, wire.TOK)
	p := a.expect(wire.TPresence).(*wire.Presence)
	if p.User != "bob" || p.Status != natter.StatusAway || p.Text != "at lunch" {
		t.Fatalf("alice sees %+v", p)
	}
	// The contact list carries presence.
	cs := a.call(wire.ListContacts{}, wire.TContacts).(*wire.Contacts)
	if len(cs.Contacts) != 1 || cs.Contacts[0].User != "bob" || cs.Contacts[0].Status != natter.StatusAway {
		t.Fatalf("contacts: %+v", cs.Contacts)
	}
	// Logout: alice is told at once, with last seen.
	b.call(wire.Logout{}, wire.TOK)
	p = a.expect(wire.TPresence).(*wire.Presence)
	if p.Status != natter.StatusOffline || p.LastSeen.IsZero() {
		t.Fatalf("after bob's logout alice sees %+v", p)
	}
	// carol, not a contact, heard nothing of bob.
	if v, err := c.read(300 * time.Millisecond); err == nil {
		t.Fatalf("carol got %T %+v", v, v)
	}

	// Block: bob learns nothing more of alice.
	b = login(t, in, "bob", "")
	cts, _ := b.drainLogin()
	if len(cts.Contacts) != 1 || cts.Contacts[0].Status != natter.StatusOnline {
		t.Fatalf("bob's contacts at login: %+v", cts)
	}
	a.expect(wire.TPresence) // bob online
	a.call(wire.ContactOp{Op: natter.OpBlock, User: "bob"}, wire.TOK)
	if u := a.expect(wire.TContactUpdate).(*wire.ContactUpdate); u.User != "bob" || u.State != natter.ContactBlocked {
		t.Fatalf("alice's own devices after blocking: %+v", u)
	}
	if u := b.expect(wire.TContactUpdate).(*wire.ContactUpdate); u.State != natter.ContactNone {
		t.Fatalf("bob after block: %+v", u)
	}
	a.call(wire.SetPresence{Status: natter.StatusBusy, Text: "secret"}, wire.TOK)
	if v, err := b.read(300 * time.Millisecond); err == nil {
		t.Fatalf("blocked bob got %T %+v", v, v)
	}
	if _, err := b.try(wire.Send{ID: "m1", To: "alice", Body: []byte("hi")}, wire.TSendAck); errCode(err) != wire.CodeNotContact {
		t.Fatalf("send to blocker: %v", err)
	}
	// bob's request to alice stays pending on his side; alice is not told.
	b.call(wire.ContactOp{Op: natter.OpAdd, User: "alice"}, wire.TOK)
	if v, err := a.read(300 * time.Millisecond); err == nil {
		if u, ok := v.(*wire.ContactUpdate); ok && u.User == "bob" {
			t.Fatalf("alice heard of blocked bob's request: %+v", u)
		}
	}
	// Remove ends a relationship on both sides.
	a.call(wire.ContactOp{Op: natter.OpUnblock, User: "bob"}, wire.TOK)
	if _, err := c.try(wire.ContactOp{Op: natter.OpRemove, User: "alice"}, wire.TOK); errCode(err) != wire.CodeNotContact {
		t.Fatalf("remove a non-contact: %v", err)
	}
}

func TestMessagesOnlineOfflineMultiDevice(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	c := signup(t, in, "carol")
	befriend(t, a, b)
	befriend(t, c, b)
	befriend(t, a, c)

	// Online: delivered with conversation sequence numbers in order.
	for i := 1; i <= 3; i++ {
		ack := sendMsg(t, a, "bob", "hello "+string(rune('0'+i)))
		if ack.ConvSeq != uint64(i) || !ack.Online {
			t.Fatalf("ack %d: %+v", i, ack)
		}
		m := b.expect(wire.TMsg).(*wire.Msg)
		if m.ConvSeq != uint64(i) || m.From != "alice" || string(m.Body) != "hello "+string(rune('0'+i)) {
			t.Fatalf("bob got %+v", m)
		}
		b.send(wire.Ack{Upto: m.Seq})
	}
	// Receipts reach the sender.
	b.call(wire.Receipt{Peer: "alice", Upto: 3, State: natter.ReceiptRead}, wire.TOK)
	rc := a.expect(wire.TRcpt).(*wire.Rcpt)
	if rc.From != "bob" || rc.Upto != 3 || rc.State != natter.ReceiptRead {
		t.Fatalf("receipt %+v", rc)
	}

	// Offline: stored, the sender told, delivered at next login grouped by sender.
	b.call(wire.Logout{}, wire.TOK)
	b.closed(5 * time.Second)
	send := func(r *raw, body string) {
		if ack := sendMsg(t, r, "bob", body); ack.Online {
			t.Fatalf("bob is offline but ack says online: %+v", ack)
		}
	}
	send(a, "a1")
	send(c, "c1")
	send(a, "a2")
	send(c, "c2")
	b2 := login(t, in, "bob", b.device)
	_, inbox := b2.drainLogin()
	var groups []wire.InboxGroup
	for _, f := range inbox {
		groups = append(groups, f.Groups...)
	}
	want := map[natter.UserID][]string{"alice": {"a1", "a2"}, "carol": {"c1", "c2"}}
	seen := map[natter.UserID]bool{}
	for _, g := range groups {
		if len(g.Messages) == 0 {
			continue
		}
		if seen[g.From] {
			t.Fatalf("sender %s in two groups: %+v", g.From, groups)
		}
		seen[g.From] = true
		var got []string
		for _, m := range g.Messages {
			got = append(got, string(m.Body))
		}
		if w := want[g.From]; len(w) != len(got) || w[0] != got[0] || w[1] != got[1] {
			t.Fatalf("group %s: %v, want %v", g.From, got, w)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("groups: %+v", groups)
	}
	// Acknowledged, they do not come again.
	b2.send(wire.Ack{Upto: inbox[len(inbox)-1].Through})
	b2.call(wire.Ping{}, wire.TPong) // the ack is processed before the ping
	b3 := login(t, in, "bob", b.device)
	_, again := b3.drainLogin()
	for _, f := range again {
		for _, g := range f.Groups {
			if len(g.Messages) > 0 {
				t.Fatalf("redelivered after ack: %+v", g)
			}
		}
	}

	// Multi-device: a second device of bob gets every message, and what bob
	// sends from one device reaches the other.
	b4 := login(t, in, "bob", "")
	b4.drainLogin()
	sendMsg(t, a, "bob", "to both")
	for _, r := range []*raw{b3, b4} {
		if m := r.expect(wire.TMsg).(*wire.Msg); string(m.Body) != "to both" {
			t.Fatalf("device got %+v", m)
		}
	}
	sendMsg(t, b3, "alice", "from device 3")
	if m := b4.expect(wire.TMsg).(*wire.Msg); string(m.Body) != "from device 3" || m.From != "bob" || m.To != "alice" {
		t.Fatalf("other device got %+v", m)
	}
	// alice's connection also holds the copies of her own messages (every
	// device of the sender gets each message, the sending one included).
	for {
		m := a.expect(wire.TMsg).(*wire.Msg)
		if m.From == "bob" {
			if string(m.Body) != "from device 3" {
				t.Fatalf("alice got %+v", m)
			}
			break
		}
	}
}

func TestIdempotentSendAndGapFill(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	befriend(t, a, b)
	id := natter.NewMessageID(time.Now())
	first := a.call(wire.Send{ID: id, To: "bob", Body: []byte("once")}, wire.TSendAck).(*wire.SendAck)
	again := a.call(wire.Send{ID: id, To: "bob", Body: []byte("once")}, wire.TSendAck).(*wire.SendAck)
	if first.ConvSeq != again.ConvSeq || first.ID != again.ID {
		t.Fatalf("retry stored twice: %+v vs %+v", first, again)
	}
	next := sendMsg(t, a, "bob", "second")
	if next.ConvSeq != first.ConvSeq+1 {
		t.Fatalf("sequence after a retry: %d", next.ConvSeq)
	}
	hist := b.call(wire.History{Peer: "alice"}, wire.TMessages).(*wire.Messages)
	if len(hist.Messages) != 2 || string(hist.Messages[0].Body) != "once" || hist.Messages[1].ConvSeq != 2 {
		t.Fatalf("history: %+v", hist.Messages)
	}
	part := b.call(wire.History{Peer: "alice", After: 1}, wire.TMessages).(*wire.Messages)
	if len(part.Messages) != 1 || part.Messages[0].ConvSeq != 2 {
		t.Fatalf("history after 1: %+v", part.Messages)
	}
	// Sync replays inbox entries after a point.
	inb := b.call(wire.Sync{After: 0}, wire.TInbox).(*wire.Inbox)
	n := 0
	for _, g := range inb.Groups {
		n += len(g.Messages)
	}
	if n < 2 {
		t.Fatalf("sync: %+v", inb)
	}
}

func TestConnectionInfoLivesInMemoryOnly(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	befriend(t, a, b)
	cands := []natter.Candidate{{Type: "host", Proto: "udp", Addr: "192.0.2.77:40123"}, {Type: "srflx", Proto: "udp", Addr: "198.51.100.9:51234"}}
	b.call(wire.SetReach{Candidates: cands}, wire.TOK)
	r := a.expect(wire.TReach).(*wire.Reach)
	if r.User != "bob" || r.Device != b.device || len(r.Candidates) != 2 || r.Candidates[1].Addr != "198.51.100.9:51234" {
		t.Fatalf("alice got %+v", r)
	}
	// A device logging in later gets it with the login burst.
	a2 := login(t, in, "alice", "")
	if r := a2.expect(wire.TReach).(*wire.Reach); r.User != "bob" || len(r.Candidates) != 2 {
		t.Fatalf("login burst reach: %+v", r)
	}
	if _, err := b.try(wire.SetReach{Candidates: []natter.Candidate{{Addr: "no port"}}}, wire.TOK); errCode(err) != wire.CodeBadRequest {
		t.Fatalf("bad candidate: %v", err)
	}
	// Logout withdraws it.
	b.call(wire.Logout{}, wire.TOK)
	if r := a.expect(wire.TReach).(*wire.Reach); r.User != "bob" || len(r.Candidates) != 0 {
		t.Fatalf("after logout: %+v", r)
	}
	// Never written to disk.
	in.Stop()
	files, _ := filepath.Glob(filepath.Join(in.DataDir, "*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if bytes.Contains(data, []byte("198.51.100.9")) || bytes.Contains(data, []byte("192.0.2.77")) {
			t.Errorf("connection info found on disk in %s", f)
		}
	}
}

// TestKeepaliveDropsSilentClient: a client silent for the keepalive is
// told so and dropped, and its contacts see it offline. The users sign up
// and befriend each other under the default keepalive (a signup's hashing
// may take longer than the short one under load), then come back to a
// natterd restarted with a 700 ms keepalive, resuming with their tokens
// (no hashing).
func TestKeepaliveDropsSilentClient(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	befriend(t, a, b)
	in.Config.Keepalive = 700 * time.Millisecond
	in.Restart()
	resume := func(old *raw) *raw {
		r := hello(t, in)
		au := r.call(wire.Resume{Token: old.token}, wire.TAuthed).(*wire.Authed)
		r.user, r.device, r.token = au.User, au.Device, old.token
		r.drainLogin()
		return r
	}
	a = resume(a)
	// alice keeps pinging; bob says nothing once he has resumed.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				b, _ := wire.Encode(wire.Ping{})
				a.c.Write(b)
			}
		}
	}()
	b = resume(b)
	start := time.Now()
	if bye := b.closed(5 * time.Second); bye == nil || bye.Code != wire.CodeTimeout ||
		bye.Message != "no frame within the keepalive timeout (700ms)" {
		t.Fatalf("silent bob: bye %+v; want timeout, saying which", bye)
	}
	for {
		p := a.expect(wire.TPresence).(*wire.Presence)
		if p.User == "bob" && p.Status == natter.StatusOffline {
			break
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("offline after %v", d)
	}
}

// TestCursorSavedAtDisconnect: acknowledgements kept in memory between
// store writes are written when the connection ends, so the next login of
// the device gets nothing again.
func TestCursorSavedAtDisconnect(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	befriend(t, a, b)
	var last uint64
	for i := range 5 {
		sendMsg(t, a, "bob", fmt.Sprint("m", i))
		m := b.expect(wire.TMsg).(*wire.Msg)
		b.send(wire.Ack{Upto: m.Seq}) // the later ones are kept in memory
		last = m.Seq
	}
	b.call(wire.Ping{}, wire.TPong)
	b.c.Close() // no logout: the connection just ends
	deadline := time.Now().Add(5 * time.Second)
	for {
		b2 := login(t, in, "bob", b.device)
		_, inbox := b2.drainLogin()
		n := 0
		for _, f := range inbox {
			for _, g := range f.Groups {
				n += len(g.Messages)
			}
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages up to seq %d delivered again after they were acknowledged", n, last)
		}
		b2.c.Close()
		time.Sleep(100 * time.Millisecond) // the old connection may still be closing
	}
}
