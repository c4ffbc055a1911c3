package test

import (
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// typingFrom returns the senders of the TypingIn frames among frames.
func typingFrom(frames []any) []natter.UserID {
	var out []natter.UserID
	for _, v := range frames {
		if ti, ok := v.(*wire.TypingIn); ok {
			out = append(out, ti.From)
		}
	}
	return out
}

// TestTyping: a typing notification reaches an approved contact's online
// devices, not their quiet sessions; one from a non-contact is dropped
// without an answer; none is stored (a recipient who was offline gets
// nothing at login); and a flood is cut to the rate.
func TestTyping(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	c := signup(t, in, "carol")
	befriend(t, a, b)
	bq := quietLogin(t, in, "bob", "")

	// barrier makes sure the server has handled what from sent, then
	// returns what each of to got meanwhile.
	barrier := func(from *raw, to ...*raw) [][]natter.UserID {
		t.Helper()
		from.barrier()
		var out [][]natter.UserID
		for _, r := range to {
			out = append(out, typingFrom(r.barrier()))
		}
		return out
	}

	a.send(wire.Typing{To: "bob"})
	got := barrier(a, b, bq)
	if len(got[0]) != 1 || got[0][0] != "alice" {
		t.Fatalf("bob got typing from %v, want alice once", got[0])
	}
	if len(got[1]) != 0 {
		t.Fatalf("bob's quiet session got typing from %v", got[1])
	}

	// Not a contact, or no such user: dropped, no answer, connection kept.
	c.send(wire.Typing{To: "bob"})
	c.send(wire.Typing{To: "nobody-here"})
	c.send(wire.Typing{To: "NOT A NAME"})
	if got := barrier(c, b); len(got[0]) != 0 {
		t.Fatalf("bob got typing from %v, a non-contact", got[0])
	}
	for _, v := range c.barrier() {
		t.Fatalf("carol got %T %+v for her typing", v, v)
	}

	// Never stored: bob logs out, alice types, bob comes back to nothing.
	b.call(wire.Logout{}, wire.TOK)
	b.closed(5 * time.Second)
	bq.call(wire.Logout{}, wire.TOK)
	bq.closed(5 * time.Second)
	a.send(wire.Typing{To: "bob"})
	a.barrier()
	b2 := login(t, in, "bob", "")
	_, inbox := b2.drainLogin()
	for _, f := range inbox {
		if len(f.Groups) > 0 {
			t.Fatalf("bob's inbox after alice typed to him offline: %+v", f.Groups)
		}
	}
	if got := typingFrom(b2.barrier()); len(got) != 0 {
		t.Fatalf("bob got typing from %v at login", got)
	}

	// A flood: at most the burst, plus what refills meanwhile, gets
	// through; the rest is dropped.
	start := time.Now()
	const flood = 40
	for range flood {
		a.send(wire.Typing{To: "bob"})
	}
	n := len(barrier(a, b2)[0])
	if limit := 8 + int(4*time.Since(start).Seconds()) + 1; n == 0 || n > limit {
		t.Fatalf("bob got %d of %d typing notifications sent in %v; want 1 to %d", n, flood, time.Since(start), limit)
	}
}

// TestReceiptNamesMessage: a receipt may name a message by ID (one that
// went peer to peer has no conversation sequence number); the ID reaches
// the devices of both users that are online, and is checked. The store
// keeps it with the receipt: a device that gets the receipt from the inbox
// later, before or after natterd restarts, sees the same ID (and a receipt
// that named none, none).
func TestReceiptNamesMessage(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	b2 := login(t, in, "bob", "")
	b2.drainLogin()
	befriend(t, a, b)
	b2.barrier()

	sent := []wire.Receipt{
		{Peer: "alice", Upto: 3, ID: "direct-7", State: natter.ReceiptRead},
		{Peer: "alice", Upto: 4, State: natter.ReceiptDelivered},
	}
	for _, rc := range sent {
		b.call(rc, wire.TOK)
		for _, r := range []*raw{a, b2} {
			got := r.expect(wire.TRcpt).(*wire.Rcpt)
			if got.From != "bob" || got.To != "alice" || got.Upto != rc.Upto || got.ID != rc.ID || got.State != rc.State {
				t.Fatalf("%s got %+v, want %+v", r.user, got, rc)
			}
		}
	}
	if _, err := b.try(wire.Receipt{Peer: "alice", ID: "not an id", State: natter.ReceiptRead}, wire.TOK); errCode(err) != wire.CodeBadRequest {
		t.Fatalf("a receipt naming a bad ID: %v, want bad_request", err)
	}

	for _, tt := range []struct {
		name    string
		restart bool
	}{
		{"stored", false},
		{"after a restart", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.restart {
				in.Restart()
			}
			// A new device of each user's: its inbox holds both receipts.
			for _, user := range []string{"alice", "bob"} {
				r := login(t, in, user, "")
				_, inbox := r.drainLogin()
				var stored []wire.Rcpt
				for _, f := range inbox {
					for _, g := range f.Groups {
						stored = append(stored, g.Receipts...)
					}
				}
				if len(stored) != len(sent) {
					t.Fatalf("%s's new device got %+v from the inbox; want %+v", user, stored, sent)
				}
				for i, got := range stored {
					want := sent[i]
					if got.From != "bob" || got.To != "alice" || got.Upto != want.Upto || got.ID != want.ID || got.State != want.State {
						t.Errorf("%s's new device got receipt %+v from the inbox; want %+v", user, got, want)
					}
				}
			}
		})
	}
}
