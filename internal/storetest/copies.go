package storetest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/natterim/natter"
)

// testAppendCopy stores copies with the owner as sender and as recipient,
// among messages and receipts: each lands in its owner's inbox only, on the
// same counter as messages and receipts, marked Copy and without a
// conversation sequence number; the peer's inbox and the conversation are
// untouched.
func testAppendCopy(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob", "carol")
	m1 := send(t, s, "alice", "bob", "m1", "one").Message // alice 1, bob 1

	// alice's copy of a message she sent bob directly.
	out := direct("alice", "bob", "p1", "alice to bob, directly")
	out.ConvSeq = 999 // ignored by the store
	if seq := appendCopy(t, s, "alice", out); seq != 2 {
		t.Errorf("AppendCopy(alice, alice→bob) = %d, want 2 (after m1 in alice's inbox)", seq)
	}
	// alice's copy of a message bob sent her directly.
	in := direct("bob", "alice", "p2", "bob to alice, directly")
	if seq := appendCopy(t, s, "alice", in); seq != 3 {
		t.Errorf("AppendCopy(alice, bob→alice) = %d, want 3", seq)
	}
	rc := natter.Receipt{From: "bob", To: "alice", Upto: 1, State: natter.ReceiptRead, At: at(5)}
	toSeq, fromSeq, err := s.AppendReceipt(ctx, rc)
	if err != nil {
		t.Fatalf("AppendReceipt: %v", err)
	}
	if toSeq != 4 || fromSeq != 2 {
		t.Errorf("AppendReceipt after alice's copies = %d, %d, want 4, 2 (copies count in alice's inbox only)", toSeq, fromSeq)
	}
	// bob's copy of a message he sent alice directly.
	own := direct("bob", "alice", "p3", "bob's own copy")
	if seq := appendCopy(t, s, "bob", own); seq != 3 {
		t.Errorf("AppendCopy(bob, bob→alice) = %d, want 3", seq)
	}
	// The copies took no conversation sequence number.
	m2 := send(t, s, "bob", "alice", "m2", "two")
	if m2.Message.ConvSeq != 2 || m2.ToSeq != 5 || m2.FromSeq != 4 {
		t.Errorf("AppendMessage after the copies: ConvSeq %d, ToSeq %d, FromSeq %d, want 2, 5, 4",
			m2.Message.ConvSeq, m2.ToSeq, m2.FromSeq)
	}

	checkInbox(t, s, "alice", []entry{
		{seq: 1, message: &m1},
		{seq: 2, message: asCopy(out), copy: true},
		{seq: 3, message: asCopy(in), copy: true},
		{seq: 4, receipt: &rc},
		{seq: 5, message: &m2.Message},
	})
	checkInbox(t, s, "bob", []entry{
		{seq: 1, message: &m1},
		{seq: 2, receipt: &rc},
		{seq: 3, message: asCopy(own), copy: true},
		{seq: 4, message: &m2.Message},
	})
	checkInbox(t, s, "carol", nil)
	conv, err := s.Conversation(ctx, "alice", "bob", 0, 10)
	if err != nil {
		t.Fatalf("Conversation: %v", err)
	}
	if len(conv) != 2 || conv[0].ID != "m1" || conv[1].ID != "m2" {
		t.Errorf("Conversation(alice, bob) = %d messages, want m1 and m2 only (no copies)", len(conv))
	}
}

// testAppendCopyIdempotent repeats a copy with every field but the key
// (owner, From, ID) changed: each repeat returns the first copy's sequence
// number with dup set and stores nothing.
func testAppendCopyIdempotent(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob", "carol")
	before := send(t, s, "bob", "alice", "before", "so that the copy is not at 1").Message
	first := natter.Message{
		ID: "0195d1c2a3b47c8d9e0f1a2b3c4d5e6f", From: "alice", FromDevice: "phone", To: "bob",
		Body: []byte("first"), SentAt: at(1),
	}
	seq1 := appendCopy(t, s, "alice", first)
	if seq1 != 2 {
		t.Fatalf("AppendCopy = %d, want 2", seq1)
	}

	for _, r := range []struct {
		name string
		edit func(m *natter.Message)
	}{
		{"same", func(m *natter.Message) {}},
		{"other body", func(m *natter.Message) { m.Body = []byte("second") }},
		{"nil body", func(m *natter.Message) { m.Body = nil }},
		{"other device and time", func(m *natter.Message) { m.FromDevice = "laptop"; m.SentAt = at(50) }},
		{"other conv seq", func(m *natter.Message) { m.ConvSeq = 7 }},
		{"other recipient", func(m *natter.Message) { m.To = "carol"; m.Body = []byte("third") }},
	} {
		t.Run(r.name, func(t *testing.T) {
			m := first
			m.Body = bytes.Clone(first.Body)
			r.edit(&m)
			seq, dup, err := s.AppendCopy(ctx, "alice", m)
			if err != nil {
				t.Fatalf("AppendCopy repeat: %v", err)
			}
			if !dup || seq != seq1 {
				t.Errorf("AppendCopy repeat = %d, dup %v; want the first copy's %d, dup true", seq, dup, seq1)
			}
		})
	}

	// Nothing new was stored, and the first copy is what is kept.
	checkInbox(t, s, "alice", []entry{
		{seq: 1, message: &before},
		{seq: 2, message: &first, copy: true},
	})
	checkInbox(t, s, "carol", nil)

	// The repeats used up no sequence numbers.
	if seq := appendCopy(t, s, "alice", direct("alice", "bob", "next", "next")); seq != 3 {
		t.Errorf("AppendCopy after repeats = %d, want 3", seq)
	}
	// The same ID from another sender is another copy, and its repeat a
	// repeat of it.
	other := first
	other.From, other.To, other.Body = "bob", "alice", []byte("bob's")
	if seq := appendCopy(t, s, "alice", other); seq != 4 {
		t.Errorf("AppendCopy of bob's message with alice's ID = %d, want 4 (a new copy)", seq)
	}
	if seq, dup, err := s.AppendCopy(ctx, "alice", other); err != nil || !dup || seq != 4 {
		t.Errorf("repeat of bob's = %d, %v, %v; want 4, true, nil", seq, dup, err)
	}
	if seq, dup, err := s.AppendCopy(ctx, "alice", first); err != nil || !dup || seq != seq1 {
		t.Errorf("repeat of alice's after bob's = %d, %v, %v; want %d, true, nil", seq, dup, err, seq1)
	}
	// bob, the peer, got none of alice's copies.
	checkInbox(t, s, "bob", []entry{{seq: 1, message: &before}})
}

// testAppendCopyKeys checks that copies and messages have separate
// idempotency keys: the same (From, ID) may be stored as a message and as a
// copy, in either order, and each user of a direct exchange may hold a copy
// of the same message.
func testAppendCopyKeys(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")

	// A message first, then both users' copies of it.
	m := send(t, s, "alice", "bob", "shared", "sent through the server, then directly").Message
	if seq := appendCopy(t, s, "alice", m); seq != 2 {
		t.Errorf("alice's copy of a stored message = %d, want 2", seq)
	}
	if seq := appendCopy(t, s, "bob", m); seq != 2 {
		t.Errorf("bob's copy of the message alice also copied = %d, want 2", seq)
	}
	again, err := s.AppendMessage(ctx, m)
	if err != nil {
		t.Fatalf("AppendMessage retry: %v", err)
	}
	if !again.Duplicate || again.Message.ConvSeq != 1 || again.ToSeq != 1 || again.FromSeq != 1 {
		t.Errorf("AppendMessage retry after the copies = %+v, want the first message (ConvSeq 1, seqs 1, 1) as a duplicate", again)
	}

	// Copies first, then the message (a direct send that fell back to the
	// server with the same ID).
	n := direct("bob", "alice", "copied-first", "directly, then through the server")
	if seq := appendCopy(t, s, "bob", n); seq != 3 {
		t.Errorf("bob's copy = %d, want 3", seq)
	}
	if seq := appendCopy(t, s, "alice", n); seq != 3 {
		t.Errorf("alice's copy = %d, want 3", seq)
	}
	a, err := s.AppendMessage(ctx, n)
	if err != nil {
		t.Fatalf("AppendMessage of a copied message: %v", err)
	}
	if a.Duplicate || a.Message.ConvSeq != 2 || a.ToSeq != 4 || a.FromSeq != 4 {
		t.Errorf("AppendMessage of a copied message = %+v, want a new message at ConvSeq 2, seqs 4, 4", a)
	}

	for _, owner := range []natter.UserID{"alice", "bob"} {
		checkInbox(t, s, owner, []entry{
			{seq: 1, message: &m},
			{seq: 2, message: asCopy(m), copy: true},
			{seq: 3, message: asCopy(n), copy: true},
			{seq: 4, message: &a.Message},
		})
		for _, c := range []struct {
			m   natter.Message
			seq uint64
		}{{m, 2}, {n, 3}} {
			if seq, dup, err := s.AppendCopy(ctx, owner, c.m); err != nil || !dup || seq != c.seq {
				t.Errorf("repeat of %s's copy of %s = %d, %v, %v; want %d, true, nil", owner, c.m.ID, seq, dup, err, c.seq)
			}
		}
	}
}

// testAppendCopyErrors checks the refusals: an owner who is neither sender
// nor recipient, and an owner who has not signed up. A refused copy stores
// nothing and uses up no sequence number.
func testAppendCopyErrors(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob", "carol")
	for _, tt := range []struct {
		name  string
		owner natter.UserID
		m     natter.Message
		want  error
	}{
		{"a third user", "carol", direct("alice", "bob", "x1", "not carol's"), natter.ErrBadRequest},
		{"no owner", "", direct("alice", "bob", "x2", "nobody's"), natter.ErrBadRequest},
		{"unknown sender as owner", "nobody", direct("nobody", "alice", "x3", "from nobody"), natter.ErrNoSuchUser},
		{"unknown recipient as owner", "nobody", direct("alice", "nobody", "x4", "to nobody"), natter.ErrNoSuchUser},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.AppendCopy(ctx, tt.owner, tt.m)
			wantErr(t, "AppendCopy", err, tt.want)
		})
	}
	for _, u := range []natter.UserID{"alice", "bob", "carol", "nobody"} {
		checkInbox(t, s, u, nil)
	}
	// carol's refused copy used up nothing of hers: her first entry is 1.
	if seq := appendCopy(t, s, "carol", direct("carol", "alice", "x1", "carol's own")); seq != 1 {
		t.Errorf("carol's first copy = %d, want 1", seq)
	}
	a := send(t, s, "alice", "bob", "after", "after the refusals")
	if a.Message.ConvSeq != 1 || a.ToSeq != 1 || a.FromSeq != 1 {
		t.Errorf("first message after the refusals = ConvSeq %d, seqs %d, %d; want 1, 1, 1", a.Message.ConvSeq, a.ToSeq, a.FromSeq)
	}
}

// testAppendCopyBody stores copies with awkward bodies and reads them back
// byte for byte.
func testAppendCopyBody(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	for i, tt := range testBodies() {
		t.Run(tt.name, func(t *testing.T) {
			m := natter.Message{
				ID: natter.MessageID(fmt.Sprintf("body-%d", i)), From: "alice", FromDevice: "phone", To: "bob",
				Body: bytes.Clone(tt.body), SentAt: at(i),
			}
			seq := appendCopy(t, s, "bob", m)
			entries, err := s.Inbox(ctx, "bob", seq-1, 1)
			if err != nil || len(entries) != 1 || entries[0].Message == nil {
				t.Fatalf("Inbox(bob, %d, 1) = %v, %v; want the copy", seq-1, entries, err)
			}
			checkEntry(t, "Inbox entry", entries[0], entry{seq: seq, message: asCopy(m), copy: true})
			if !bytes.Equal(entries[0].Message.Body, tt.body) {
				t.Errorf("Inbox body = %x, want %x", clip(entries[0].Message.Body), clip(tt.body))
			}
			if again, dup, err := s.AppendCopy(ctx, "bob", m); err != nil || !dup || again != seq {
				t.Errorf("AppendCopy repeat = %d, %v, %v; want %d, true, nil", again, dup, err, seq)
			}
		})
	}
}

// testInboxPagingCopies pages through an inbox in which copies (as sender
// and as recipient) interleave with messages and receipts, with other users'
// copies written in between.
func testInboxPagingCopies(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob", "carol")
	var want []entry
	for i := range 12 {
		seq := uint64(i + 1)
		id := natter.MessageID(fmt.Sprintf("e-%d", i))
		switch i % 4 {
		case 0:
			a := send(t, s, "bob", "alice", id, "to alice")
			want = append(want, entry{seq: seq, message: &a.Message})
		case 1:
			m := direct("alice", "carol", id, "alice's, directly")
			appendCopy(t, s, "alice", m)
			want = append(want, entry{seq: seq, message: asCopy(m), copy: true})
		case 2:
			r := natter.Receipt{From: "alice", To: "bob", Upto: uint64(i), State: natter.ReceiptDelivered, At: at(i)}
			if _, _, err := s.AppendReceipt(ctx, r); err != nil {
				t.Fatalf("AppendReceipt: %v", err)
			}
			want = append(want, entry{seq: seq, receipt: &r})
		case 3:
			m := direct("bob", "alice", id, "bob's, directly")
			appendCopy(t, s, "alice", m)
			want = append(want, entry{seq: seq, message: asCopy(m), copy: true})
		}
		// Not alice's: bob's and carol's copies of the same exchanges.
		appendCopy(t, s, "bob", direct("bob", "carol", id, "bob's own"))
		appendCopy(t, s, "carol", direct("alice", "carol", id, "carol's own"))
	}
	checkInbox(t, s, "alice", want)
	full, err := s.Inbox(ctx, "alice", 0, 100)
	if err != nil {
		t.Fatalf("Inbox: %v", err)
	}
	checkPaging(t, s, "alice", full, []int{1, 2, 3, 5, 12, 13})

	// Pages that start and end on copies.
	for _, tt := range []struct {
		after uint64
		limit int
		want  []entry
	}{
		{1, 1, want[1:2]},
		{1, 3, want[1:4]},
		{3, 2, want[3:5]},
		{10, 5, want[10:]},
		{12, 5, nil},
	} {
		t.Run(fmt.Sprintf("after %d limit %d", tt.after, tt.limit), func(t *testing.T) {
			got, err := s.Inbox(ctx, "alice", tt.after, tt.limit)
			if err != nil {
				t.Fatalf("Inbox: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Inbox returned seqs %v, want %d entries", seqs(got), len(tt.want))
			}
			for i := range got {
				if got[i].Seq != tt.want[i].seq {
					t.Fatalf("Inbox returned seqs %v, want from %d", seqs(got), tt.want[0].seq)
				}
				checkEntry(t, fmt.Sprintf("entry %d", i), got[i], tt.want[i])
			}
		})
	}
}
