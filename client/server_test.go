package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/server"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// Integration tests: the SDK against a real natterd (real TLS, real SQLite
// in a temporary folder), started by internal/servertest.

const testPassword = "correct horse battery staple"

// startServer starts a natterd for a test, with all its listeners (the
// HTTPS one once raced with the TLS listener over a shared *tls.Config;
// running it here keeps that fixed).
func startServer(t *testing.T) *servertest.Instance {
	return servertest.Start(t)
}

// user is one logged-in Client of a test, with its events.
type user struct {
	*client.Client
	name natter.UserID
	dev  natter.DeviceID
	ev   *events
	sess client.Session
}

// dialServer connects a Client for device dev to inst.
func dialServer(t *testing.T, inst *servertest.Instance, dev natter.DeviceID, mod ...func(*client.Options)) *client.Client {
	t.Helper()
	o := client.Options{
		Addr:         inst.Addr,
		TLSConfig:    inst.ClientTLS(),
		Device:       dev,
		ClientName:   "client-test",
		ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 200 * time.Millisecond,
	}
	for _, m := range mod {
		m(&o)
	}
	c, err := client.Dial(t.Context(), o)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testKeys holds the end-to-end keys of the tests' devices, as a device
// keeps them across restarts, and each user's identity key, which a test
// hands to the user's later devices (as if provisioned from the first;
// TestApproveDevice covers approval). Keyed by the server's data folder,
// which is the same across a restart of that server and never the same
// for two tests (an address can be: a later test handed the same port once
// got the keyring TestDirectChannelBoundToDeviceKeys had given a wrong
// certificate on purpose, and its channel was refused).
var testKeys sync.Map // "data/user" → *seal.Identity; "data/user/device" → *seal.Keyring

// withKeys makes (or reuses) the keyring of name's device dev.
func withKeys(t *testing.T, inst *servertest.Instance, name natter.UserID, dev natter.DeviceID) func(*client.Options) {
	t.Helper()
	if kr, ok := testKeys.Load(inst.DataDir + "/" + string(name) + "/" + string(dev)); ok {
		return func(o *client.Options) { o.Keys = kr.(*seal.Keyring) }
	}
	kr, err := seal.New(name, dev)
	if err != nil {
		t.Fatal(err)
	}
	idKey := inst.DataDir + "/" + string(name)
	if id, ok := testKeys.Load(idKey); ok {
		err = kr.AdoptIdentity(id.(*seal.Identity))
	} else {
		var id *seal.Identity
		if id, err = seal.NewIdentity(); err == nil {
			testKeys.Store(idKey, id)
			err = kr.AdoptIdentity(id)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	testKeys.Store(inst.DataDir+"/"+string(name)+"/"+string(dev), kr)
	return func(o *client.Options) { o.Keys = kr }
}

// signup signs name up on device dev and waits for the end of its (empty)
// inbox.
func signup(t *testing.T, inst *servertest.Instance, name natter.UserID, dev natter.DeviceID, mod ...func(*client.Options)) *user {
	t.Helper()
	c := dialServer(t, inst, dev, append([]func(*client.Options){withKeys(t, inst, name, dev)}, mod...)...)
	sess, err := c.Signup(t.Context(), name, testPassword)
	if err != nil {
		t.Fatalf("signup %s: %v", name, err)
	}
	u := &user{Client: c, name: name, dev: dev, ev: newEvents(t, c), sess: sess}
	u.inboxDone()
	return u
}

// login logs name in on a new Client for device dev and returns it with
// the InboxEvents of its login (the last has Done).
func login(t *testing.T, inst *servertest.Instance, name natter.UserID, dev natter.DeviceID, mod ...func(*client.Options)) (*user, []client.InboxEvent) {
	t.Helper()
	c := dialServer(t, inst, dev, append([]func(*client.Options){withKeys(t, inst, name, dev)}, mod...)...)
	sess, err := c.Login(t.Context(), name, testPassword)
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	u := &user{Client: c, name: name, dev: dev, ev: newEvents(t, c), sess: sess}
	return u, u.inboxDone()
}

// inboxDone returns the InboxEvents up to the one with Done.
func (u *user) inboxDone() []client.InboxEvent {
	var ibs []client.InboxEvent
	u.ev.until(func(e client.Event) bool {
		ib, ok := e.(client.InboxEvent)
		if ok {
			ibs = append(ibs, ib)
		}
		return ok && ib.Done
	})
	return ibs
}

// until returns the first event that satisfies ok, skipping others, and
// fails after a timeout.
func (e *events) until(ok func(client.Event) bool) client.Event {
	e.t.Helper()
	deadline := time.After(10 * time.Second)
	var skipped []string
	for {
		select {
		case ev, open := <-e.ch:
			if !open {
				e.t.Fatalf("events closed; skipped %v", skipped)
			}
			if ok(ev) {
				return ev
			}
			skipped = append(skipped, fmt.Sprintf("%T%+v", ev, ev))
		case <-deadline:
			e.t.Fatalf("timed out waiting for an event; skipped %v", skipped)
			return nil
		}
	}
}

// message waits for the MessageEvent of id, skipping other kinds of events
// but failing on any other message.
func (e *events) message(id natter.MessageID) client.MessageEvent {
	e.t.Helper()
	ev := e.until(func(ev client.Event) bool { _, ok := ev.(client.MessageEvent); return ok }).(client.MessageEvent)
	if ev.Message.ID != id {
		e.t.Fatalf("got message %s (%q), want %s", ev.Message.ID, ev.Message.Body, id)
	}
	return ev
}

// noMessage fails if a MessageEvent or InboxEvent arrives within d.
func (e *events) noMessage(d time.Duration) {
	e.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, open := <-e.ch:
			if !open {
				return
			}
			switch ev.(type) {
			case client.MessageEvent, client.InboxEvent:
				e.t.Fatalf("unexpected %T %+v", ev, ev)
			}
		case <-deadline:
			return
		}
	}
}

// befriend makes a and b approved contacts.
func befriend(t *testing.T, a, b *user) {
	t.Helper()
	if err := a.Add(t.Context(), b.name); err != nil {
		t.Fatalf("%s adds %s: %v", a.name, b.name, err)
	}
	b.ev.until(func(e client.Event) bool {
		ce, ok := e.(client.ContactEvent)
		return ok && ce.User == a.name && ce.State == natter.ContactPendingIn
	})
	if err := b.Accept(t.Context(), a.name); err != nil {
		t.Fatalf("%s accepts %s: %v", b.name, a.name, err)
	}
	a.ev.until(func(e client.Event) bool {
		ce, ok := e.(client.ContactEvent)
		return ok && ce.User == b.name && ce.State == natter.ContactApproved
	})
}

func TestServerAuth(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	if alice.sess.User != "alice" || alice.sess.Device != "a1" || alice.sess.Token == "" || !alice.sess.Expires.After(time.Now()) {
		t.Fatalf("session %+v", alice.sess)
	}
	if w := alice.Welcome(); w.V != wire.Version || w.Keepalive <= 0 || w.MaxBody <= 0 {
		t.Fatalf("welcome %+v", w)
	}

	for _, tc := range []struct {
		name string
		do   func(c *client.Client) error
		code wire.Code
	}{
		{"signup taken", func(c *client.Client) error { _, err := c.Signup(ctx, "alice", testPassword); return err }, wire.CodeUserExists},
		{"signup invalid name", func(c *client.Client) error { _, err := c.Signup(ctx, "A!", testPassword); return err }, wire.CodeInvalidName},
		{"signup short password", func(c *client.Client) error { _, err := c.Signup(ctx, "zed", "x"); return err }, wire.CodeBadRequest},
		{"wrong password", func(c *client.Client) error { _, err := c.Login(ctx, "alice", "wrong"); return err }, wire.CodeBadCredentials},
		{"unknown token", func(c *client.Client) error { _, err := c.Resume(ctx, "nonsense"); return err }, wire.CodeSessionExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialServer(t, inst, "x1")
			err := tc.do(c)
			if wireCode(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}

	// Resume on another connection needs only the token.
	alice.Close()
	c := dialServer(t, inst, "a1")
	sess, err := c.Resume(ctx, alice.sess.Token)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if sess.User != "alice" || sess.Device != "a1" {
		t.Fatalf("resumed session %+v", sess)
	}
	if _, err := c.Login(ctx, "alice", testPassword); !errors.Is(err, client.ErrLoggedIn) {
		t.Fatalf("login while logged in: %v", err)
	}
	// Logout ends the token.
	if err := c.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	c2 := dialServer(t, inst, "a1")
	if _, err := c2.Resume(ctx, alice.sess.Token); wireCode(err) != wire.CodeSessionExpired {
		t.Fatalf("resume after logout: %v, want %s", err, wire.CodeSessionExpired)
	}
	// The logged-out Client can log in again (once the server's throttle,
	// after the wrong password above, allows).
	for {
		_, err := c.Login(ctx, "alice", testPassword)
		var we *wire.Err
		if errors.As(err, &we) && we.Code == wire.CodeRateLimited {
			time.Sleep(time.Duration(we.RetryAfter) * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("login after logout: %v", err)
		}
		break
	}
}

func TestServerContactsAndPresence(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob := signup(t, inst, "bob", "b1")

	if err := alice.Add(ctx, "nobody"); wireCode(err) != wire.CodeNoSuchUser {
		t.Fatalf("add unknown user: %v", err)
	}
	befriend(t, alice, bob)

	cs, err := alice.Contacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].User != "bob" || cs[0].State != natter.ContactApproved || cs[0].Status != natter.StatusOnline {
		t.Fatalf("alice's contacts %+v", cs)
	}

	if err := bob.SetPresence(ctx, natter.StatusAway, "lunch"); err != nil {
		t.Fatal(err)
	}
	alice.ev.until(func(e client.Event) bool {
		p, ok := e.(client.PresenceEvent)
		return ok && p.User == "bob" && p.Status == natter.StatusAway && p.Text == "lunch"
	})
	if err := bob.SetPresence(ctx, "sleeping", ""); err == nil {
		t.Fatal("invalid status accepted")
	}

	// Bob goes: alice sees him offline.
	bob.Close()
	alice.ev.until(func(e client.Event) bool {
		p, ok := e.(client.PresenceEvent)
		return ok && p.User == "bob" && p.Status == natter.StatusOffline
	})
	// Bob comes back: alice sees him, and bob's contact list has alice.
	bob2, _ := login(t, inst, "bob", "b1")
	alice.ev.until(func(e client.Event) bool {
		p, ok := e.(client.PresenceEvent)
		return ok && p.User == "bob" && p.Status == natter.StatusOnline
	})
	_ = bob2

	// Reach: bob registers candidates; alice is told.
	cand := []natter.Candidate{{Type: "host", Proto: "udp", Addr: "10.0.0.2:4000", Priority: 100}}
	if err := bob2.SetReach(ctx, cand); err != nil {
		t.Fatal(err)
	}
	r := alice.ev.until(func(e client.Event) bool {
		r, ok := e.(client.ReachEvent)
		return ok && r.User == "bob" && len(r.Candidates) > 0
	}).(client.ReachEvent)
	if r.Device != "b1" || r.Candidates[0] != cand[0] {
		t.Fatalf("reach %+v", r)
	}

	// Removal: no more messages.
	if err := alice.Remove(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, "bob", []byte("hi")); wireCode(err) != wire.CodeNotContact {
		t.Fatalf("send to removed contact: %v", err)
	}
}

func TestServerSendReceive(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob := signup(t, inst, "bob", "b1", func(o *client.Options) { o.AutoDeliveredReceipts = true })
	befriend(t, alice, bob)

	var sent []client.SendResult
	for i := range 3 {
		res, err := alice.Send(ctx, "bob", fmt.Appendf(nil, "hello %d", i))
		if err != nil {
			t.Fatal(err)
		}
		if res.ConvSeq != uint64(i+1) || !res.Online || res.SentAt.IsZero() {
			t.Fatalf("send result %+v", res)
		}
		sent = append(sent, res)
	}
	for i, res := range sent {
		me := bob.ev.message(res.ID)
		if me.Offline || me.Message.From != "alice" || me.Message.To != "bob" || me.Message.FromDevice != "a1" ||
			me.Message.ConvSeq != res.ConvSeq || !bytes.Equal(me.Message.Body, fmt.Appendf(nil, "hello %d", i)) {
			t.Fatalf("bob got %+v", me)
		}
	}
	// Bob's SDK sends delivered receipts on its own; reading is explicit.
	alice.ev.until(func(e client.Event) bool {
		r, ok := e.(client.ReceiptEvent)
		return ok && r.From == "bob" && r.State == natter.ReceiptDelivered && r.Upto == 3
	})
	if err := bob.MarkRead(ctx, "alice", 2); err != nil {
		t.Fatal(err)
	}
	alice.ev.until(func(e client.Event) bool {
		r, ok := e.(client.ReceiptEvent)
		return ok && r.From == "bob" && r.State == natter.ReceiptRead && r.Upto == 2
	})

	// Both ways, and history.
	res, err := bob.Send(ctx, "alice", []byte("hi alice"))
	if err != nil {
		t.Fatal(err)
	}
	if res.ConvSeq != 4 {
		t.Fatalf("bob's reply conv seq %d", res.ConvSeq)
	}
	alice.ev.message(res.ID)
	h, err := alice.History(ctx, "bob", 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 || h[0].Message.ConvSeq != 2 || h[2].Message.ID != res.ID {
		t.Fatalf("history %+v", h)
	}
	// The device opens its own sent messages from the server's history.
	if h[0].OpenErr != nil || string(h[0].Message.Body) != "hello 1" {
		t.Fatalf("own message from history: %q, %v", h[0].Message.Body, h[0].OpenErr)
	}
	// Sending to oneself or a stranger is refused with the server's code.
	if _, err := alice.Send(ctx, "alice", []byte("me")); wireCode(err) == "" {
		t.Fatalf("send to self: %v", err)
	}
}

func TestServerOfflineInbox(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	carol := signup(t, inst, "carol", "c1")
	bob := signup(t, inst, "bob", "b1")
	befriend(t, alice, bob)
	befriend(t, carol, bob)
	bob.Close()

	want := map[natter.UserID][]natter.MessageID{}
	for i := range 3 {
		for _, u := range []*user{alice, carol} {
			res, err := u.Send(ctx, "bob", fmt.Appendf(nil, "%s %d", u.name, i))
			if err != nil {
				t.Fatal(err)
			}
			if res.Online {
				t.Fatalf("bob online? %+v", res)
			}
			want[u.name] = append(want[u.name], res.ID)
		}
	}

	bob2, ibs := login(t, inst, "bob", "b1")
	got := map[natter.UserID][]natter.MessageID{}
	for _, ib := range ibs {
		for _, g := range ib.Groups {
			for _, m := range g.Messages {
				if m.From != g.From {
					t.Fatalf("message from %s in group of %s", m.From, g.From)
				}
				got[g.From] = append(got[g.From], m.ID)
			}
		}
	}
	for _, name := range []natter.UserID{"alice", "carol"} {
		if fmt.Sprint(got[name]) != fmt.Sprint(want[name]) {
			t.Errorf("inbox from %s: %v, want %v", name, got[name], want[name])
		}
	}
	// Not again as MessageEvents.
	bob2.ev.noMessage(300 * time.Millisecond)
	bob2.Close()

	// Acknowledged: the next login's inbox is empty.
	_, ibs = login(t, inst, "bob", "b1")
	for _, ib := range ibs {
		for _, g := range ib.Groups {
			if len(g.Messages) > 0 {
				t.Fatalf("inbox again after ack: %+v", ibs)
			}
		}
	}
}

func TestServerMultiDevice(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob1 := signup(t, inst, "bob", "b1")
	befriend(t, alice, bob1)
	bob2, _ := login(t, inst, "bob", "b2")

	res, err := alice.Send(ctx, "bob", []byte("to both"))
	if err != nil {
		t.Fatal(err)
	}
	bob1.ev.message(res.ID)
	bob2.ev.message(res.ID)

	// Bob writes from b1: b2 and alice get it, b1 does not get it back.
	res2, err := bob1.Send(ctx, "alice", []byte("from b1"))
	if err != nil {
		t.Fatal(err)
	}
	alice.ev.message(res2.ID)
	me := bob2.ev.message(res2.ID)
	if me.Message.From != "bob" || me.Message.FromDevice != "b1" || me.Message.To != "alice" {
		t.Fatalf("b2 got %+v", me)
	}
	bob1.ev.noMessage(300 * time.Millisecond)

	// Bob reads on b2: b1 learns it (a receipt from bob).
	if err := bob2.MarkRead(ctx, "alice", res.ConvSeq); err != nil {
		t.Fatal(err)
	}
	bob1.ev.until(func(e client.Event) bool {
		r, ok := e.(client.ReceiptEvent)
		return ok && r.From == "bob" && r.To == "alice" && r.State == natter.ReceiptRead
	})
}

func TestServerDuplicateSend(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob := signup(t, inst, "bob", "b1")
	befriend(t, alice, bob)

	id := natter.NewMessageID(time.Now())
	first, err := alice.SendID(ctx, id, "bob", []byte("once"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := alice.SendID(ctx, id, "bob", []byte("once"))
	if err != nil {
		t.Fatal(err)
	}
	if again.ConvSeq != first.ConvSeq || !again.SentAt.Equal(first.SentAt) {
		t.Fatalf("resend %+v, first %+v", again, first)
	}
	bob.ev.message(id)
	bob.ev.noMessage(300 * time.Millisecond)
}

// TestServerManyMessages sends a burst from several goroutines and checks
// that each arrives exactly once, in conversation order.
func TestServerManyMessages(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob := signup(t, inst, "bob", "b1", func(o *client.Options) { o.AutoDeliveredReceipts = true })
	befriend(t, alice, bob)

	const n = 200
	errc := make(chan error, n)
	for i := range n {
		go func() {
			_, err := alice.Send(ctx, "bob", fmt.Appendf(nil, "m%d", i))
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[natter.MessageID]bool{}
	var last uint64
	for len(seen) < n {
		me := bob.ev.until(func(e client.Event) bool { _, ok := e.(client.MessageEvent); return ok }).(client.MessageEvent)
		if seen[me.Message.ID] {
			t.Fatalf("message %s twice", me.Message.ID)
		}
		seen[me.Message.ID] = true
		if me.Message.ConvSeq != last+1 {
			t.Fatalf("conv seq %d after %d", me.Message.ConvSeq, last)
		}
		last = me.Message.ConvSeq
	}
	bob.ev.noMessage(300 * time.Millisecond)
}

// TestServerSessionReplaced: the same device logging in on another
// connection ends the first one's session for good.
func TestServerSessionReplaced(t *testing.T) {
	inst := startServer(t)
	first := signup(t, inst, "alice", "a1")
	login(t, inst, "alice", "a1")
	ce := first.ev.until(func(e client.Event) bool { _, ok := e.(client.ConnEvent); return ok }).(client.ConnEvent)
	if !ce.Final || wireCode(ce.Err) != wire.CodeReplaced {
		t.Fatalf("conn event %+v", ce)
	}
	if _, err := first.Contacts(context.Background()); !errors.Is(err, client.ErrNotLoggedIn) {
		t.Fatalf("after replaced: %v", err)
	}
}

// TestServerAllAcknowledged: after a conversation with sends, receipts
// (automatic and explicit) and messages, every entry of both users' inboxes
// was acknowledged, including the ones the server does not push back to the
// device that caused them (its own sends and receipts, which the SDK learns
// of through Sync): the next login of the same devices has an empty inbox.
func TestServerAllAcknowledged(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	auto := func(o *client.Options) { o.AutoDeliveredReceipts = true }
	alice := signup(t, inst, "alice", "a1", auto)
	bob := signup(t, inst, "bob", "b1", auto)
	befriend(t, alice, bob)
	var lastA uint64
	for i := range 5 {
		res, err := alice.Send(ctx, "bob", fmt.Appendf(nil, "a%d", i))
		if err != nil {
			t.Fatal(err)
		}
		lastA = res.ConvSeq
		bob.ev.message(res.ID)
		res, err = bob.Send(ctx, "alice", fmt.Appendf(nil, "b%d", i))
		if err != nil {
			t.Fatal(err)
		}
		alice.ev.message(res.ID)
		if err := alice.MarkRead(ctx, "bob", res.ConvSeq); err != nil {
			t.Fatal(err)
		}
	}
	// The conversation is quiet once bob's device confirmed alice's last
	// message (its automatic receipt); what each Client still holds back
	// (receipts, Acks, its own entries' positions) is Close's to settle.
	alice.ev.until(func(e client.Event) bool {
		rc, ok := e.(client.ReceiptEvent)
		return ok && rc.From == "bob" && rc.State == natter.ReceiptDelivered && rc.Upto >= lastA
	})
	alice.Close()
	bob.Close()
	for _, u := range []*user{alice, bob} {
		_, ibs := login(t, inst, u.name, u.dev)
		for _, ib := range ibs {
			if len(ib.Groups) > 0 {
				t.Errorf("%s's inbox at the next login: %+v", u.name, ib.Groups)
			}
		}
	}
}

// TestServerRestart: the server stops (gracefully, saying Bye) and starts
// again on the same data folder and address while messages are being sent.
// The SDK reconnects and resumes; every Send returns nil exactly when its
// message is stored, and the recipient sees each message exactly once, in
// conversation order.
func TestServerRestart(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob := signup(t, inst, "bob", "b1")
	befriend(t, alice, bob)

	const n = 60
	errc := make(chan error, n)
	ids := make(chan natter.MessageID, n)
	for i := range n {
		go func() {
			time.Sleep(time.Duration(i) * 5 * time.Millisecond) // spread across the restart
			res, err := alice.Send(ctx, "bob", fmt.Appendf(nil, "m%d", i))
			if err == nil {
				ids <- res.ID
			}
			errc <- err
		}()
	}
	time.Sleep(60 * time.Millisecond)
	t0 := time.Now()
	inst.Restart()
	t.Logf("restart took %v", time.Since(t0))
	for range n {
		if err := <-errc; err != nil {
			t.Errorf("send: %v", err)
		}
	}
	t.Logf("sends done after %v", time.Since(t0))
	close(ids)
	want := map[natter.MessageID]bool{}
	for id := range ids {
		want[id] = true
	}

	seen := map[natter.MessageID]bool{}
	var last uint64
	var downs, ups int
	for len(seen) < len(want) {
		switch e := bob.ev.until(func(client.Event) bool { return true }).(type) {
		case client.MessageEvent:
			if seen[e.Message.ID] {
				t.Fatalf("message %s twice", e.Message.ID)
			}
			if !want[e.Message.ID] {
				t.Fatalf("unexpected message %s", e.Message.ID)
			}
			seen[e.Message.ID] = true
			if e.Message.ConvSeq != last+1 {
				t.Fatalf("conv seq %d after %d", e.Message.ConvSeq, last)
			}
			last = e.Message.ConvSeq
		case client.ConnEvent:
			if e.Final {
				t.Fatalf("session ended: %v", e.Err)
			}
			if e.Up {
				ups++
			} else {
				downs++
				if wireCode(e.Err) != wire.CodeShutdown {
					t.Logf("down: %v", e.Err)
				}
			}
		}
	}
	if downs != 1 || ups != 1 {
		t.Errorf("bob saw %d downs and %d ups, want 1 and 1", downs, ups)
	}
	bob.ev.noMessage(300 * time.Millisecond)
	alice.ev.until(func(e client.Event) bool { ce, ok := e.(client.ConnEvent); return ok && ce.Up })

	// The session works as before.
	res, err := bob.Send(ctx, "alice", []byte("still here"))
	if err != nil {
		t.Fatal(err)
	}
	alice.ev.message(res.ID)
}

// TestServerLargeInbox: an inbox bigger than one Inbox frame comes as
// several InboxEvents, the last with Done, every message once and in order.
func TestServerLargeInbox(t *testing.T) {
	// A bulk sender: no per-user message limit.
	inst := servertest.Start(t, func(c *server.Config) { c.MsgsPerSecond = -1 })
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob := signup(t, inst, "bob", "b1")
	befriend(t, alice, bob)
	bob.Close()

	const n = 300 // with these bodies, several frames' worth
	body := bytes.Repeat([]byte("x"), 6000)
	errc := make(chan error, n)
	for range n {
		go func() { _, err := alice.Send(ctx, "bob", body); errc <- err }()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	bob2, ibs := login(t, inst, "bob", "b1")
	if len(ibs) < 2 {
		t.Fatalf("%d InboxEvents, want several", len(ibs))
	}
	var last uint64
	for i, ib := range ibs {
		if ib.Done != (i == len(ibs)-1) {
			t.Fatalf("InboxEvent %d of %d has Done %v", i, len(ibs), ib.Done)
		}
		for _, g := range ib.Groups {
			for _, m := range g.Messages {
				if m.ConvSeq != last+1 {
					t.Fatalf("conv seq %d after %d", m.ConvSeq, last)
				}
				last = m.ConvSeq
			}
		}
	}
	if last != n {
		t.Fatalf("inbox held %d messages, want %d", last, n)
	}
	bob2.ev.noMessage(300 * time.Millisecond)
}

// TestDeliveredReceiptOnClose: a Client that hands a message to the app and
// closes at once still sends its automatic delivered receipt.
func TestDeliveredReceiptOnClose(t *testing.T) {
	inst := startServer(t)
	alice := signup(t, inst, "alice", "alice-1")
	bob := signup(t, inst, "bob", "bob-1", func(o *client.Options) { o.AutoDeliveredReceipts = true })
	befriend(t, alice, bob)
	res, err := alice.Send(t.Context(), "bob", []byte("read me and go"))
	if err != nil {
		t.Fatal(err)
	}
	bob.ev.message(res.ID)
	bob.Close()
	ev := alice.ev.until(func(e client.Event) bool {
		r, ok := e.(client.ReceiptEvent)
		return ok && r.From == "bob" && r.State == natter.ReceiptDelivered
	}).(client.ReceiptEvent)
	if ev.Upto != res.ConvSeq {
		t.Fatalf("receipt upto %d, want %d", ev.Upto, res.ConvSeq)
	}
}
