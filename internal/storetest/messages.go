package storetest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter"
)

func testAppendMessageSequences(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob", "carol")
	// Each send with the Appended it must return: conversation sequences are
	// per unordered pair, inbox sequences per user.
	sends := []struct {
		from, to       natter.UserID
		convSeq        uint64
		toSeq, fromSeq uint64
	}{
		{"alice", "bob", 1, 1, 1},
		{"bob", "alice", 2, 2, 2}, // the reply shares the conversation
		{"alice", "bob", 3, 3, 3},
		{"alice", "carol", 1, 1, 4}, // a new pair starts at 1
		{"carol", "bob", 1, 4, 2},
		{"bob", "carol", 2, 3, 5},
		{"alice", "bob", 4, 6, 5},
	}
	var inbox = map[natter.UserID][]entry{}
	for i, sd := range sends {
		m := natter.Message{
			ID:         natter.MessageID(fmt.Sprintf("msg-%d", i)),
			From:       sd.from,
			FromDevice: "phone",
			To:         sd.to,
			Body:       []byte(fmt.Sprintf("message %d", i)),
			ConvSeq:    999, // ignored by the store
			SentAt:     at(i),
		}
		got, err := s.AppendMessage(ctx, m)
		if err != nil {
			t.Fatalf("AppendMessage #%d %s→%s: %v", i, sd.from, sd.to, err)
		}
		want := m
		want.ConvSeq = sd.convSeq
		if d := diffMessage(got.Message, want); d != "" {
			t.Errorf("AppendMessage #%d: Message %s", i, d)
		}
		if got.Duplicate {
			t.Errorf("AppendMessage #%d: Duplicate set on a first append", i)
		}
		if got.ToSeq != sd.toSeq || got.FromSeq != sd.fromSeq {
			t.Errorf("AppendMessage #%d %s→%s: ToSeq, FromSeq = %d, %d, want %d, %d",
				i, sd.from, sd.to, got.ToSeq, got.FromSeq, sd.toSeq, sd.fromSeq)
		}
		inbox[sd.to] = append(inbox[sd.to], entry{seq: sd.toSeq, message: &want})
		inbox[sd.from] = append(inbox[sd.from], entry{seq: sd.fromSeq, message: &want})
	}
	for _, u := range []natter.UserID{"alice", "bob", "carol"} {
		checkInbox(t, s, u, inbox[u])
	}
}

func testAppendMessageIdempotent(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob", "carol")
	first := natter.Message{
		ID: "0195d1c2a3b47c8d9e0f1a2b3c4d5e6f", From: "alice", FromDevice: "phone", To: "bob",
		Body: []byte("first"), SentAt: at(1),
	}
	a1, err := s.AppendMessage(ctx, first)
	if err != nil {
		t.Fatalf("AppendMessage: %v", err)
	}
	want := first
	want.ConvSeq = 1

	retries := []struct {
		name string
		edit func(m *natter.Message)
	}{
		{"same", func(m *natter.Message) {}},
		{"other body", func(m *natter.Message) { m.Body = []byte("second") }},
		{"other device and time", func(m *natter.Message) { m.FromDevice = "laptop"; m.SentAt = at(50) }},
		{"other conv seq", func(m *natter.Message) { m.ConvSeq = 7 }},
		{"other recipient", func(m *natter.Message) { m.To = "carol"; m.Body = []byte("third") }},
	}
	for _, r := range retries {
		t.Run(r.name, func(t *testing.T) {
			m := first
			m.Body = bytes.Clone(first.Body)
			r.edit(&m)
			got, err := s.AppendMessage(ctx, m)
			if err != nil {
				t.Fatalf("AppendMessage retry: %v", err)
			}
			if !got.Duplicate {
				t.Errorf("retry: Duplicate not set")
			}
			if d := diffMessage(got.Message, want); d != "" {
				t.Errorf("retry returned not the first copy: %s", d)
			}
			if got.ToSeq != a1.ToSeq || got.FromSeq != a1.FromSeq {
				t.Errorf("retry: ToSeq, FromSeq = %d, %d, want the first copy's %d, %d",
					got.ToSeq, got.FromSeq, a1.ToSeq, a1.FromSeq)
			}
		})
	}

	// Nothing new was stored: one entry in each inbox, one message in the
	// conversation, nothing for carol.
	checkInbox(t, s, "bob", []entry{{seq: 1, message: &want}})
	checkInbox(t, s, "alice", []entry{{seq: 1, message: &want}})
	checkInbox(t, s, "carol", nil)
	conv, err := s.Conversation(ctx, "alice", "bob", 0, 10)
	if err != nil {
		t.Fatalf("Conversation: %v", err)
	}
	if len(conv) != 1 {
		t.Fatalf("Conversation has %d messages after retries, want 1", len(conv))
	}

	// The retries used up no sequence numbers.
	next := send(t, s, "alice", "bob", "next", "next")
	if next.Message.ConvSeq != 2 || next.ToSeq != 2 || next.FromSeq != 2 {
		t.Errorf("after retries the next message got ConvSeq %d, ToSeq %d, FromSeq %d, want 2, 2, 2",
			next.Message.ConvSeq, next.ToSeq, next.FromSeq)
	}

	// The same ID from another sender is another message.
	other := first
	other.From, other.To, other.Body = "bob", "alice", []byte("bob's")
	a3, err := s.AppendMessage(ctx, other)
	if err != nil {
		t.Fatalf("AppendMessage with bob's copy of the ID: %v", err)
	}
	if a3.Duplicate {
		t.Errorf("the same ID from another sender was taken for a duplicate")
	}
	if a3.Message.ConvSeq != 3 || string(a3.Message.Body) != "bob's" || a3.Message.From != "bob" {
		t.Errorf("the same ID from another sender: got %+v, want bob's message at ConvSeq 3", a3.Message)
	}
	// And its retry is a duplicate of it, not of alice's.
	a4, err := s.AppendMessage(ctx, other)
	if err != nil {
		t.Fatalf("AppendMessage retry of bob's: %v", err)
	}
	if !a4.Duplicate || a4.Message.From != "bob" || a4.Message.ConvSeq != 3 {
		t.Errorf("retry of bob's message: got %+v (Duplicate %v), want bob's first copy", a4.Message, a4.Duplicate)
	}
}

// testBody is a message body the suite stores and reads back.
type testBody struct {
	name string
	body []byte
}

// testBodies returns bodies that a store must keep byte for byte: empty and
// nil, zero bytes, 0xff, invalid UTF-8, every byte value, 64 KiB.
func testBodies() []testBody {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	return []testBody{
		{"empty", []byte{}},
		{"nil", nil},
		{"zero byte", []byte{0}},
		{"0xff", []byte{0xff}},
		{"zeros and 0xff", []byte{0, 0xff, 0, 0, 0xff, 0xff, 0}},
		{"trailing zeros", []byte("abc\x00\x00\x00")},
		{"every byte value", all},
		{"invalid UTF-8", []byte{0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1}},
		{"text", []byte("héllo, wörld ✓")},
		{"64 KiB random", big},
	}
}

func testAppendMessageBody(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	for i, tt := range testBodies() {
		t.Run(tt.name, func(t *testing.T) {
			m := natter.Message{
				ID: natter.MessageID(fmt.Sprintf("body-%d", i)), From: "alice", FromDevice: "phone", To: "bob",
				Body: bytes.Clone(tt.body), SentAt: at(i),
			}
			a, err := s.AppendMessage(ctx, m)
			if err != nil {
				t.Fatalf("AppendMessage: %v", err)
			}
			if !bytes.Equal(a.Message.Body, tt.body) {
				t.Errorf("Appended body = %x, want %x", clip(a.Message.Body), clip(tt.body))
			}
			entries, err := s.Inbox(ctx, "bob", a.ToSeq-1, 1)
			if err != nil || len(entries) != 1 || entries[0].Message == nil {
				t.Fatalf("Inbox(bob, %d, 1) = %v, %v; want the message", a.ToSeq-1, entries, err)
			}
			if !bytes.Equal(entries[0].Message.Body, tt.body) {
				t.Errorf("Inbox body = %x, want %x", clip(entries[0].Message.Body), clip(tt.body))
			}
			conv, err := s.Conversation(ctx, "bob", "alice", a.Message.ConvSeq-1, 1)
			if err != nil || len(conv) != 1 {
				t.Fatalf("Conversation = %v, %v; want the message", conv, err)
			}
			if !bytes.Equal(conv[0].Body, tt.body) {
				t.Errorf("Conversation body = %x, want %x", clip(conv[0].Body), clip(tt.body))
			}
			dup, err := s.AppendMessage(ctx, m)
			if err != nil {
				t.Fatalf("AppendMessage retry: %v", err)
			}
			if !bytes.Equal(dup.Message.Body, tt.body) {
				t.Errorf("duplicate's body = %x, want %x", clip(dup.Message.Body), clip(tt.body))
			}
		})
	}
}

func testAppendReceipt(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob", "carol")
	m1 := send(t, s, "alice", "bob", "m1", "one").Message
	m2 := send(t, s, "alice", "bob", "m2", "two").Message

	delivered := natter.Receipt{From: "bob", To: "alice", Upto: 2, State: natter.ReceiptDelivered, At: at(10)}
	toSeq, fromSeq, err := s.AppendReceipt(ctx, delivered)
	if err != nil {
		t.Fatalf("AppendReceipt: %v", err)
	}
	if toSeq != 3 || fromSeq != 3 {
		t.Errorf("AppendReceipt = %d, %d, want 3, 3", toSeq, fromSeq)
	}
	m3 := send(t, s, "bob", "alice", "m3", "three").Message
	read := natter.Receipt{From: "bob", To: "alice", Upto: 3, State: natter.ReceiptRead, At: at(11)}
	if toSeq, fromSeq, err = s.AppendReceipt(ctx, read); err != nil {
		t.Fatalf("AppendReceipt: %v", err)
	}
	if toSeq != 5 || fromSeq != 5 {
		t.Errorf("AppendReceipt = %d, %d, want 5, 5", toSeq, fromSeq)
	}
	// A receipt between another pair moves only their inboxes.
	other := natter.Receipt{From: "carol", To: "bob", Upto: 0, State: natter.ReceiptRead, At: at(12)}
	if toSeq, fromSeq, err = s.AppendReceipt(ctx, other); err != nil {
		t.Fatalf("AppendReceipt: %v", err)
	}
	if toSeq != 6 || fromSeq != 1 {
		t.Errorf("AppendReceipt carol→bob = %d, %d, want 6, 1", toSeq, fromSeq)
	}

	// Messages and receipts interleave in both inboxes, in order.
	both := []entry{
		{seq: 1, message: &m1}, {seq: 2, message: &m2}, {seq: 3, receipt: &delivered},
		{seq: 4, message: &m3}, {seq: 5, receipt: &read},
	}
	checkInbox(t, s, "alice", both)
	checkInbox(t, s, "bob", append(both[:5:5], entry{seq: 6, receipt: &other}))
	checkInbox(t, s, "carol", []entry{{seq: 1, receipt: &other}})
}

// testAppendReceiptID: a receipt's ID (the message it names, which may have
// no conversation sequence number) is stored with it and read back from both
// users' inboxes, alone (the page after the entry before it) and with the
// whole inbox; a receipt without an ID reads back without one.
func testAppendReceiptID(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	m1 := send(t, s, "alice", "bob", "m1", "one").Message
	var want []entry
	want = append(want, entry{seq: 1, message: &m1})
	for i, tt := range []struct {
		name string
		r    natter.Receipt
	}{
		{"no ID", natter.Receipt{From: "bob", To: "alice", Upto: 1, State: natter.ReceiptDelivered, At: at(10)}},
		{"ID of a direct message", natter.Receipt{From: "bob", To: "alice", Upto: 1, ID: "direct-1", State: natter.ReceiptDelivered, At: at(11)}},
		{"ID and no sequence number", natter.Receipt{From: "bob", To: "alice", Upto: 0, ID: "direct-2", State: natter.ReceiptRead, At: at(12)}},
		{"ID of a message through the server", natter.Receipt{From: "bob", To: "alice", Upto: 1, ID: "m1", State: natter.ReceiptRead, At: at(13)}},
		{"longest ID", natter.Receipt{From: "alice", To: "bob", Upto: 0, ID: natter.MessageID(strings.Repeat("x", 64)), State: natter.ReceiptRead, At: at(14)}},
		{"no ID again", natter.Receipt{From: "bob", To: "alice", Upto: 1, State: natter.ReceiptRead, At: at(15)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			toSeq, fromSeq, err := s.AppendReceipt(ctx, tt.r)
			if err != nil {
				t.Fatalf("AppendReceipt(%+v): %v", tt.r, err)
			}
			if seq := uint64(i + 2); toSeq != seq || fromSeq != seq {
				t.Fatalf("AppendReceipt = %d, %d, want %d, %d", toSeq, fromSeq, seq, seq)
			}
			want = append(want, entry{seq: toSeq, receipt: &tt.r})
			// The new entry alone, read after the one before it.
			for _, u := range []natter.UserID{"alice", "bob"} {
				got, err := s.Inbox(ctx, u, toSeq-1, 10)
				if err != nil || len(got) != 1 {
					t.Fatalf("Inbox(%s, %d) = %d entries, %v; want the receipt", u, toSeq-1, len(got), err)
				}
				checkEntry(t, fmt.Sprintf("%s's inbox entry %d", u, toSeq), got[0], entry{seq: toSeq, receipt: &tt.r})
			}
		})
	}
	checkInbox(t, s, "alice", want)
	checkInbox(t, s, "bob", want)
}

func testInboxPaging(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob", "carol")
	// alice's inbox: 9 entries, messages both ways and receipts, with
	// entries of other inboxes in between.
	for i := range 9 {
		switch i % 3 {
		case 0:
			send(t, s, "bob", "alice", natter.MessageID(fmt.Sprintf("in-%d", i)), "to alice")
		case 1:
			send(t, s, "alice", "carol", natter.MessageID(fmt.Sprintf("out-%d", i)), "from alice")
		case 2:
			if _, _, err := s.AppendReceipt(ctx, natter.Receipt{From: "alice", To: "bob", Upto: uint64(i), State: natter.ReceiptRead, At: at(i)}); err != nil {
				t.Fatalf("AppendReceipt: %v", err)
			}
		}
		send(t, s, "bob", "carol", natter.MessageID(fmt.Sprintf("noise-%d", i)), "not alice's")
	}
	full, err := s.Inbox(ctx, "alice", 0, 100)
	if err != nil {
		t.Fatalf("Inbox: %v", err)
	}
	if len(full) != 9 {
		t.Fatalf("Inbox(alice) has %d entries, want 9", len(full))
	}
	for i, e := range full {
		if e.Seq != uint64(i+1) {
			t.Fatalf("Inbox(alice) seqs = %v, want 1…9", seqs(full))
		}
		if i%3 == 2 && e.Receipt == nil || i%3 != 2 && e.Message == nil {
			t.Fatalf("Inbox(alice)[%d] = %+v: wrong kind", i, e)
		}
	}

	checkPaging(t, s, "alice", full, []int{1, 2, 4, 9, 10})

	for _, tt := range []struct {
		user        natter.UserID
		after       uint64
		limit       int
		wantFirst   uint64
		wantEntries int
	}{
		{"alice", 3, 2, 4, 2},
		{"alice", 8, 5, 9, 1},
		{"alice", 9, 5, 0, 0},
		{"alice", 1000, 5, 0, 0},
		{"nobody", 0, 5, 0, 0},
	} {
		t.Run(fmt.Sprintf("%s after %d limit %d", tt.user, tt.after, tt.limit), func(t *testing.T) {
			got, err := s.Inbox(ctx, tt.user, tt.after, tt.limit)
			if err != nil {
				t.Fatalf("Inbox: %v", err)
			}
			if len(got) != tt.wantEntries {
				t.Fatalf("Inbox returned seqs %v, want %d entries", seqs(got), tt.wantEntries)
			}
			if len(got) > 0 && got[0].Seq != tt.wantFirst {
				t.Fatalf("Inbox returned seqs %v, want the first to be %d", seqs(got), tt.wantFirst)
			}
		})
	}
}

// checkPaging reads user's inbox in pages of each of limits and checks that
// the pages, put together, are full (the whole inbox read at once).
func checkPaging(t *testing.T, s natter.Store, user natter.UserID, full []natter.InboxEntry, limits []int) {
	t.Helper()
	for _, limit := range limits {
		t.Run(fmt.Sprintf("pages of %d", limit), func(t *testing.T) {
			var got []natter.InboxEntry
			after := uint64(0)
			for range len(full) + 2 {
				page, err := s.Inbox(t.Context(), user, after, limit)
				if err != nil {
					t.Fatalf("Inbox(%s, %d, %d): %v", user, after, limit, err)
				}
				if len(page) > limit {
					t.Fatalf("Inbox(%s, %d, %d) returned %d entries", user, after, limit, len(page))
				}
				if len(page) == 0 {
					break
				}
				got = append(got, page...)
				after = page[len(page)-1].Seq
			}
			if len(got) != len(full) {
				t.Fatalf("paging gave seqs %v, want %v", seqs(got), seqs(full))
			}
			for i := range got {
				checkEntry(t, fmt.Sprintf("page entry %d", i), got[i], entryOf(full[i]))
			}
		})
	}
}

// entryOf turns an InboxEntry into what checkEntry expects.
func entryOf(e natter.InboxEntry) entry {
	return entry{seq: e.Seq, message: e.Message, receipt: e.Receipt, copy: e.Copy}
}

func testConversation(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob", "carol")
	var ab, ac []natter.Message
	for i := range 6 {
		from, to := natter.UserID("alice"), natter.UserID("bob")
		if i%2 == 1 {
			from, to = to, from
		}
		ab = append(ab, send(t, s, from, to, natter.MessageID(fmt.Sprintf("ab-%d", i)), fmt.Sprintf("ab %d", i)).Message)
		if i%3 == 0 {
			ac = append(ac, send(t, s, "carol", "alice", natter.MessageID(fmt.Sprintf("ca-%d", i)), "ca").Message)
			send(t, s, "bob", "carol", natter.MessageID(fmt.Sprintf("bc-%d", i)), "bc")
		}
	}
	for _, tt := range []struct {
		name  string
		a, b  natter.UserID
		after uint64
		limit int
		want  []natter.Message
	}{
		{"all", "alice", "bob", 0, 100, ab},
		{"symmetric", "bob", "alice", 0, 100, ab},
		{"limit", "alice", "bob", 0, 2, ab[:2]},
		{"after", "alice", "bob", 2, 100, ab[2:]},
		{"after and limit", "bob", "alice", 2, 3, ab[2:5]},
		{"after the last", "alice", "bob", 6, 100, nil},
		{"far after", "alice", "bob", 1 << 40, 100, nil},
		{"other pair", "alice", "carol", 0, 100, ac},
		{"no such conversation", "alice", "nobody", 0, 100, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Conversation(ctx, tt.a, tt.b, tt.after, tt.limit)
			if err != nil {
				t.Fatalf("Conversation: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Conversation returned %d messages, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if d := diffMessage(got[i], tt.want[i]); d != "" {
					t.Fatalf("Conversation[%d]: %s", i, d)
				}
			}
		})
	}
	for i, m := range ab {
		if m.ConvSeq != uint64(i+1) {
			t.Errorf("message %d of alice–bob has ConvSeq %d, want %d", i, m.ConvSeq, i+1)
		}
	}
}

// testClose checks that Close returns nil and that writes racing with it
// neither hang nor panic: each returns, either nil (committed before the
// close) or an error.
func testClose(t *testing.T, s natter.Store) {
	ctx := t.Context()
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})
	createUsers(t, s, "alice", "bob")
	send(t, s, "alice", "bob", "before", "before close")
	done := make(chan error)
	const writers = 20
	for i := range writers {
		go func() {
			_, err := s.AppendMessage(ctx, natter.Message{
				ID: natter.MessageID(fmt.Sprintf("racing-%d", i)), From: "alice", To: "bob",
				Body: []byte("racing"), SentAt: at(i),
			})
			done <- err
		}()
	}
	closed = true
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	timeout := time.After(10 * time.Second)
	for range writers {
		select {
		case <-done:
		case <-timeout:
			t.Fatalf("writes racing with Close did not return")
		}
	}
}
