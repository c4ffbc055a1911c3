package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// This file checks TrimInbox and ForgetTrimmed: what every device
// acknowledged goes, nothing else does, expiry goes in sequence order, and
// sequence numbers and idempotency survive a trim.

// touchDev calls TouchDevice (no cap) at time at(n) and fails t on error.
func touchDev(t *testing.T, s natter.Store, user natter.UserID, dev natter.DeviceID, n int) uint64 {
	t.Helper()
	c, err := s.TouchDevice(t.Context(), user, dev, at(n), 0)
	if err != nil {
		t.Fatalf("TouchDevice(%s/%s): %v", user, dev, err)
	}
	return c
}

// ackDev calls AckInbox and fails t on error.
func ackDev(t *testing.T, s natter.Store, user natter.UserID, dev natter.DeviceID, upto uint64) {
	t.Helper()
	if err := s.AckInbox(t.Context(), user, dev, upto); err != nil {
		t.Fatalf("AckInbox(%s/%s, %d): %v", user, dev, upto, err)
	}
}

// trimAll runs TrimInbox from "" until Done, limit entries a call, and
// returns the sums. It fails t if a call deletes more than limit or a pass
// takes absurdly many calls.
func trimAll(t *testing.T, s natter.Store, olderThan time.Time, limit int) natter.TrimResult {
	t.Helper()
	var sum natter.TrimResult
	from := natter.UserID("")
	for calls := 0; ; calls++ {
		if calls > 10_000 {
			t.Fatalf("TrimInbox: no Done after %d calls", calls)
		}
		r, err := s.TrimInbox(t.Context(), from, olderThan, limit)
		if err != nil {
			t.Fatalf("TrimInbox(%q, %v, %d): %v", from, olderThan, limit, err)
		}
		n := r.Acked
		for u, k := range r.Expired {
			if k <= 0 {
				t.Fatalf("TrimInbox: Expired[%s] = %d, want users with none left out", u, k)
			}
			n += k
			if sum.Expired == nil {
				sum.Expired = make(map[natter.UserID]int)
			}
			sum.Expired[u] += k
		}
		if n > max(limit, 1) {
			t.Fatalf("TrimInbox(limit %d) deleted %d entries", limit, n)
		}
		sum.Acked += r.Acked
		if r.Done {
			sum.Done = true
			return sum
		}
		from = r.Next
	}
}

// inboxSeqs returns the sequence numbers of user's whole inbox.
func inboxSeqs(t *testing.T, s natter.Store, user natter.UserID) []uint64 {
	t.Helper()
	es, err := s.Inbox(t.Context(), user, 0, 1_000_000)
	if err != nil {
		t.Fatalf("Inbox(%s): %v", user, err)
	}
	return seqs(es)
}

// convSeqs returns the conversation sequence numbers Conversation returns
// for a and b.
func convSeqs(t *testing.T, s natter.Store, a, b natter.UserID) []uint64 {
	t.Helper()
	ms, err := s.Conversation(t.Context(), a, b, 0, 1_000_000)
	if err != nil {
		t.Fatalf("Conversation(%s, %s): %v", a, b, err)
	}
	var out []uint64
	for _, m := range ms {
		out = append(out, m.ConvSeq)
	}
	return out
}

func span(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func checkSeqs(t *testing.T, what string, got, want []uint64) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// testTrimAcked follows two users through a trim, step by step: an entry
// goes once every device of its user acknowledged it, a message once both
// users' entries went (Conversation then skips it), and a retried send of a
// trimmed message is still a duplicate.
func testTrimAcked(t *testing.T, s natter.Store) {
	createUsers(t, s, "alice", "bob", "carol")
	touchDev(t, s, "alice", "phone", 0)
	touchDev(t, s, "alice", "laptop", 0)
	touchDev(t, s, "bob", "phone", 0)
	// carol has no device: nothing of hers is trimmed.
	first := send(t, s, "bob", "alice", "m1", "one") // alice 1, bob 1, conv 1
	send(t, s, "bob", "alice", "m2", "two")          // alice 2, bob 2, conv 2
	send(t, s, "alice", "bob", "m3", "three")        // alice 3, bob 3, conv 3
	if _, _, err := s.AppendReceipt(t.Context(), natter.Receipt{From: "alice", To: "bob", Upto: 2, State: natter.ReceiptRead, At: at(9)}); err != nil {
		t.Fatalf("AppendReceipt: %v", err) // bob 4, alice 4
	}
	appendCopy(t, s, "alice", direct("alice", "bob", "d1", "direct")) // alice 5
	send(t, s, "bob", "carol", "c1", "hi carol")                      // carol 1, bob 5

	steps := []struct {
		name       string
		do         func(t *testing.T)
		acked      int
		alice, bob []uint64 // inboxes after the trim
		conv       []uint64 // Conversation(alice, bob) after the trim
	}{
		{"nothing acknowledged", func(*testing.T) {}, 0, span(1, 5), span(1, 5), span(1, 3)},
		{"one device of two", func(t *testing.T) { ackDev(t, s, "alice", "phone", 5) }, 0, span(1, 5), span(1, 5), span(1, 3)},
		{"both devices, up to 2", func(t *testing.T) { ackDev(t, s, "alice", "laptop", 2) },
			2, span(3, 5), span(1, 5), span(1, 3)},
		{"bob up to 4: m1, m2 and the receipt go", func(t *testing.T) { ackDev(t, s, "bob", "phone", 4) },
			4, span(3, 5), []uint64{5}, []uint64{3}},
		{"alice to the end: m3 and the copy go", func(t *testing.T) { ackDev(t, s, "alice", "laptop", 5) },
			3, nil, []uint64{5}, nil},
		{"bob to the end: carol keeps hers", func(t *testing.T) { ackDev(t, s, "bob", "phone", 5) },
			1, nil, nil, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do(t)
			r := trimAll(t, s, time.Time{}, 100)
			if r.Acked != st.acked || len(r.Expired) != 0 {
				t.Fatalf("trim: Acked %d, Expired %v; want %d, none", r.Acked, r.Expired, st.acked)
			}
			checkSeqs(t, "alice's inbox", inboxSeqs(t, s, "alice"), st.alice)
			checkSeqs(t, "bob's inbox", inboxSeqs(t, s, "bob"), st.bob)
			checkSeqs(t, "Conversation(alice, bob)", convSeqs(t, s, "alice", "bob"), st.conv)
			checkSeqs(t, "carol's inbox", inboxSeqs(t, s, "carol"), []uint64{1})
		})
	}

	t.Run("a retried send of a trimmed message is a duplicate", func(t *testing.T) {
		a, err := s.AppendMessage(t.Context(), natter.Message{ID: "m1", From: "bob", FromDevice: "dev-bob", To: "alice", Body: []byte("one"), SentAt: at(99)})
		if err != nil {
			t.Fatalf("AppendMessage again: %v", err)
		}
		if !a.Duplicate || !a.Trimmed || len(a.Message.Body) != 0 {
			t.Fatalf("AppendMessage again: Duplicate %v, Trimmed %v, Body %q; want a trimmed duplicate without body", a.Duplicate, a.Trimmed, a.Message.Body)
		}
		if a.ToSeq != first.ToSeq || a.FromSeq != first.FromSeq || a.Message.ConvSeq != first.Message.ConvSeq || !sameTime(a.Message.SentAt, first.Message.SentAt) {
			t.Fatalf("AppendMessage again = seqs %d/%d conv %d sent %v; want the first copy's %d/%d conv %d sent %v",
				a.ToSeq, a.FromSeq, a.Message.ConvSeq, a.Message.SentAt, first.ToSeq, first.FromSeq, first.Message.ConvSeq, first.Message.SentAt)
		}
	})
	t.Run("a retried copy of a trimmed copy is a repeat", func(t *testing.T) {
		seq, dup, err := s.AppendCopy(t.Context(), "alice", direct("alice", "bob", "d1", "direct"))
		if err != nil || !dup || seq != 5 {
			t.Fatalf("AppendCopy again = %d, %v, %v; want 5, dup", seq, dup, err)
		}
	})
	t.Run("numbers are never given twice", func(t *testing.T) {
		a := send(t, s, "bob", "alice", "m4", "four")
		if a.ToSeq != 6 || a.FromSeq != 6 || a.Message.ConvSeq != 4 {
			t.Fatalf("next message: seqs %d/%d, conv %d; want 6/6, conv 4 (after emptied inboxes)", a.ToSeq, a.FromSeq, a.Message.ConvSeq)
		}
		checkSeqs(t, "Conversation(alice, bob)", convSeqs(t, s, "alice", "bob"), []uint64{4})
	})
	t.Run("a new device holds back what is left", func(t *testing.T) {
		ackDev(t, s, "alice", "phone", 6)
		ackDev(t, s, "alice", "laptop", 6)
		if c := touchDev(t, s, "alice", "tablet", 1); c != 0 {
			t.Fatalf("new device's cursor = %d, want 0", c)
		}
		if r := trimAll(t, s, time.Time{}, 100); r.Acked != 0 {
			t.Fatalf("trim with a new device at 0: Acked %d, want 0", r.Acked)
		}
		checkSeqs(t, "alice's inbox", inboxSeqs(t, s, "alice"), []uint64{6})
	})
	t.Run("a removed device no longer holds it back", func(t *testing.T) {
		if ok, err := s.RemoveDevice(t.Context(), "alice", "tablet", time.Time{}); err != nil || !ok {
			t.Fatalf("RemoveDevice = %v, %v; want removed", ok, err)
		}
		if r := trimAll(t, s, time.Time{}, 100); r.Acked != 1 {
			t.Fatalf("trim: Acked %d, want 1", r.Acked)
		}
		checkSeqs(t, "alice's inbox", inboxSeqs(t, s, "alice"), nil)
	})
}

// sendAt appends a message from → to sent at time at(n).
func sendAt(t *testing.T, s natter.Store, from, to natter.UserID, id natter.MessageID, n int) natter.Appended {
	t.Helper()
	a, err := s.AppendMessage(t.Context(), natter.Message{
		ID: id, From: from, FromDevice: "dev-" + natter.DeviceID(from), To: to, Body: []byte("body of " + id), SentAt: at(n),
	})
	if err != nil {
		t.Fatalf("AppendMessage(%s→%s %s): %v", from, to, id, err)
	}
	return a
}

// testTrimExpired checks expiry: entries older than olderThan go, in
// sequence order, whether acknowledged or not, and are counted by user; an
// entry that is not old enough holds back the ones after it; a message
// that expired is gone, so a retried send is stored anew.
func testTrimExpired(t *testing.T, s natter.Store) {
	createUsers(t, s, "alice", "bob")
	touchDev(t, s, "alice", "phone", 0)
	touchDev(t, s, "bob", "phone", 0)
	sendAt(t, s, "bob", "alice", "m1", 10) // alice 1, bob 1
	sendAt(t, s, "bob", "alice", "m2", 20) // alice 2, bob 2
	if _, _, err := s.AppendReceipt(t.Context(), natter.Receipt{From: "alice", To: "bob", Upto: 2, State: natter.ReceiptDelivered, At: at(25)}); err != nil {
		t.Fatalf("AppendReceipt: %v", err) // bob 3, alice 3
	}
	// A copy whose time lies ahead of the entries after it (alice 4).
	late := direct("alice", "bob", "d1", "late")
	late.SentAt = at(60)
	appendCopy(t, s, "alice", late)
	sendAt(t, s, "bob", "alice", "m3", 40) // alice 5, bob 4
	ackDev(t, s, "bob", "phone", 1)        // bob's first entry goes as acknowledged

	steps := []struct {
		name       string
		olderThan  int // at(olderThan)
		acked      int
		expired    map[natter.UserID]int
		alice, bob []uint64
	}{
		{"nothing that old", 10, 1, nil, span(1, 5), span(2, 4)},
		{"m1", 11, 0, map[natter.UserID]int{"alice": 1}, span(2, 5), span(2, 4)},
		{"m2 and the receipt; the copy holds back m3 in alice's inbox", 50,
			0, map[natter.UserID]int{"alice": 2, "bob": 3}, span(4, 5), nil},
		{"the copy, then m3", 61, 0, map[natter.UserID]int{"alice": 2}, nil, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := trimAll(t, s, at(st.olderThan), 100)
			if r.Acked != st.acked || !equalCounts(r.Expired, st.expired) {
				t.Fatalf("trim: Acked %d, Expired %v; want %d, %v", r.Acked, r.Expired, st.acked, st.expired)
			}
			checkSeqs(t, "alice's inbox", inboxSeqs(t, s, "alice"), st.alice)
			checkSeqs(t, "bob's inbox", inboxSeqs(t, s, "bob"), st.bob)
		})
	}
	t.Run("an expired message is gone: a retry is new", func(t *testing.T) {
		a := sendAt(t, s, "bob", "alice", "m1", 70)
		if a.Duplicate || a.ToSeq != 6 || a.FromSeq != 5 || a.Message.ConvSeq != 4 {
			t.Fatalf("m1 again: Duplicate %v, seqs %d/%d, conv %d; want new, 6/5, conv 4", a.Duplicate, a.ToSeq, a.FromSeq, a.Message.ConvSeq)
		}
	})
}

func equalCounts(a, b map[natter.UserID]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// testTrimPaging trims with small limits: each call deletes at most limit
// entries, a pass from "" to Done deletes everything acknowledged whatever
// the limit, and Next resumes where a call stopped, also inside one user's
// inbox.
func testTrimPaging(t *testing.T, s natter.Store) {
	users := []natter.UserID{"u1", "u2", "u3", "u4"}
	createUsers(t, s, users...)
	for _, u := range users {
		touchDev(t, s, u, "phone", 0)
	}
	for _, limit := range []int{0, 1, 2, 3, 7, 100} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			// u1 and u3 exchange 5 messages; u2 and u4 none: 10 entries
			// to trim, 5 in each of two inboxes, users between them with
			// none.
			for i := range 5 {
				sendAt(t, s, "u1", "u3", natter.MessageID(fmt.Sprintf("p%d-%d", limit, i)), i)
			}
			for _, u := range users {
				seqs := inboxSeqs(t, s, u)
				if len(seqs) > 0 {
					ackDev(t, s, u, "phone", seqs[len(seqs)-1])
				}
			}
			if r := trimAll(t, s, time.Time{}, limit); r.Acked != 10 {
				t.Fatalf("pass: Acked %d, want 10", r.Acked)
			}
			for _, u := range users {
				checkSeqs(t, string(u)+"'s inbox", inboxSeqs(t, s, u), nil)
			}
		})
	}
}

// testForgetTrimmed checks that a trimmed message or copy is kept for its
// idempotency key until ForgetTrimmed's olderThan passes its SentAt, and
// that a conversation's numbers go on above it once it is forgotten.
func testForgetTrimmed(t *testing.T, s natter.Store) {
	createUsers(t, s, "alice", "bob")
	touchDev(t, s, "alice", "phone", 0)
	touchDev(t, s, "bob", "phone", 0)
	sendAt(t, s, "alice", "bob", "m1", 10)
	sendAt(t, s, "alice", "bob", "m2", 20)
	c := direct("alice", "bob", "d1", "copy")
	c.SentAt = at(15)
	appendCopy(t, s, "alice", c) // alice 3
	ackDev(t, s, "alice", "phone", 3)
	ackDev(t, s, "bob", "phone", 2)
	if r := trimAll(t, s, time.Time{}, 100); r.Acked != 5 {
		t.Fatalf("trim: Acked %d, want 5", r.Acked)
	}
	forget := func(t *testing.T, n, want int) {
		t.Helper()
		got, err := s.ForgetTrimmed(t.Context(), at(n), 100)
		if err != nil || got != want {
			t.Fatalf("ForgetTrimmed(at(%d)) = %d, %v; want %d", n, got, err, want)
		}
	}
	isDup := func(t *testing.T, id natter.MessageID, want bool) {
		t.Helper()
		a, err := s.AppendMessage(t.Context(), natter.Message{ID: id, From: "alice", FromDevice: "dev-alice", To: "bob", Body: []byte("again"), SentAt: at(90)})
		if err != nil {
			t.Fatalf("AppendMessage(%s) again: %v", id, err)
		}
		if a.Duplicate != want {
			t.Fatalf("AppendMessage(%s) again: Duplicate %v, want %v", id, a.Duplicate, want)
		}
		if !want && a.Message.ConvSeq != 3 {
			t.Fatalf("AppendMessage(%s) again: ConvSeq %d, want 3 (never a number given before)", id, a.Message.ConvSeq)
		}
	}
	forget(t, 10, 0) // m1 was sent at at(10): not before it
	isDup(t, "m1", true)
	forget(t, 16, 2) // m1 and the copy
	seq, dup, err := s.AppendCopy(t.Context(), "alice", c)
	if err != nil || dup || seq != 4 {
		t.Fatalf("AppendCopy of the forgotten copy = %d, %v, %v; want 4, new", seq, dup, err)
	}
	isDup(t, "m2", true)
	isDup(t, "m1", false)
	forget(t, 100, 1) // m2; the new m1 and copy are not trimmed
	for _, lim := range []int{0, 1} {
		if n, err := s.ForgetTrimmed(t.Context(), at(100), lim); err != nil || n != 0 {
			t.Fatalf("ForgetTrimmed(limit %d) with nothing trimmed = %d, %v", lim, n, err)
		}
	}
}

// testTrimModel runs a seeded random mix of messages, receipts, copies,
// acknowledgements, new and removed devices and trims against a model of
// what each inbox must hold: every entry above the lowest cursor of its
// user's devices (all entries for a user with none) is still there, and
// nothing below it.
func testTrimModel(t *testing.T, s natter.Store) {
	users := []natter.UserID{"ann", "ben", "cat"}
	createUsers(t, s, users...)
	r := rand.New(rand.NewPCG(14, 8))
	held := map[natter.UserID][]uint64{}                      // the model's inboxes
	cursors := map[natter.UserID]map[natter.DeviceID]uint64{} // devices that exist
	last := map[natter.UserID]uint64{}
	for _, u := range users {
		cursors[u] = map[natter.DeviceID]uint64{}
	}
	add := func(u natter.UserID, seq uint64) {
		if seq != last[u]+1 {
			t.Fatalf("%s's next seq %d, want %d", u, seq, last[u]+1)
		}
		last[u] = seq
		held[u] = append(held[u], seq)
	}
	for i := range 250 {
		a, b := users[r.IntN(3)], users[r.IntN(3)]
		switch k := r.IntN(10); {
		case a == b && k < 6:
			continue
		case k < 3:
			m := sendAt(t, s, a, b, natter.MessageID(fmt.Sprintf("m%d", i)), i)
			add(b, m.ToSeq)
			add(a, m.FromSeq)
		case k < 4:
			ts, fs, err := s.AppendReceipt(t.Context(), natter.Receipt{From: a, To: b, Upto: 1, State: natter.ReceiptRead, At: at(i)})
			if err != nil {
				t.Fatalf("AppendReceipt: %v", err)
			}
			add(b, ts)
			add(a, fs)
		case k < 6:
			add(a, appendCopy(t, s, a, direct(a, b, natter.MessageID(fmt.Sprintf("c%d", i)), "x")))
		case k < 8:
			devs := []natter.DeviceID{"d1", "d2", "d3"}
			d := devs[r.IntN(3)]
			if _, ok := cursors[a][d]; !ok {
				cursors[a][d] = touchDev(t, s, a, d, i)
			}
			// A device acknowledges only what its inbox holds.
			up := min(cursors[a][d]+uint64(r.IntN(4)), last[a])
			ackDev(t, s, a, d, up)
			cursors[a][d] = max(cursors[a][d], up)
		case k < 9 && len(cursors[a]) > 0:
			for d := range cursors[a] {
				if _, err := s.RemoveDevice(t.Context(), a, d, time.Time{}); err != nil {
					t.Fatalf("RemoveDevice: %v", err)
				}
				delete(cursors[a], d)
				break
			}
		default:
			trimAll(t, s, time.Time{}, 1+r.IntN(5))
			for _, u := range users {
				if len(cursors[u]) > 0 {
					low := uint64(1 << 62)
					for _, c := range cursors[u] {
						low = min(low, c)
					}
					held[u] = slices.DeleteFunc(held[u], func(seq uint64) bool { return seq <= low })
				}
				checkSeqs(t, fmt.Sprintf("step %d: %s's inbox", i, u), inboxSeqs(t, s, u), held[u])
			}
		}
	}
}

// testConcurrentTrim trims in a loop while messages are appended and
// cursors move from other goroutines, then checks that every user's inbox
// holds every entry above the lowest cursor of the user's devices, without
// a gap, and that each appended message is among them with its body.
func testConcurrentTrim(t *testing.T, s natter.Store) {
	ctx := t.Context()
	users := []natter.UserID{"u0", "u1", "u2", "u3"}
	devs := []natter.DeviceID{"fast", "slow"}
	createUsers(t, s, users...)
	for _, u := range users {
		for _, d := range devs {
			touchDev(t, s, u, d, 0)
		}
	}
	type entry struct {
		user natter.UserID
		seq  uint64
	}
	var (
		mu   sync.Mutex
		sent = map[entry]natter.MessageID{}
		high = map[natter.UserID]uint64{}
	)
	errs := make(chan error, 16)
	var appenders, others sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		appenders.Go(func() {
			for i := range 40 {
				from, to := users[g], users[(g+1+i%3)%4]
				id := natter.MessageID(fmt.Sprintf("g%d-%d", g, i))
				a, err := s.AppendMessage(ctx, natter.Message{ID: id, From: from, FromDevice: "fast", To: to, Body: []byte("body " + id), SentAt: at(i)})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				sent[entry{to, a.ToSeq}], sent[entry{from, a.FromSeq}] = id, id
				high[to], high[from] = max(high[to], a.ToSeq), max(high[from], a.FromSeq)
				mu.Unlock()
			}
		})
	}
	others.Go(func() { // "fast" acknowledges all it has seen, "slow" half
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, u := range users {
				mu.Lock()
				h := high[u]
				mu.Unlock()
				if err := s.AckInbox(ctx, u, "fast", h); err != nil {
					errs <- err
					return
				}
				if err := s.AckInbox(ctx, u, "slow", h/2); err != nil {
					errs <- err
					return
				}
			}
		}
	})
	others.Go(func() {
		for from := natter.UserID(""); ; {
			select {
			case <-stop:
				return
			default:
			}
			r, err := s.TrimInbox(ctx, from, time.Time{}, 7)
			if err != nil {
				errs <- err
				return
			}
			from = r.Next
			if r.Done {
				from = ""
			}
		}
	})
	appenders.Wait()
	close(stop)
	others.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent append, ack or trim: %v", err)
	}
	trimAll(t, s, time.Time{}, 100)
	for _, u := range users {
		low := uint64(1 << 62)
		for _, d := range devs {
			low = min(low, touchDev(t, s, u, d, 1))
		}
		es, err := s.Inbox(ctx, u, low, 1_000_000)
		if err != nil {
			t.Fatalf("Inbox(%s): %v", u, err)
		}
		checkSeqs(t, fmt.Sprintf("%s's inbox above its lowest cursor %d", u, low), seqs(es), span(low+1, high[u]))
		for _, e := range es {
			id := sent[entry{u, e.Seq}]
			if e.Message == nil || e.Message.ID != id || string(e.Message.Body) != "body "+string(id) {
				t.Fatalf("%s's entry %d = %+v, want message %s with its body", u, e.Seq, e.Message, id)
			}
		}
	}
}
