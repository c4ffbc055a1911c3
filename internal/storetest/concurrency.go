package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/natterim/natter"
)

// testConcurrentAppends has 50 goroutines append messages (and some
// receipts and copies) at once to overlapping conversations, in both
// directions, and checks that every conversation and every inbox got
// gap-free, duplicate-free sequence numbers, and that what was acknowledged is
// what is stored. On a store with group commit this runs many writes per
// batch.
func testConcurrentAppends(t *testing.T, s natter.Store) {
	ctx := t.Context()
	users := []natter.UserID{"user0", "user1", "user2", "user3", "user4"}
	createUsers(t, s, users...)
	const (
		goroutines = 50
		perG       = 8
	)
	type item struct { // one acknowledged append
		g       int
		message *natter.Message
		receipt *natter.Receipt
		copy    natter.UserID // for a copy, its owner; its seq is toSeq
		toSeq   uint64
		fromSeq uint64
	}
	var (
		mu    sync.Mutex
		items []item
		wg    sync.WaitGroup
	)
	start := make(chan struct{})
	for g := range goroutines {
		from := users[g%len(users)]
		to := users[(g%len(users)+1+(g/len(users))%(len(users)-1))%len(users)]
		wg.Go(func() {
			<-start
			for i := range perG {
				m := natter.Message{
					ID: natter.MessageID(fmt.Sprintf("g%02d-%d", g, i)), From: from, FromDevice: "phone", To: to,
					Body: []byte(fmt.Sprintf("from goroutine %d, message %d", g, i)), SentAt: at(i),
				}
				a, err := s.AppendMessage(ctx, m)
				if err != nil {
					t.Errorf("goroutine %d: AppendMessage: %v", g, err)
					return
				}
				if a.Duplicate {
					t.Errorf("goroutine %d: message %s taken for a duplicate", g, m.ID)
				}
				mu.Lock()
				items = append(items, item{g: g, message: &a.Message, toSeq: a.ToSeq, fromSeq: a.FromSeq})
				mu.Unlock()
				if i%4 == 1 {
					// A copy of a direct message: the sender's,
					// or the recipient's with the ID of the
					// message just sent (a copy and a message
					// may share it).
					owner, c := from, m
					if i%8 == 5 {
						owner = to
					} else {
						c.ID += "-direct"
					}
					seq, dup, err := s.AppendCopy(ctx, owner, c)
					if err != nil || dup {
						t.Errorf("goroutine %d: AppendCopy(%s, %s): %d, dup %v, %v", g, owner, c.ID, seq, dup, err)
						return
					}
					mu.Lock()
					items = append(items, item{g: g, message: &c, copy: owner, toSeq: seq})
					mu.Unlock()
				}
				if i%3 != 2 {
					continue
				}
				r := natter.Receipt{From: to, To: from, Upto: a.Message.ConvSeq, State: natter.ReceiptRead, At: at(i)}
				toSeq, fromSeq, err := s.AppendReceipt(ctx, r)
				if err != nil {
					t.Errorf("goroutine %d: AppendReceipt: %v", g, err)
					return
				}
				mu.Lock()
				items = append(items, item{g: g, receipt: &r, toSeq: toSeq, fromSeq: fromSeq})
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	// Sequence numbers as acknowledged.
	conv := map[[2]natter.UserID][]*natter.Message{}
	inbox := map[natter.UserID]map[uint64]item{}
	for _, u := range users {
		inbox[u] = map[uint64]item{}
	}
	addInbox := func(u natter.UserID, seq uint64, it item) {
		if prev, dup := inbox[u][seq]; dup {
			t.Fatalf("inbox seq %d of %s acknowledged twice: to %+v and %+v", seq, u, prev, it)
		}
		inbox[u][seq] = it
	}
	lastConvSeq := map[int]uint64{} // per goroutine
	for _, it := range items {
		if it.copy != "" {
			addInbox(it.copy, it.toSeq, it)
			continue
		}
		if m := it.message; m != nil {
			k := pairKey(m.From, m.To)
			conv[k] = append(conv[k], m)
			addInbox(m.To, it.toSeq, it)
			addInbox(m.From, it.fromSeq, it)
			if m.ConvSeq <= lastConvSeq[it.g] {
				t.Errorf("goroutine %d: ConvSeq %d after %d: a later send got an earlier position", it.g, m.ConvSeq, lastConvSeq[it.g])
			}
			lastConvSeq[it.g] = m.ConvSeq
		} else {
			addInbox(it.receipt.To, it.toSeq, it)
			addInbox(it.receipt.From, it.fromSeq, it)
		}
	}

	for k, msgs := range conv {
		slices.SortFunc(msgs, func(a, b *natter.Message) int { return int(a.ConvSeq) - int(b.ConvSeq) })
		for i, m := range msgs {
			if m.ConvSeq != uint64(i+1) {
				t.Fatalf("conversation %v: acknowledged ConvSeqs are not 1…%d without gaps or repeats (position %d holds %d)", k, len(msgs), i+1, m.ConvSeq)
			}
		}
		got, err := s.Conversation(ctx, k[0], k[1], 0, len(msgs)+10)
		if err != nil {
			t.Fatalf("Conversation(%v): %v", k, err)
		}
		if len(got) != len(msgs) {
			t.Fatalf("Conversation(%v) has %d messages, %d were acknowledged", k, len(got), len(msgs))
		}
		for i := range got {
			if d := diffMessage(got[i], *msgs[i]); d != "" {
				t.Fatalf("Conversation(%v)[%d]: %s", k, i, d)
			}
		}
	}

	for _, u := range users {
		n := len(inbox[u])
		want := make([]entry, n)
		for seq := uint64(1); seq <= uint64(n); seq++ {
			it, ok := inbox[u][seq]
			if !ok {
				t.Fatalf("inbox of %s: %d entries acknowledged, but none at seq %d (gap)", u, n, seq)
			}
			want[seq-1] = entry{seq: seq, message: it.message, receipt: it.receipt, copy: it.copy != ""}
		}
		checkInbox(t, s, u, want)
	}
}

// pairKey names the conversation between x and y, whichever way round.
func pairKey(x, y natter.UserID) [2]natter.UserID {
	if x > y {
		x, y = y, x
	}
	return [2]natter.UserID{x, y}
}

// testConcurrentDuplicates sends each of a few messages from many goroutines
// at once, as retries racing each other: exactly one append of each stores
// it, the others return that first copy.
func testConcurrentDuplicates(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	const (
		ids    = 5
		copies = 10
		prefix = "racing"
	)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results = map[natter.MessageID][]natter.Appended{}
	)
	start := make(chan struct{})
	for i := range ids * copies {
		id := natter.MessageID(fmt.Sprintf("%s-%d", prefix, i%ids))
		wg.Go(func() {
			<-start
			a, err := s.AppendMessage(ctx, natter.Message{
				ID: id, From: "alice", FromDevice: "phone", To: "bob",
				Body: []byte(fmt.Sprintf("copy %d", i)), SentAt: at(i),
			})
			if err != nil {
				t.Errorf("AppendMessage(%s): %v", id, err)
				return
			}
			mu.Lock()
			results[id] = append(results[id], a)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	var convSeqs []uint64
	for id, rs := range results {
		var firsts []natter.Appended
		for _, r := range rs {
			if !r.Duplicate {
				firsts = append(firsts, r)
			}
		}
		if len(firsts) != 1 {
			t.Fatalf("%s: %d of %d racing appends stored it, want exactly 1", id, len(firsts), len(rs))
		}
		first := firsts[0]
		for _, r := range rs {
			if d := diffMessage(r.Message, first.Message); d != "" || r.ToSeq != first.ToSeq || r.FromSeq != first.FromSeq {
				t.Fatalf("%s: a duplicate returned %+v (seqs %d, %d), not the first copy %+v (seqs %d, %d)",
					id, r.Message, r.ToSeq, r.FromSeq, first.Message, first.ToSeq, first.FromSeq)
			}
		}
		convSeqs = append(convSeqs, first.Message.ConvSeq)
	}
	slices.Sort(convSeqs)
	if !slices.Equal(convSeqs, []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("the %d messages got ConvSeqs %v, want 1…%d", ids, convSeqs, ids)
	}
	entries, err := s.Inbox(ctx, "bob", 0, 100)
	if err != nil {
		t.Fatalf("Inbox: %v", err)
	}
	if len(entries) != ids {
		t.Errorf("bob's inbox has %d entries, want %d", len(entries), ids)
	}
}

// testConcurrentCopyDuplicates appends each of a few copies from many
// goroutines at once, half of them for the sender and half for the
// recipient, as repeats racing each other: for each owner exactly one append
// stores it, the others return its sequence number with dup set.
func testConcurrentCopyDuplicates(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	const (
		ids     = 5
		repeats = 10
	)
	type key struct {
		owner natter.UserID
		id    natter.MessageID
	}
	type result struct {
		seq  uint64
		dup  bool
		body []byte
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results = map[key][]result{}
	)
	start := make(chan struct{})
	for i := range 2 * ids * repeats {
		k := key{owner: "alice", id: natter.MessageID(fmt.Sprintf("racing-%d", i%ids))}
		if i%2 == 1 {
			k.owner = "bob"
		}
		body := []byte(fmt.Sprintf("repeat %d", i))
		wg.Go(func() {
			<-start
			seq, dup, err := s.AppendCopy(ctx, k.owner, natter.Message{
				ID: k.id, From: "alice", FromDevice: "phone", To: "bob", Body: body, SentAt: at(i),
			})
			if err != nil {
				t.Errorf("AppendCopy(%s, %s): %v", k.owner, k.id, err)
				return
			}
			mu.Lock()
			results[k] = append(results[k], result{seq, dup, body})
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	stored := map[natter.UserID]map[uint64][]byte{"alice": {}, "bob": {}}
	for k, rs := range results {
		var firsts []result
		for _, r := range rs {
			if !r.dup {
				firsts = append(firsts, r)
			}
		}
		if len(firsts) != 1 {
			t.Fatalf("%s's copy of %s: %d of %d racing appends stored it, want exactly 1", k.owner, k.id, len(firsts), len(rs))
		}
		for _, r := range rs {
			if r.seq != firsts[0].seq {
				t.Fatalf("%s's copy of %s: a repeat returned seq %d, the first copy is at %d", k.owner, k.id, r.seq, firsts[0].seq)
			}
		}
		stored[k.owner][firsts[0].seq] = firsts[0].body
	}
	for owner, bodies := range stored {
		entries, err := s.Inbox(ctx, owner, 0, 100)
		if err != nil {
			t.Fatalf("Inbox(%s): %v", owner, err)
		}
		if len(entries) != ids {
			t.Fatalf("%s's inbox has %d entries (seqs %v), want %d", owner, len(entries), seqs(entries), ids)
		}
		for i, e := range entries {
			if e.Seq != uint64(i+1) || !e.Copy || e.Message == nil {
				t.Fatalf("%s's inbox[%d] = seq %d, copy %v, want copy at %d", owner, i, e.Seq, e.Copy, i+1)
			}
			if !bytes.Equal(e.Message.Body, bodies[e.Seq]) {
				t.Errorf("%s's inbox[%d] holds body %q, want the stored append's %q", owner, i, e.Message.Body, bodies[e.Seq])
			}
		}
	}
}

// testConcurrentCreateUser signs one name up from many goroutines at once:
// exactly one wins, the others get ErrUserExists.
func testConcurrentCreateUser(t *testing.T, s natter.Store) {
	ctx := t.Context()
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.CreateUser(ctx, "alice", fmt.Sprintf("hash-%d", i), at(i))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("CreateUser succeeded twice for one name (goroutines %d and %d)", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, natter.ErrUserExists):
			t.Fatalf("CreateUser lost the race with %v, want ErrUserExists", err)
		}
	}
	if winner < 0 {
		t.Fatalf("no CreateUser succeeded")
	}
	hash, err := s.PasswordHash(ctx, "alice")
	if err != nil {
		t.Fatalf("PasswordHash: %v", err)
	}
	if want := fmt.Sprintf("hash-%d", winner); hash != want {
		t.Errorf("PasswordHash = %q, want the winner's %q", hash, want)
	}
}
