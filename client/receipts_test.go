package client

import (
	"slices"
	"strconv"
	"testing"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// TestResolveReceipts: a receipt covers the messages without a sequence
// number (they went peer to peer) that come, in the order this Client saw
// them, up to the message it names or up to the newest message with a
// sequence number up to its Upto; a read receipt's are forgotten after it.
// It works for the user's messages (a contact's receipt) and for the
// contact's (the user's own receipt, from another device).
func TestResolveReceipts(t *testing.T) {
	// alice's messages to bob, as alice's Client saw them: X direct, S
	// through the server.
	out := []bookEntry{{id: "X1"}, {id: "S1", convSeq: 1}, {id: "X2"}, {id: "X3"}, {id: "S2", convSeq: 4}, {id: "X4"}}
	// bob's messages to alice: Y direct, T through the server.
	in := []struct {
		id  natter.MessageID
		seq uint64
	}{{"Y1", 0}, {"T1", 2}, {"Y2", 0}, {"T2", 3}, {"Y3", 0}}

	rcpt := func(from, to natter.UserID, upto uint64, id natter.MessageID, st natter.ReceiptState) wire.Rcpt {
		return wire.Rcpt{From: from, To: to, Upto: upto, ID: id, State: st}
	}
	const (
		read      = natter.ReceiptRead
		delivered = natter.ReceiptDelivered
	)
	tests := []struct {
		name     string
		receipts []wire.Rcpt // applied in order; the last one's result is checked
		want     []natter.MessageID
	}{
		{"by ID", []wire.Rcpt{rcpt("bob", "alice", 0, "X2", read)}, []natter.MessageID{"X1", "X2"}},
		{"by upto", []wire.Rcpt{rcpt("bob", "alice", 1, "", read)}, []natter.MessageID{"X1"}},
		{"by upto past direct ones", []wire.Rcpt{rcpt("bob", "alice", 4, "", delivered)}, []natter.MessageID{"X1", "X2", "X3"}},
		{"ID beyond upto", []wire.Rcpt{rcpt("bob", "alice", 1, "X4", read)}, []natter.MessageID{"X1", "X2", "X3", "X4"}},
		{"ID of a server message", []wire.Rcpt{rcpt("bob", "alice", 1, "S1", read)}, []natter.MessageID{"X1"}},
		{"unknown ID", []wire.Rcpt{rcpt("bob", "alice", 0, "nope", read)}, nil},
		{"another contact's", []wire.Rcpt{rcpt("carol", "alice", 9, "X2", read)}, nil},
		{"read ones are not listed again", []wire.Rcpt{rcpt("bob", "alice", 0, "X2", read), rcpt("bob", "alice", 4, "", delivered)}, []natter.MessageID{"X3"}},
		{"delivered ones are", []wire.Rcpt{rcpt("bob", "alice", 0, "X2", delivered), rcpt("bob", "alice", 0, "X3", read)}, []natter.MessageID{"X1", "X2", "X3"}},
		{"own receipt from another device", []wire.Rcpt{rcpt("alice", "bob", 2, "Y2", read)}, []natter.MessageID{"Y1", "Y2"}},
		{"own receipt by upto", []wire.Rcpt{rcpt("alice", "bob", 3, "", read)}, []natter.MessageID{"Y1", "Y2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr tracker
			tr.init(100)
			tr.reset("alice")
			for _, e := range out {
				tr.noteOut("bob", e.id, e.convSeq)
			}
			tr.mu.Lock()
			for _, m := range in {
				tr.noteSeenLocked(&wire.Message{ID: m.id, From: "bob", To: "alice", ConvSeq: m.seq})
			}
			var got []natter.MessageID
			for _, r := range tt.receipts {
				got = tr.resolveLocked(&r)
			}
			tr.mu.Unlock()
			if !slices.Equal(got, tt.want) {
				t.Fatalf("covered %v, want %v", got, tt.want)
			}
			last := tt.receipts[len(tt.receipts)-1]
			ev := ReceiptEvent{Rcpt: last, Direct: got}
			for _, id := range tt.want {
				if !ev.Covers(id, 0) {
					t.Errorf("Covers(%s, 0) = false", id)
				}
			}
		})
	}

	// The Upto a receipt names with an ID: the highest sequence number
	// among bob's messages up to it.
	var tr tracker
	tr.init(100)
	tr.reset("alice")
	tr.mu.Lock()
	for _, m := range in {
		tr.noteSeenLocked(&wire.Message{ID: m.id, From: "bob", To: "alice", ConvSeq: m.seq})
	}
	tr.mu.Unlock()
	for id, want := range map[natter.MessageID]uint64{"Y1": 0, "T1": 2, "Y2": 2, "Y3": 3, "unknown": 0} {
		if got := tr.receiptFor("bob", id); got != want {
			t.Errorf("receiptFor(bob, %s) = %d, want %d", id, got, want)
		}
	}
}

// TestBookBounded: a conversation's book keeps the newest maxBook
// messages, each once, and a sequence number learned later.
func TestBookBounded(t *testing.T) {
	var list []bookEntry
	for i := range maxBook + 10 {
		list = add(list, bookEntry{id: natter.MessageID("m" + strconv.Itoa(i))})
	}
	if len(list) != maxBook || list[0].id != "m10" {
		t.Fatalf("%d entries, first %s", len(list), list[0].id)
	}
	last := list[len(list)-1].id
	list = add(list, bookEntry{id: last, convSeq: 7})
	if len(list) != maxBook || list[len(list)-1].convSeq != 7 {
		t.Fatalf("a repeat added an entry or lost its sequence number: %d, %+v", len(list), list[len(list)-1])
	}
}
