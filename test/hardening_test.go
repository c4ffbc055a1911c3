package test

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/server"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// TestStalledHandshakesDoNotBlockLogins: thousands of connections that never
// finish (or never start) the TLS handshake do not stop a real user from
// logging in promptly, and the server drops them at the handshake timeout.
func TestStalledHandshakesDoNotBlockLogins(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections")
	}
	const stalled = 5000
	in := servertest.Start(t, func(c *server.Config) { c.HandshakeTimeout = 3 * time.Second })
	signup(t, in, "alice")

	conns := make([]net.Conn, 0, stalled)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Half say nothing; half send the first bytes of a TLS record and stop.
	// They come from ten other addresses than the real user's (127.0.0.1),
	// 500 each: under the per-address limit, so it is the handshake timeout
	// that must cope with them.
	for i := range stalled {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%10))}}
		c, err := d.Dial("tcp", in.Addr)
		if err != nil {
			t.Fatalf("stalled connection %d: %v", i, err)
		}
		if i%2 == 1 {
			c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00})
		}
		conns = append(conns, c)
	}

	start := time.Now()
	r := hello(t, in)
	r.call(wire.Login{User: "alice", Password: "password-alice", Device: "d1"}, wire.TAuthed)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("login took %v behind %d stalled handshakes", d, stalled)
	}
	t.Logf("login behind %d stalled handshakes took %v", stalled, time.Since(start).Round(time.Millisecond))

	// The stalled ones are dropped at the handshake timeout.
	dropped := 0
	buf := make([]byte, 1)
	for _, c := range conns[:100] {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				dropped++
			}
		}
	}
	if dropped != 100 {
		t.Fatalf("%d of 100 stalled connections dropped by the server", dropped)
	}
}

// TestLimits: each per-user and per-address limit refuses with a clear,
// retryable error and lets the user go on once the wait is over.
func TestLimits(t *testing.T) {
	t.Run("messages per second", func(t *testing.T) {
		in := servertest.Start(t, func(c *server.Config) { c.MsgsPerSecond = 5 }) // bursts of 20
		a := signup(t, in, "alice")
		b := signup(t, in, "bob")
		befriend(t, a, b)
		var limited *wire.Err
		for i := 0; i < 40 && limited == nil; i++ {
			_, err := a.try(wire.Send{ID: natter.NewMessageID(time.Now()), To: "bob", Body: []byte("x")}, wire.TSendAck)
			if errCode(err) == wire.CodeRateLimited {
				limited = err.(*wire.Err)
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if limited == nil || limited.RetryAfter <= 0 || limited.Message == "" {
			t.Fatalf("no clear rate limit after a burst of sends: %+v", limited)
		}
		time.Sleep(time.Duration(limited.RetryAfter)*time.Millisecond + 50*time.Millisecond)
		sendMsg(t, a, "bob", "after the wait")
		if metric(t, in, "natter_rate_limited_total") < 1 {
			t.Error("natter_rate_limited_total did not count it")
		}
	})
	t.Run("contact requests per hour", func(t *testing.T) {
		in := servertest.Start(t, func(c *server.Config) { c.ContactReqsPerHour = 10 }) // bursts of 2
		a := signup(t, in, "alice")
		for _, u := range []string{"bob", "carol", "dave"} {
			signup(t, in, u)
		}
		a.call(wire.ContactOp{Op: natter.OpAdd, User: "bob"}, wire.TOK)
		a.call(wire.ContactOp{Op: natter.OpAdd, User: "carol"}, wire.TOK)
		_, err := a.try(wire.ContactOp{Op: natter.OpAdd, User: "dave"}, wire.TOK)
		if e, ok := err.(*wire.Err); !ok || e.Code != wire.CodeRateLimited || e.RetryAfter < 60_000 {
			t.Fatalf("third request in a burst of 2 at 10/hour: %v", err)
		}
		// Other operations are not limited.
		a.call(wire.ContactOp{Op: natter.OpRemove, User: "bob"}, wire.TOK)
	})
	t.Run("connections per address", func(t *testing.T) {
		in := servertest.Start(t, func(c *server.Config) { c.MaxConnsPerIP = 5 })
		var open []*raw
		for range 5 {
			open = append(open, hello(t, in))
		}
		// The sixth from the same address is refused before TLS.
		if c, err := tls.Dial("tcp", in.Addr, in.ClientTLS()); err == nil {
			c.Close()
			t.Fatal("a sixth connection from one address was accepted")
		}
		// Another address is not affected.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		c, err := tls.DialWithDialer(&d, "tcp", in.Addr, in.ClientTLS())
		if err != nil {
			t.Fatalf("another address: %v", err)
		}
		c.Close()
		// Closing one makes room.
		open[0].c.Close()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := tls.Dial("tcp", in.Addr, in.ClientTLS())
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no room after a connection closed: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// helloFrom connects from a loopback address of its own (127.0.0.x), as a
// client behind another address would, and says Hello.
func helloFrom(t *testing.T, in *servertest.Instance, lastByte byte) *raw {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, lastByte)}}
	c, err := tls.DialWithDialer(&d, "tcp", in.Addr, in.ClientTLS())
	if err != nil {
		t.Fatalf("dial from 127.0.0.%d: %v", lastByte, err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, r: wire.NewReader(c, 4<<20)}
	r.send(wire.Hello{V: wire.Version, Client: "rawtest"})
	r.expect(wire.TWelcome)
	return r
}

// TestChangePassword: the old password is checked as Login checks it
// (bad_credentials, then the back-off); after a change every other token of
// the user is refused by Resume, the user's other connections get
// Bye{logged_out}, and the connection that changed it stays logged in with a
// new token, which works.
func TestChangePassword(t *testing.T) {
	in := servertest.Start(t)
	a1 := signup(t, in, "alice")
	a2 := login(t, in, "alice", "")
	a2.drainLogin()
	b := signup(t, in, "bob")
	oldTokens := []string{a1.token, a2.token}

	// The new password is checked first, as at signup.
	if _, err := a1.try(wire.ChangePassword{Old: "password-alice", New: "short"}, wire.TAuthed); errCode(err) != wire.CodeBadRequest {
		t.Fatalf("a too short new password: %v", err)
	}
	// A wrong old password: bad_credentials with the back-off, then
	// rate_limited without checking, as for Login.
	_, err := a1.try(wire.ChangePassword{Old: "wrong-password", New: "new-password-alice"}, wire.TAuthed)
	e, ok := err.(*wire.Err)
	if !ok || e.Code != wire.CodeBadCredentials || e.RetryAfter <= 0 {
		t.Fatalf("wrong old password: %v", err)
	}
	if _, err := a1.try(wire.ChangePassword{Old: "password-alice", New: "new-password-alice"}, wire.TAuthed); errCode(err) != wire.CodeRateLimited {
		t.Fatalf("a retry during the back-off: %v", err)
	}
	// Login shares the account's back-off.
	r := hello(t, in)
	if _, err := r.try(wire.Login{User: "alice", Password: "password-alice", Device: "d9"}, wire.TAuthed); errCode(err) != wire.CodeRateLimited {
		t.Fatalf("login during the back-off: %v", err)
	}
	time.Sleep(time.Duration(e.RetryAfter)*time.Millisecond + 50*time.Millisecond)

	au := a1.call(wire.ChangePassword{Old: "password-alice", New: "new-password-alice"}, wire.TAuthed).(*wire.Authed)
	if au.User != "alice" || au.Device != a1.device || au.Token == "" || au.Token == a1.token || !au.Expires.After(time.Now()) {
		t.Fatalf("Authed after the change: %+v", au)
	}
	// alice's other connection is closed with Bye{logged_out}.
	if bye := a2.closed(5 * time.Second); bye == nil || bye.Code != wire.CodeLoggedOut {
		t.Fatalf("alice's other device: bye %+v, want logged_out", bye)
	}
	// This connection goes on: it can still message and be answered.
	a1.call(wire.Ping{}, wire.TPong)
	a1.call(wire.ListContacts{}, wire.TContacts)
	// bob is not affected.
	b.call(wire.Ping{}, wire.TPong)

	// Every old token is refused, this connection's own included.
	for i, tok := range oldTokens {
		r := hello(t, in)
		if _, err := r.try(wire.Resume{Token: tok}, wire.TAuthed); errCode(err) != wire.CodeSessionExpired {
			t.Fatalf("resume with old token %d: %v, want session_expired", i, err)
		}
	}
	// The old password no longer logs in; the new one does.
	r = hello(t, in)
	_, err = r.try(wire.Login{User: "alice", Password: "password-alice", Device: "d9"}, wire.TAuthed)
	if e, ok = err.(*wire.Err); !ok || e.Code != wire.CodeBadCredentials {
		t.Fatalf("login with the old password: %v", err)
	}
	time.Sleep(time.Duration(e.RetryAfter)*time.Millisecond + 50*time.Millisecond)
	r = hello(t, in)
	r.call(wire.Login{User: "alice", Password: "new-password-alice", Device: "d9"}, wire.TAuthed)
	// The new token resumes (on a connection of its own: the same device,
	// so it replaces a1).
	r = hello(t, in)
	if got := r.call(wire.Resume{Token: au.Token}, wire.TAuthed).(*wire.Authed); got.User != "alice" || got.Device != a1.device {
		t.Fatalf("resume with the new token: %+v", got)
	}
	if n := in.Metric(t, "natter_logins_total", `result="password_changed"`); n != 1 {
		t.Errorf(`natter_logins_total{result="password_changed"} = %v, want 1`, n)
	}
}

// TestNoSendingAsSomeoneElse: the server stamps every message with the
// sender's own name and device: a Send carrying from fields has them
// ignored, and a Copy of a message between two other users is refused.
func TestNoSendingAsSomeoneElse(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	c := signup(t, in, "carol")
	befriend(t, a, b)
	befriend(t, c, b)

	// Send has no from; one smuggled into the JSON is ignored.
	payload := `{"ref":9001,"id":"forged-1","to":"bob","body":"aGk=","from":"carol","from_device":"carols-phone","conv_seq":7}`
	a.writeBytes(wire.AppendFrame(nil, wire.TSend, []byte(payload)))
	for {
		if ack, ok := a.next().(*wire.SendAck); ok && ack.Ref == 9001 {
			break
		}
	}
	m := b.expect(wire.TMsg).(*wire.Msg)
	if m.ID != "forged-1" || m.From != "alice" || m.FromDevice != a.device || m.ConvSeq != 1 {
		t.Fatalf("bob got %+v, want it from alice's own device", m)
	}

	// A Copy names its users, so the server checks them: carol cannot
	// store a message "from alice to bob", nor one "from alice" to herself
	// unless alice is her contact, in anyone's inbox.
	for _, msg := range []wire.Message{
		{ID: "forged-2", From: "alice", To: "bob", Body: []byte("x")},
		{ID: "forged-3", From: "bob", To: "alice", Body: []byte("x")},
	} {
		if _, err := c.try(wire.Copy{Message: msg}, wire.TOK); errCode(err) != wire.CodeBadRequest {
			t.Fatalf("carol's copy of %s→%s: %v, want bad_request", msg.From, msg.To, err)
		}
	}
	if _, err := c.try(wire.Copy{Message: wire.Message{ID: "forged-4", From: "alice", To: "carol"}}, wire.TOK); errCode(err) != wire.CodeNotContact {
		t.Fatalf("carol's copy of a message from alice, not her contact: %v", err)
	}
	for _, r := range []*raw{a, b} {
		r.call(wire.Ping{}, wire.TPong)
		for _, v := range r.queue {
			if m, ok := v.(*wire.Msg); ok && m.ID != "forged-1" {
				t.Fatalf("%s got %+v from a refused copy", r.user, m)
			}
		}
	}
}

// TestNoReadingOthersInboxes: Sync returns only the caller's own inbox, and
// History only the caller's own conversation with the peer named: bob, a
// contact of both alice and carol, never sees what they say to each other.
func TestNoReadingOthersInboxes(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	c := signup(t, in, "carol")
	befriend(t, a, c)
	befriend(t, a, b)
	befriend(t, b, c)
	sendMsg(t, a, "carol", "alice to carol, private")
	sendMsg(t, c, "alice", "carol to alice, private")
	sendMsg(t, a, "bob", "alice to bob")
	sendMsg(t, c, "bob", "carol to bob")
	c.call(wire.Receipt{Peer: "alice", Upto: 1, State: natter.ReceiptRead}, wire.TOK)

	// Sync from the start, on bob's connection and on a new device of his.
	b2 := login(t, in, "bob", "")
	b2.drainLogin()
	for _, r := range []*raw{b, b2} {
		r.ref++
		ref := r.ref
		r.send(wire.Sync{Ref: ref, After: 0})
		n := 0
		for {
			v := r.next()
			ib, ok := v.(*wire.Inbox)
			if !ok || ib.Ref != ref {
				continue
			}
			for _, g := range ib.Groups {
				for _, m := range g.Messages {
					n++
					if m.From != "bob" && m.To != "bob" {
						t.Fatalf("bob's Sync returned %s→%s %q", m.From, m.To, m.Body)
					}
				}
				for _, rc := range g.Receipts {
					if rc.From != "bob" && rc.To != "bob" {
						t.Fatalf("bob's Sync returned a receipt %s→%s", rc.From, rc.To)
					}
				}
			}
			if ib.Done {
				break
			}
		}
		if n != 2 {
			t.Fatalf("bob's Sync returned %d messages, want his 2", n)
		}
	}

	// History names one peer; the other side is always the caller.
	for _, peer := range []natter.UserID{"alice", "carol", "nobody"} {
		ms := b.call(wire.History{Peer: peer}, wire.TMessages).(*wire.Messages)
		for _, m := range ms.Messages {
			if m.From != "bob" && m.To != "bob" {
				t.Fatalf("bob's History with %s returned %s→%s %q", peer, m.From, m.To, m.Body)
			}
		}
	}
	// dave, a contact of nobody, finds nothing of anyone's.
	d := signup(t, in, "dave")
	for _, peer := range []natter.UserID{"alice", "bob", "carol"} {
		if ms := d.call(wire.History{Peer: peer}, wire.TMessages).(*wire.Messages); len(ms.Messages) != 0 {
			t.Fatalf("dave's History with %s: %d messages", peer, len(ms.Messages))
		}
	}
}

// TestLoginThrottlePerAddress: wrong passwords for many different accounts
// from one address are throttled once the address's free allowance (20) is
// spent, whichever accounts they name; a correct login to an account of the
// guesser's own in between does not reset the count; other addresses are
// not affected.
func TestLoginThrottlePerAddress(t *testing.T) {
	in := servertest.Start(t)
	signup(t, in, "alice")
	guesser := helloFrom(t, in, 3)
	guesser.call(wire.Signup{User: "mallory", Password: "password-mallory", Device: "m1"}, wire.TAuthed)
	guesser.drainLogin()

	attempt := func(r *raw, i int) error {
		r.t.Helper()
		// A new connection for each: a logged-in connection takes no Login.
		_, err := r.try(wire.Login{User: natter.UserID(fmt.Sprintf("victim%02d", i)), Password: "guess-password", Device: "d1"}, wire.TAuthed)
		return err
	}
	g := helloFrom(t, in, 3)
	for i := range 20 {
		if err := attempt(g, i); errCode(err) != wire.CodeBadCredentials {
			t.Fatalf("guess %d: %v, want bad_credentials", i, err)
		}
		if i == 10 {
			// mallory logs into her own account from the same address.
			m := helloFrom(t, in, 3)
			m.call(wire.Login{User: "mallory", Password: "password-mallory", Device: "m2"}, wire.TAuthed)
			m.c.Close()
		}
	}
	// The 21st failure puts the address in back-off...
	err := attempt(g, 20)
	if e, ok := err.(*wire.Err); !ok || e.Code != wire.CodeBadCredentials || e.RetryAfter <= 0 {
		t.Fatalf("guess 21: %v, want bad_credentials with a wait", err)
	}
	// ...so the next guess, for an account never tried, is refused unchecked,
	// and so is even a correct login from that address.
	if err := attempt(g, 21); errCode(err) != wire.CodeRateLimited {
		t.Fatalf("guess 22: %v, want rate_limited", err)
	}
	m := helloFrom(t, in, 3)
	if _, err := m.try(wire.Login{User: "mallory", Password: "password-mallory", Device: "m3"}, wire.TAuthed); errCode(err) != wire.CodeRateLimited {
		t.Fatalf("a correct login from the throttled address: %v, want rate_limited", err)
	}
	// Another address logs in at once.
	r := helloFrom(t, in, 4)
	r.call(wire.Login{User: "alice", Password: "password-alice", Device: "a2"}, wire.TAuthed)
	if n := in.Metric(t, "natter_logins_total", `result="throttled"`); n < 2 {
		t.Errorf(`natter_logins_total{result="throttled"} = %v, want at least 2`, n)
	}
}
