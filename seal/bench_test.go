package seal

import (
	"testing"
	"time"

	"github.com/natterim/natter"
)

// BenchmarkSealOpen: one 200-byte message from alice's phone to bob's one
// device over an established session (the steady state of a conversation):
// seal, then open.
func BenchmarkSealOpen(b *testing.B) {
	w := newWorld(&testing.T{})
	a := w.add("alice", "phone")
	bob := w.add("bob", "phone")
	peers := w.peers(a, "bob")
	body := make([]byte, 200)
	lookup := w.lookup(bob)
	first := natter.NewMessageID(time.Now()) // opens the session
	env, err := a.Seal(first, "bob", body, peers)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bob.Open(first, "alice", "bob", env, lookup); err != nil {
		b.Fatal(err)
	}
	for i := range peers {
		peers[i].Prekey = nil // used: a later session (after 10,000 messages) takes the last-resort key
	}
	var size int
	for b.Loop() {
		id := natter.NewMessageID(time.Now())
		env, err := a.Seal(id, "bob", body, peers)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bob.Open(id, "alice", "bob", env, lookup); err != nil {
			b.Fatal(err)
		}
		bob.Forget(id) // as the SDK does once the message is acknowledged
		size = len(env)
	}
	b.ReportMetric(float64(size), "envelope-bytes")
}

// BenchmarkSessionInit: opening a new session (HPKE with ML-KEM-768 +
// X25519 to a one-time prekey, signed init) and the receiver's side of it.
func BenchmarkSessionInit(b *testing.B) {
	w := newWorld(&testing.T{})
	a := w.add("alice", "phone")
	bob := w.add("bob", "phone")
	lookup := w.lookup(bob)
	body := make([]byte, 200)
	var size int
	for b.Loop() {
		a.ForgetSessions("bob")
		peers := w.peers(a, "bob") // last-resort key once the stock is used up
		id := natter.NewMessageID(time.Now())
		env, err := a.Seal(id, "bob", body, peers)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bob.Open(id, "alice", "bob", env, lookup); err != nil {
			b.Fatal(err)
		}
		size = len(env)
	}
	b.ReportMetric(float64(size), "envelope-bytes")
}

// BenchmarkSealAcked: a 64-byte text from alice's phone to bob's phone
// (one device each) before bob's device acknowledged the session (the
// message carries the session's init) and after: envelope-bytes is what
// each message costs on the wire and in the store.
func BenchmarkSealAcked(b *testing.B) {
	for _, acked := range []bool{false, true} {
		name := "unacknowledged"
		if acked {
			name = "acknowledged"
		}
		b.Run(name, func(b *testing.B) {
			w := newWorld(&testing.T{})
			a := w.add("alice", "phone")
			bob := w.add("bob", "phone")
			peers := w.peers(a, "bob")
			body := make([]byte, 64)
			first := natter.NewMessageID(time.Now())
			env, err := a.Seal(first, "bob", body, peers)
			if err != nil {
				b.Fatal(err)
			}
			o, err := bob.Open(first, "alice", "bob", env, w.lookup(bob))
			if err != nil {
				b.Fatal(err)
			}
			if acked {
				if ok, err := a.Acknowledged("bob", "phone", o.Ack.SID, o.Ack.MAC); !ok {
					b.Fatal("not acknowledged", err)
				}
			}
			var size int
			for b.Loop() {
				env, err := a.Seal(natter.NewMessageID(time.Now()), "bob", body, peers)
				if err != nil {
					b.Fatal(err)
				}
				size = len(env)
			}
			b.ReportMetric(float64(size), "envelope-bytes")
		})
	}
}
