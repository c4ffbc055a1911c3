package client

import (
	"context"
	"fmt"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// Receipts on every path.
//
// A receipt names how far the reader got: Upto, a conversation sequence
// number, covers the messages that went through the server; a message that
// went peer to peer has none (the server never carried it), so a receipt
// may also name a message by ID (wire.Receipt.ID): that message and every
// message its sender sent before it. The reader's SDK turns "read up to
// this message" (MarkReadID) into both: the ID, and the highest sequence
// number among the messages it had handed to the app up to that one. The
// sender's SDK turns a receipt back into the messages it covers
// (ReceiptEvent.Direct, ReceiptEvent.Covers): with a sequence number up to
// Upto, or, for those without one, by their place in the conversation as
// this Client saw it.
//
// The server stores the ID with the receipt (natter.Receipt.ID), so a
// receipt that reaches a device from the stored inbox rather than live (its
// user was offline) names the same message.

// maxBook bounds the messages remembered per conversation and direction
// to resolve receipts.
const maxBook = 1024

// bookEntry is one message of a conversation as this Client saw it.
type bookEntry struct {
	id      natter.MessageID
	convSeq uint64 // 0: it went peer to peer
	upto    uint64 // in: the highest convSeq of the peer's messages up to this one
}

// convBook is what a Client remembers of one conversation's messages, in
// the order it saw them: in, the peer's messages it handed to the app;
// out, the user's messages it sent or handed to the app (from the user's
// other devices).
type convBook struct {
	in, out []bookEntry
	inMax   uint64
}

// bookLocked returns the conversation with peer, made if new. t.mu must be
// held.
func (t *tracker) bookLocked(peer natter.UserID) *convBook {
	b := t.book[peer]
	if b == nil {
		b = &convBook{}
		t.book[peer] = b
	}
	return b
}

// indexOf returns the position of id in list, or -1.
func indexOf(list []bookEntry, id natter.MessageID) int {
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].id == id {
			return i
		}
	}
	return -1
}

// add appends e to list unless it holds e.id already (then a sequence
// number learned later is kept), dropping the oldest beyond maxBook.
func add(list []bookEntry, e bookEntry) []bookEntry {
	if i := indexOf(list, e.id); i >= 0 {
		if list[i].convSeq == 0 {
			list[i].convSeq = e.convSeq
		}
		return list
	}
	if len(list) >= maxBook {
		list = append(list[:0], list[len(list)-maxBook+1:]...)
	}
	return append(list, e)
}

// noteInLocked records a message of peer's handed to the app. t.mu must be
// held.
func (t *tracker) noteInLocked(peer natter.UserID, id natter.MessageID, convSeq uint64) {
	b := t.bookLocked(peer)
	b.inMax = max(b.inMax, convSeq)
	b.in = add(b.in, bookEntry{id: id, convSeq: convSeq, upto: b.inMax})
}

// noteOutLocked records a message of the user's to peer: sent by this
// Client (convSeq 0 until its SendAck, if it goes through the server), or
// from another device of the user's. t.mu must be held.
func (t *tracker) noteOutLocked(peer natter.UserID, id natter.MessageID, convSeq uint64) {
	b := t.bookLocked(peer)
	b.out = add(b.out, bookEntry{id: id, convSeq: convSeq})
}

// noteSeenLocked records a message handed to the app. t.mu must be held.
func (t *tracker) noteSeenLocked(m *wire.Message) {
	if m.From == t.user {
		t.noteOutLocked(m.To, m.ID, m.ConvSeq)
	} else {
		t.noteInLocked(m.From, m.ID, m.ConvSeq)
	}
}

// learnSeqLocked records the sequence number of a message seen again (a
// message that went peer to peer and then, after a fallback, through the
// server; or this Client's own message echoed), if it is remembered.
// t.mu must be held.
func (t *tracker) learnSeqLocked(m *wire.Message) {
	if m.ConvSeq == 0 {
		return
	}
	var list []bookEntry
	if m.From == t.user {
		if b := t.book[m.To]; b != nil {
			list = b.out
		}
	} else if b := t.book[m.From]; b != nil {
		list = b.in
	}
	if i := indexOf(list, m.ID); i >= 0 && list[i].convSeq == 0 {
		list[i].convSeq = m.ConvSeq
	}
}

// noteOut records a message of the user's to peer.
func (t *tracker) noteOut(peer natter.UserID, id natter.MessageID, convSeq uint64) {
	t.mu.Lock()
	t.noteOutLocked(peer, id, convSeq)
	t.mu.Unlock()
}

// receiptFor returns the Upto of a receipt to peer that reaches their
// message id: the highest sequence number of the peer's messages handed to
// the app up to id (0 if id is not known).
func (t *tracker) receiptFor(peer natter.UserID, id natter.MessageID) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.book[peer]
	if b == nil {
		return 0
	}
	if i := indexOf(b.in, id); i >= 0 {
		return b.in[i].upto
	}
	return 0
}

// resolveLocked returns the messages without a sequence number that r
// covers: the user's, for a contact's receipt; the contact's, for a
// receipt the user sent from another device. A read receipt's messages are
// forgotten: nothing later needs them. t.mu must be held.
func (t *tracker) resolveLocked(r *wire.Rcpt) []natter.MessageID {
	var list *[]bookEntry
	out := false // the user's messages
	switch {
	case r.To == t.user && r.From != t.user:
		if b := t.book[r.From]; b != nil {
			list, out = &b.out, true
		}
	case r.From == t.user && r.To != t.user:
		if b := t.book[r.To]; b != nil {
			list = &b.in
		}
	}
	if list == nil {
		return nil
	}
	cut := -1
	for i, e := range *list {
		if e.convSeq > 0 && e.convSeq <= r.Upto || r.ID != "" && e.id == r.ID {
			cut = i
		}
	}
	var ids []natter.MessageID
	for _, e := range (*list)[:cut+1] {
		if e.convSeq == 0 {
			ids = append(ids, e.id)
		}
	}
	if out && r.State == natter.ReceiptRead {
		*list = append((*list)[:0], (*list)[cut+1:]...)
	}
	return ids
}

// MarkRead tells peer that the user has read their messages up to
// conversation sequence number upto (a "read" receipt). It cannot name a
// message that went peer to peer (it has no sequence number): see
// MarkReadID.
func (c *Client) MarkRead(ctx context.Context, peer natter.UserID, upto uint64) error {
	return c.sendReceipt(ctx, peer, upto, "", natter.ReceiptRead)
}

// MarkDelivered tells peer that the user's device received their messages
// up to conversation sequence number upto (a "delivered" receipt). See also
// MarkDeliveredID and Options.AutoDeliveredReceipts.
func (c *Client) MarkDelivered(ctx context.Context, peer natter.UserID, upto uint64) error {
	return c.sendReceipt(ctx, peer, upto, "", natter.ReceiptDelivered)
}

// MarkReadID tells peer that the user has read their message id, and with
// it every message of theirs before it, whatever path each took (through
// the server or peer to peer): pass the newest message of peer's the app
// has shown. The receipt names id and the highest conversation sequence
// number among the messages of peer's this Client handed to the app up to
// id, so that a device that does not know id (it never saw the message)
// still sees those. The server stores both, so peer's devices learn of the
// receipt live or from their inbox later; they tell what it covers with
// ReceiptEvent.Covers.
func (c *Client) MarkReadID(ctx context.Context, peer natter.UserID, id natter.MessageID) error {
	return c.markID(ctx, peer, id, natter.ReceiptRead)
}

// MarkDeliveredID tells peer that the user's device received their message
// id and every message of theirs before it, whatever path each took; see
// MarkReadID.
func (c *Client) MarkDeliveredID(ctx context.Context, peer natter.UserID, id natter.MessageID) error {
	return c.markID(ctx, peer, id, natter.ReceiptDelivered)
}

func (c *Client) markID(ctx context.Context, peer natter.UserID, id natter.MessageID, state natter.ReceiptState) error {
	if err := natter.ValidateMessageID(string(id)); err != nil {
		return fmt.Errorf("%s receipt to %s: %w", state, peer, err)
	}
	return c.sendReceipt(ctx, peer, c.tr.receiptFor(peer, id), id, state)
}

func (c *Client) sendReceipt(ctx context.Context, peer natter.UserID, upto uint64, id natter.MessageID, state natter.ReceiptState) error {
	c.tr.noteOwnReceipt(peer, upto, id, state)
	_, err := roundTrip[wire.OK](ctx, c, fmt.Sprintf("%s receipt to %s", state, peer), func(ref uint64) any {
		return &wire.Receipt{Ref: ref, Peer: peer, Upto: upto, ID: id, State: state}
	})
	return err
}
