package client_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// Unit tests against the scripted fake server: they pin down the SDK's side
// of the protocol, including cases a real server rarely produces (gaps,
// reordering, duplicates, refusals).

func TestDialRefused(t *testing.T) {
	fs := newFakeServer(t)
	fs.hello = func(fc *fakeConn) bool {
		fc.write(wire.Error{Code: wire.CodeUnsupportedVersion, Message: "speak v2"})
		return false
	}
	_, err := client.Dial(t.Context(), fs.opts("dev1"))
	if wireCode(err) != wire.CodeUnsupportedVersion {
		t.Fatalf("Dial: %v, want a *wire.Err with %s", err, wire.CodeUnsupportedVersion)
	}
}

func TestDialBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    client.Options
	}{
		{"no addr", client.Options{Device: "dev1"}},
		{"no device", client.Options{Addr: "127.0.0.1:1"}},
		{"bad device", client.Options{Addr: "127.0.0.1:1", Device: "a b"}},
		{"bad address in Addrs", client.Options{Addrs: []string{"127.0.0.1:1", "no port"}, Device: "dev1"}},
		{"empty Addrs", client.Options{Addrs: []string{""}, Device: "dev1"}},
		{"no address answers", client.Options{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, Device: "dev1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := client.Dial(t.Context(), tc.o); err == nil {
				t.Fatal("Dial succeeded")
			}
		})
	}
}

func TestMisuseBeforeLogin(t *testing.T) {
	fs := newFakeServer(t)
	c, err := client.Dial(t.Context(), fs.opts("dev1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fs.accept()
	ctx := t.Context()
	for name, call := range map[string]func() error{
		"send":         func() error { _, err := c.Send(ctx, "bob", []byte("hi")); return err },
		"contacts":     func() error { _, err := c.Contacts(ctx); return err },
		"add":          func() error { return c.Add(ctx, "bob") },
		"set presence": func() error { return c.SetPresence(ctx, natter.StatusAway, "") },
		"mark read":    func() error { return c.MarkRead(ctx, "bob", 1) },
		"history":      func() error { _, err := c.History(ctx, "bob", 0, 10); return err },
		"logout":       func() error { return c.Logout(ctx) },
	} {
		if err := call(); !errors.Is(err, client.ErrNotLoggedIn) {
			t.Errorf("%s before login: %v, want ErrNotLoggedIn", name, err)
		}
	}
	c.Close()
	if _, err := c.Login(ctx, "alice", "pw"); !errors.Is(err, client.ErrClosed) {
		t.Errorf("login after close: %v, want ErrClosed", err)
	}
	if _, ok := <-c.Events(); ok {
		t.Error("events not closed after Close")
	}
}

func TestLoginRefused(t *testing.T) {
	fs := newFakeServer(t)
	c, err := client.Dial(t.Context(), fs.opts("dev1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fc := fs.accept()
	go func() {
		l := expect[wire.Login](fc)
		fc.write(wire.Error{Ref: l.Ref, Code: wire.CodeBadCredentials, Message: "no"})
	}()
	if _, err := c.Login(t.Context(), "alice", "wrong"); wireCode(err) != wire.CodeBadCredentials {
		t.Fatalf("login: %v, want %s", err, wire.CodeBadCredentials)
	}
	if _, ok := c.Session(); ok {
		t.Fatal("session after refused login")
	}
}

// TestInboxBeforeLive: live pushes that arrive during the inbox are held
// until the inbox is done; the inbox comes as InboxEvents, messages already
// in it are not emitted again, and the Ack covers everything handed over.
func TestInboxBeforeLive(t *testing.T) {
	fs := newFakeServer(t)
	o := fs.opts("dev1")
	c, err := client.Dial(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fc := fs.accept()
	go func() {
		l := expect[wire.Login](fc)
		m10 := testMsg(10, "m10", "bob", "alice", 1)
		m11 := testMsg(11, "m11", "carol", "alice", 1)
		m12 := testMsg(12, "m12", "bob", "alice", 2)
		fc.write(
			wire.Authed{Ref: l.Ref, User: "alice", Device: o.Device, Token: "tok"},
			wire.Contacts{Contacts: []wire.Contact{{User: "bob", State: natter.ContactApproved, Status: natter.StatusOnline}}},
			m12, // live, ahead of the inbox
			wire.Inbox{Groups: []wire.InboxGroup{{From: "bob", Messages: []wire.Msg{m10}}}, Through: 10},
			wire.Inbox{Groups: []wire.InboxGroup{
				{From: "carol", Messages: []wire.Msg{m11}},
				{From: "bob", Receipts: []wire.Rcpt{}},
			}, Through: 12, Done: true}, // covers 12 too: it is not emitted twice
		)
		fc.keySetup()
	}()
	sess, err := c.Login(t.Context(), "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if sess.User != "alice" || sess.Token != "tok" || sess.Device != o.Device {
		t.Fatalf("session %+v", sess)
	}
	ev := newEvents(t, c)
	if cs := ev.next().(client.ContactsEvent); len(cs.Contacts) != 1 || cs.Contacts[0].Status != natter.StatusOnline {
		t.Fatalf("contacts %+v", cs)
	}
	ib := ev.next().(client.InboxEvent)
	if ib.Done || len(ib.Groups) != 1 || ib.Groups[0].From != "bob" || ib.Groups[0].Messages[0].ID != "m10" {
		t.Fatalf("first inbox event %+v", ib)
	}
	ib = ev.next().(client.InboxEvent)
	if !ib.Done || len(ib.Groups) != 1 || ib.Groups[0].From != "carol" {
		t.Fatalf("second inbox event %+v", ib)
	}
	// The fake server's bodies are not sealed: the SDK says so, and hands
	// over no unauthenticated text.
	me := ev.msg("m12", false)
	if me.Seq != 12 || me.Message.Body != nil || !errors.Is(me.OpenErr, seal.ErrBadEnvelope) {
		t.Fatalf("live message %+v", me)
	}
	fc.expectAck(12)
	ev.none(100 * time.Millisecond)
}

// TestGapSyncAndDedup: a gap in inbox sequence numbers makes the SDK Sync
// after a grace period, acknowledge only the contiguous part, and drop the
// duplicates that the Sync and redeliveries bring.
func TestGapSyncAndDedup(t *testing.T) {
	fs := newFakeServer(t)
	c, fc, ev := dialLogin(t, fs, fs.opts("dev1"), "alice", 5)
	_ = c
	m6 := testMsg(6, "m6", "bob", "alice", 1)
	m7 := testMsg(7, "m7", "carol", "alice", 1)
	m8 := testMsg(8, "m8", "dave", "alice", 1)
	fc.write(m6, m8)
	ev.msg("m6", false)
	ev.msg("m8", false)
	fc.expectAck(6)
	s := expect[wire.Sync](fc)
	if s.After != 6 {
		t.Fatalf("sync after %d, want 6", s.After)
	}
	fc.write(wire.Inbox{Ref: s.Ref, Groups: []wire.InboxGroup{
		{From: "carol", Messages: []wire.Msg{m7}},
		{From: "dave", Messages: []wire.Msg{m8}},
	}, Through: 8, Done: true})
	ev.msg("m7", true)
	fc.expectAck(8)

	// The same message again, with its seq or a new one: never emitted.
	m6again := m6
	m6again.Seq = 9
	fc.write(m6, m6again)
	fc.expectAck(9)
	ev.none(100 * time.Millisecond)
}

// TestConversationGapFilled: a live message that skips ahead in its
// conversation makes the SDK fetch the missing ones with History and emit
// them first.
func TestConversationGapFilled(t *testing.T) {
	fs := newFakeServer(t)
	_, fc, ev := dialLogin(t, fs, fs.opts("dev1"), "alice", 5)
	fc.write(testMsg(6, "c1", "bob", "alice", 1))
	ev.msg("c1", false)
	fc.write(testMsg(7, "c4", "bob", "alice", 4))
	h := expect[wire.History](fc)
	if h.Peer != "bob" || h.After != 1 || h.Limit != 2 {
		t.Fatalf("history %+v", h)
	}
	fc.write(wire.Messages{Ref: h.Ref, Messages: []wire.Message{
		testMsg(0, "c2", "alice", "bob", 2).Message, // from the user's other device
		testMsg(0, "c3", "bob", "alice", 3).Message,
	}})
	if me := ev.msg("c2", true); me.Seq != 0 || me.Message.From != "alice" {
		t.Fatalf("filled %+v", me)
	}
	ev.msg("c3", true)
	ev.msg("c4", false)
	fc.expectAck(7)
}

// TestReconnectResendsPendingSend: a Send whose SendAck was lost with the
// connection is sent again, with the same ID, after the automatic resume;
// the call returns once it is acknowledged.
func TestReconnectResendsPendingSend(t *testing.T) {
	fs := newFakeServer(t)
	c, fc, ev := dialLogin(t, fs, fs.opts("dev1"), "alice", 0)
	if err := func() error {
		go func() {
			sp := expect[wire.SetPresence](fc)
			fc.write(wire.OK{Ref: sp.Ref})
		}()
		return c.SetPresence(t.Context(), natter.StatusBusy, "in a meeting")
	}(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		res client.SendResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := c.Send(t.Context(), "bob", []byte("hello"))
		done <- result{res, err}
	}()
	s1 := expect[wire.Send](fc)
	fc.close() // the ack is lost

	ev.conn(false, false)
	fc2 := fs.accept()
	r := expect[wire.Resume](fc2)
	if r.Token != "tok-alice" {
		t.Fatalf("resume token %q", r.Token)
	}
	fc2.authed(r.Ref, "alice", "dev1", 0)
	ev.conn(true, false)
	ev.want(func(e client.Event) bool { _, ok := e.(client.ContactsEvent); return ok })
	// After the resume, the presence is set again and the send repeated;
	// the inbox after an automatic resume is not an InboxEvent.
	sp := expect[wire.SetPresence](fc2)
	if sp.Status != natter.StatusBusy || sp.Text != "in a meeting" {
		t.Fatalf("presence after resume %+v", sp)
	}
	fc2.write(wire.OK{Ref: sp.Ref})
	s2 := expect[wire.Send](fc2)
	if s2.ID != s1.ID || !bytes.Equal(s2.Body, s1.Body) || s2.To != "bob" {
		t.Fatalf("resent %+v, first %+v", s2, s1)
	}
	fc2.write(wire.SendAck{Ref: s2.Ref, ID: s2.ID, ConvSeq: 7, Online: true})
	got := <-done
	if got.err != nil || got.res.ID != s1.ID || got.res.ConvSeq != 7 || !got.res.Online {
		t.Fatalf("send: %+v, %v", got.res, got.err)
	}
	// Our own message coming back (e.g. in a Sync) is not emitted.
	fc2.write(wire.Msg{Seq: 1, Message: wire.Message{ID: s1.ID, From: "alice", FromDevice: "dev1", To: "bob", ConvSeq: 7}})
	fc2.expectAck(1)
	ev.none(100 * time.Millisecond)
}

// TestSessionEnds: a Bye that ends the session, or a refused resume, stops
// the SDK with a final ConnEvent; other Byes make it reconnect.
func TestSessionEnds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		bye       wire.Code // the server's Bye before closing
		refuse    wire.Code // the answer to the Resume, if it gets that far
		reconnect bool
	}{
		{name: "replaced", bye: wire.CodeReplaced},
		{name: "logged out elsewhere", bye: wire.CodeLoggedOut},
		{name: "expired at resume", bye: wire.CodeShutdown, refuse: wire.CodeSessionExpired, reconnect: true},
		{name: "slow consumer", bye: wire.CodeSlowConsumer, reconnect: true},
		{name: "drop", reconnect: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeServer(t)
			c, fc, ev := dialLogin(t, fs, fs.opts("dev1"), "alice", 0)
			if tc.bye != "" {
				fc.write(wire.Bye{Code: tc.bye, Message: "bye"})
			}
			fc.close()
			if !tc.reconnect {
				ce := ev.conn(false, true)
				if wireCode(ce.Err) != tc.bye {
					t.Fatalf("final event error %v, want %s", ce.Err, tc.bye)
				}
				fs.noConn(200 * time.Millisecond)
				if _, err := c.Send(t.Context(), "bob", nil); !errors.Is(err, client.ErrNotLoggedIn) {
					t.Fatalf("send after the end: %v", err)
				}
				return
			}
			ce := ev.conn(false, false)
			if tc.bye != "" && wireCode(ce.Err) != tc.bye {
				t.Fatalf("down event error %v, want %s", ce.Err, tc.bye)
			}
			// A send made while reconnecting waits for the session.
			sendErr := make(chan error, 1)
			go func() { _, err := c.Send(t.Context(), "bob", []byte("x")); sendErr <- err }()
			time.Sleep(20 * time.Millisecond)
			// Other calls fail at once.
			if _, err := c.Contacts(t.Context()); !errors.Is(err, client.ErrConnLost) && !errors.Is(err, client.ErrNotLoggedIn) {
				t.Fatalf("contacts while reconnecting: %v", err)
			}
			fc2 := fs.accept()
			r := expect[wire.Resume](fc2)
			if tc.refuse != "" {
				fc2.write(wire.Error{Ref: r.Ref, Code: tc.refuse, Message: "log in again"})
				ce := ev.conn(false, true)
				if wireCode(ce.Err) != tc.refuse {
					t.Fatalf("final event error %v, want %s", ce.Err, tc.refuse)
				}
				if err := <-sendErr; !errors.Is(err, client.ErrSessionEnded) || wireCode(err) != tc.refuse {
					t.Fatalf("pending send: %v, want ErrSessionEnded and %s", err, tc.refuse)
				}
				return
			}
			fc2.authed(r.Ref, "alice", "dev1", 0)
			ev.conn(true, false)
			s := expect[wire.Send](fc2)
			fc2.write(wire.SendAck{Ref: s.Ref, ID: s.ID, ConvSeq: 1})
			if err := <-sendErr; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCallFailsOnConnLoss: a call waiting when the connection drops fails
// with ErrConnLost instead of hanging.
func TestCallFailsOnConnLoss(t *testing.T) {
	fs := newFakeServer(t)
	c, fc, _ := dialLogin(t, fs, fs.opts("dev1"), "alice", 0)
	go func() {
		expect[wire.ListContacts](fc)
		fc.close()
	}()
	if _, err := c.Contacts(t.Context()); !errors.Is(err, client.ErrConnLost) {
		t.Fatalf("contacts: %v, want ErrConnLost", err)
	}
}

// TestServerErrors: Error frames become *wire.Err values.
func TestServerErrors(t *testing.T) {
	fs := newFakeServer(t)
	c, fc, _ := dialLogin(t, fs, fs.opts("dev1"), "alice", 0)
	for _, code := range []wire.Code{wire.CodeNotContact, wire.CodeNoSuchUser, wire.CodeRateLimited} {
		go func() {
			op := expect[wire.ContactOp](fc)
			fc.write(wire.Error{Ref: op.Ref, Code: code, Message: "no", RetryAfter: 5})
		}()
		err := c.Remove(t.Context(), "bob")
		var we *wire.Err
		if !errors.As(err, &we) || we.Code != code || we.RetryAfter != 5 {
			t.Fatalf("remove: %v, want %s", err, code)
		}
	}
}

// TestCtxCancel: a call whose ctx ends returns the ctx's error.
func TestCtxCancel(t *testing.T) {
	fs := newFakeServer(t)
	c, fc, _ := dialLogin(t, fs, fs.opts("dev1"), "alice", 0)
	// A first message fetches the keys, so that the one below goes straight
	// out.
	go func() {
		s := expect[wire.Send](fc)
		fc.write(wire.SendAck{Ref: s.Ref, ID: s.ID, ConvSeq: 1})
	}()
	if _, err := c.Send(t.Context(), "bob", []byte("first")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	res, err := c.Send(ctx, "bob", []byte("x"))
	if !errors.Is(err, context.DeadlineExceeded) || res.ID == "" {
		t.Fatalf("send: %+v %v", res, err)
	}
	s := expect[wire.Send](fc)
	// A late answer is ignored.
	fc.write(wire.SendAck{Ref: s.Ref, ID: s.ID})
	// Retrying with the same ID is how the app keeps exactly-once.
	go func() {
		s := expect[wire.Send](fc)
		if s.ID != res.ID {
			t.Errorf("retry ID %s, want %s", s.ID, res.ID)
		}
		fc.write(wire.SendAck{Ref: s.Ref, ID: s.ID, ConvSeq: 1})
	}()
	if _, err := c.SendID(t.Context(), res.ID, "bob", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

// TestKeepalive: the SDK pings within the server's keepalive and treats a
// silent server as gone.
func TestKeepalive(t *testing.T) {
	fs := newFakeServer(t)
	fs.welcome.Keepalive = 1
	_, fc, ev := dialLogin(t, fs, fs.opts("dev1"), "alice", 0)
	start := time.Now()
	v := fc.readAny()
	for fc.serveKeys(v) { // the archive state, asked after login
		v = fc.readAny()
	}
	if _, ok := v.(*wire.Ping); !ok {
		t.Fatalf("got %T, want a ping", v)
	}
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Fatalf("first ping after %v, want about a third of 1s", d)
	}
	// Do not answer: the SDK gives up on the connection after 1s of silence.
	ce := ev.conn(false, false)
	if d := time.Since(start); d < 500*time.Millisecond || d > 3*time.Second {
		t.Fatalf("connection declared dead after %v", d)
	}
	if ce.Err == nil {
		t.Fatal("no cause")
	}
}

// TestAutoDeliveredReceipts: delivered receipts are sent once per peer, up
// to the highest message handed over; the SDK's own receipts and messages
// coming back are not emitted.
func TestAutoDeliveredReceipts(t *testing.T) {
	fs := newFakeServer(t)
	o := fs.opts("dev1")
	o.AutoDeliveredReceipts = true
	c, fc, ev := dialLogin(t, fs, o, "alice", 0)
	fc.write(testMsg(1, "b1", "bob", "alice", 1), testMsg(2, "b2", "bob", "alice", 2))
	ev.msg("b1", false)
	ev.msg("b2", false)
	r := expect[wire.Receipt](fc)
	if r.Peer != "bob" || r.Upto != 2 || r.State != natter.ReceiptDelivered {
		t.Fatalf("receipt %+v", r)
	}
	fc.write(wire.OK{Ref: r.Ref})
	go func() {
		r := expect[wire.Receipt](fc)
		fc.write(wire.OK{Ref: r.Ref})
	}()
	if err := c.MarkRead(t.Context(), "bob", 2); err != nil {
		t.Fatal(err)
	}
	// The server echoes both receipts (for the user's other devices), and
	// a receipt from bob follows.
	fc.write(
		wire.Rcpt{Seq: 3, From: "alice", To: "bob", Upto: 2, State: natter.ReceiptDelivered},
		wire.Rcpt{Seq: 4, From: "alice", To: "bob", Upto: 2, State: natter.ReceiptRead},
		wire.Rcpt{Seq: 5, From: "bob", To: "alice", Upto: 9, State: natter.ReceiptRead},
	)
	re := ev.next().(client.ReceiptEvent)
	if re.From != "bob" || re.Upto != 9 {
		t.Fatalf("receipt event %+v", re)
	}
	fc.expectAck(5)
	// Redelivered: dropped by seq.
	fc.write(wire.Rcpt{Seq: 5, From: "bob", To: "alice", Upto: 9, State: natter.ReceiptRead})
	ev.none(100 * time.Millisecond)
}

// TestLogout: Logout acknowledges, logs out, fails later calls, and does
// not reconnect; the Client can log in again.
func TestLogout(t *testing.T) {
	fs := newFakeServer(t)
	c, fc, ev := dialLogin(t, fs, fs.opts("dev1"), "alice", 0)
	fc.write(testMsg(1, "b1", "bob", "alice", 1))
	ev.msg("b1", false)
	go func() {
		lo := expect[wire.Logout](fc)
		fc.write(wire.OK{Ref: lo.Ref})
		fc.close()
	}()
	if err := c.Logout(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(t.Context(), "bob", nil); !errors.Is(err, client.ErrNotLoggedIn) {
		t.Fatalf("send after logout: %v", err)
	}
	fs.noConn(100 * time.Millisecond)
	ev.none(50 * time.Millisecond)

	// Log in again: a new connection.
	go func() {
		fc := fs.accept()
		l := expect[wire.Login](fc)
		fc.authed(l.Ref, "alice", "dev1", 1)
		fc.keySetup()
	}()
	if _, err := c.Login(t.Context(), "alice", "pw"); err != nil {
		t.Fatal(err)
	}
}

// TestLogoutAcks: the Ack for what was handed over goes out before the
// Logout.
func TestLogoutAcks(t *testing.T) {
	fs := newFakeServer(t)
	c, fc, ev := dialLogin(t, fs, fs.opts("dev1"), "alice", 0)
	fc.write(testMsg(1, "b1", "bob", "alice", 1))
	ev.msg("b1", false)
	got := make(chan []any, 1)
	go func() {
		var frames []any
		for {
			v := fc.readAny()
			frames = append(frames, v)
			if lo, ok := v.(*wire.Logout); ok {
				fc.write(wire.OK{Ref: lo.Ref})
				got <- frames
				return
			}
		}
	}()
	if err := c.Logout(t.Context()); err != nil {
		t.Fatal(err)
	}
	frames := <-got
	var acked bool
	for _, f := range frames {
		if a, ok := f.(*wire.Ack); ok && a.Upto == 1 {
			acked = true
		}
	}
	if !acked {
		t.Fatalf("frames before logout %+v: no ack of 1", frames)
	}
}

// TestBodyTooLarge is refused before it reaches the server.
func TestBodyTooLarge(t *testing.T) {
	fs := newFakeServer(t)
	fs.welcome.MaxBody = 10
	c, _, _ := dialLogin(t, fs, fs.opts("dev1"), "alice", 0)
	if _, err := c.Send(t.Context(), "bob", make([]byte, 11)); !errors.Is(err, client.ErrBodyTooLarge) {
		t.Fatalf("send: %v", err)
	}
}

// TestCloseAcksWhatWasHandedOver: Close acknowledges exactly the entries in
// the Events channel (which stay readable), not those still queued behind
// it, which the server must deliver again.
func TestCloseAcksWhatWasHandedOver(t *testing.T) {
	fs := newFakeServer(t)
	o := fs.opts("dev1")
	o.EventBuffer = 1 // room for one message (dialLogin reads the login's events)
	c, fc, ev := dialLogin(t, fs, o, "alice", 0)
	_ = ev // read nothing more until Close
	fc.write(testMsg(1, "m1", "bob", "alice", 1), testMsg(2, "m2", "bob", "alice", 2), testMsg(3, "m3", "bob", "alice", 3))
	time.Sleep(200 * time.Millisecond) // m1 in the channel, m2 waiting for room
	fc.expectAck(1)
	c.Close()
	// Nothing more is acknowledged, and the connection closes.
	for {
		v := fc.tryRead()
		if _, ok := v.(error); ok {
			break
		}
		if a, ok := v.(*wire.Ack); ok && a.Upto != 1 {
			t.Fatalf("ack %d after close", a.Upto)
		}
	}
	var got []natter.MessageID
	for e := range c.Events() {
		if me, ok := e.(client.MessageEvent); ok {
			got = append(got, me.Message.ID)
		}
	}
	if len(got) != 1 || got[0] != "m1" {
		t.Fatalf("events readable after close: %v, want [m1]", got)
	}
}
