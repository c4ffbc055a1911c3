package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

func (c *client) send(ctx context.Context, m *wire.Send) {
	h := c.h
	start := time.Now()
	if c.limited(h.msgLimit, m.Ref, "messages") {
		return
	}
	if err := natter.ValidateMessageID(string(m.ID)); err != nil {
		c.fail(m.Ref, err)
		return
	}
	if len(m.Body) > wire.MaxBody {
		c.push(wire.Error{Ref: m.Ref, Code: wire.CodeTooLarge, Message: fmt.Sprintf("message body over %d bytes", wire.MaxBody)})
		return
	}
	if len(m.Chunks) > 0 && !c.checkChunkList(m.Ref, m.Chunks) {
		return
	}
	if !c.requireContact(ctx, m.Ref, m.To) {
		return
	}
	if len(m.Chunks) > 0 {
		if err := c.checkFile(ctx, m.Chunks); err != nil {
			c.fail(m.Ref, err)
			return
		}
	}
	app, err := h.cfg.Store.AppendMessage(ctx, natter.Message{
		ID: m.ID, From: c.user, FromDevice: c.device, To: m.To, Body: m.Body, SentAt: h.now(), Chunks: m.Chunks,
	})
	if err != nil {
		h.met.storeErrors.Inc()
		c.fail(m.Ref, err)
		return
	}
	if app.Duplicate {
		h.met.duplicates.Inc()
	} else {
		h.met.messages.Inc()
	}
	h.paths.relayed(c.user, m.To, h.now())
	// Delivered at least once: a duplicate is published again in case the
	// first attempt stopped between storing and publishing; clients drop
	// what they already have. A trimmed one was acknowledged by every
	// device of both users already (and has no body left).
	if !app.Trimmed {
		msg := wireMessage(app.Message)
		to, _ := wire.Encode(wire.Msg{Seq: app.ToSeq, Message: msg})
		h.publish(ctx, m.To, event{kind: evFrame, seq: app.ToSeq, frame: to})
		from, _ := wire.Encode(wire.Msg{Seq: app.FromSeq, Message: msg})
		h.publish(ctx, c.user, event{kind: evFrame, seq: app.FromSeq, frame: from})
	}

	ss, err := h.cfg.Registry.Sessions(ctx, m.To)
	if err != nil {
		c.log.Error("registry", "err", err)
	}
	online := false // a quiet session does not count: the recipient is offline to the sender
	for _, s := range ss {
		online = online || !s.Quiet
	}
	c.push(wire.SendAck{Ref: m.Ref, ID: app.Message.ID, ConvSeq: app.Message.ConvSeq, SentAt: app.Message.SentAt, Online: online})
	h.met.sendSeconds.Observe(time.Since(start).Seconds())
}

func wireMessage(m natter.Message) wire.Message {
	return wire.Message{ID: m.ID, From: m.From, FromDevice: m.FromDevice, To: m.To, Body: m.Body, ConvSeq: m.ConvSeq, SentAt: m.SentAt}
}

func (c *client) receipt(ctx context.Context, m *wire.Receipt) {
	h := c.h
	if m.State != natter.ReceiptDelivered && m.State != natter.ReceiptRead {
		c.fail(m.Ref, fmt.Errorf("%w: receipt state must be delivered or read", natter.ErrBadRequest))
		return
	}
	if m.ID != "" {
		if err := natter.ValidateMessageID(string(m.ID)); err != nil {
			c.fail(m.Ref, err)
			return
		}
	}
	if !c.requireContact(ctx, m.Ref, m.Peer) {
		return
	}
	// The Store keeps the ID with Upto, so that a device offline now learns
	// from its inbox later which message (perhaps one that went peer to
	// peer, without a sequence number) the receipt covers.
	r := natter.Receipt{From: c.user, To: m.Peer, Upto: m.Upto, ID: m.ID, State: m.State, At: h.now()}
	toSeq, fromSeq, err := h.cfg.Store.AppendReceipt(ctx, r)
	if err != nil {
		h.met.storeErrors.Inc()
		c.fail(m.Ref, err)
		return
	}
	c.push(wire.OK{Ref: m.Ref})
	rt, rf := rcptFrame(toSeq, r), rcptFrame(fromSeq, r)
	to, _ := wire.Encode(rt)
	h.publish(ctx, m.Peer, event{kind: evFrame, seq: toSeq, frame: to})
	from, _ := wire.Encode(rf)
	h.publish(ctx, c.user, event{kind: evFrame, seq: fromSeq, frame: from})
}

// rcptFrame is r as the inbox entry seq, live or replayed from the store.
func rcptFrame(seq uint64, r natter.Receipt) wire.Rcpt {
	return wire.Rcpt{Seq: seq, From: r.From, To: r.To, Upto: r.Upto, ID: r.ID, State: r.State, At: r.At}
}

// cursorFlushEvery is how often a device's acknowledged inbox position is
// written to the store while it keeps acknowledging.
const cursorFlushEvery = time.Second

// ack moves the device's inbox cursor. The new position is kept in memory
// and written at most every cursorFlushEvery, and when the connection ends:
// losing it in a crash only makes the server send those entries again,
// which clients drop by ID (delivery is at least once). Writing every Ack
// cost more store writes than the messages themselves.
func (c *client) ack(ctx context.Context, m *wire.Ack) {
	if m.Upto <= c.cursor {
		return
	}
	c.cursor = m.Upto
	if now := c.h.now(); now.Sub(c.cursorAt) >= cursorFlushEvery {
		c.flushCursor(ctx)
	}
}

// flushCursor writes the device's cursor if it moved since the last write.
func (c *client) flushCursor(ctx context.Context) {
	if c.cursor <= c.storedCursor {
		return
	}
	if err := c.h.cfg.Store.AckInbox(ctx, c.user, c.device, c.cursor); errors.Is(err, natter.ErrNoSuchDevice) {
		// Removed (RemoveDevice, retirement) while connected: its
		// connection is closing and its cursor is gone with it.
		c.log.Info("ack of a removed device dropped", "cursor", c.cursor)
		c.storedCursor = c.cursor
		return
	} else if err != nil {
		c.h.met.storeErrors.Inc()
		c.log.Error("ack", "err", err)
		return
	}
	c.storedCursor, c.cursorAt = c.cursor, c.h.now()
}

// Inbox replay batching.
const (
	replayPage = 500
)

// replay sends the user's inbox entries after `after` as Inbox frames
// grouped by sender (each page of entries is grouped on its own), the last
// with Done. It returns the highest sequence number sent.
func (c *client) replay(ctx context.Context, after uint64, ref uint64) (uint64, error) {
	h := c.h
	budget := h.cfg.MaxFrame / 2 // JSON and base64 inflate bodies by about 4/3
	through := after
	for {
		entries, err := h.cfg.Store.Inbox(ctx, c.user, through, replayPage)
		if err != nil {
			c.push(wire.Inbox{Ref: ref, Groups: []wire.InboxGroup{}, Through: through, Done: true})
			return through, err
		}
		done := len(entries) < replayPage
		for len(entries) > 0 {
			n, size := 0, 0
			for n < len(entries) && (n == 0 || size+entrySize(entries[n]) <= budget) {
				size += entrySize(entries[n])
				n++
			}
			through = entries[n-1].Seq
			c.pushPaced(wire.Inbox{Ref: ref, Groups: groupBySender(entries[:n]), Through: through, Done: done && n == len(entries)})
			entries = entries[n:]
		}
		if done {
			if through == after { // nothing at all: still say done
				c.push(wire.Inbox{Ref: ref, Groups: []wire.InboxGroup{}, Through: through, Done: true})
			}
			return through, nil
		}
	}
}

func entrySize(e natter.InboxEntry) int {
	if e.Message != nil {
		return 256 + len(e.Message.Body)*4/3
	}
	return 160
}

// groupBySender groups entries by who caused them (a message's sender, a
// receipt's reader), groups in order of their first entry, entries in order
// within a group.
func groupBySender(entries []natter.InboxEntry) []wire.InboxGroup {
	var groups []wire.InboxGroup
	index := map[natter.UserID]int{}
	for _, e := range entries {
		var from natter.UserID
		if e.Message != nil {
			from = e.Message.From
		} else if e.Receipt != nil {
			from = e.Receipt.From
		} else {
			continue
		}
		i, ok := index[from]
		if !ok {
			i = len(groups)
			index[from] = i
			groups = append(groups, wire.InboxGroup{From: from})
		}
		if e.Message != nil {
			groups[i].Messages = append(groups[i].Messages, wire.Msg{Seq: e.Seq, Message: wireMessage(*e.Message), Direct: e.Copy})
		} else {
			groups[i].Receipts = append(groups[i].Receipts, rcptFrame(e.Seq, *e.Receipt))
		}
	}
	return groups
}

// maxHistory caps a History answer.
const maxHistory = 500

func (c *client) history(ctx context.Context, m *wire.History) {
	limit := m.Limit
	if limit <= 0 || limit > maxHistory {
		limit = maxHistory
	}
	msgs, err := c.h.cfg.Store.Conversation(ctx, c.user, m.Peer, m.After, limit)
	if err != nil {
		c.fail(m.Ref, err)
		return
	}
	out := wire.Messages{Ref: m.Ref, Messages: make([]wire.Message, 0, len(msgs))}
	size, budget := 0, c.h.cfg.MaxFrame/2
	for _, msg := range msgs {
		size += 256 + len(msg.Body)*4/3
		if size > budget && len(out.Messages) > 0 {
			break // the client pages on
		}
		out.Messages = append(out.Messages, wireMessage(msg))
	}
	c.push(out)
}

// copyDirect stores, in the user's own inbox, a copy of a message one of
// their devices exchanged peer to peer, and passes it to their devices. The
// other user is not involved: the server did not carry the message.
func (c *client) copyDirect(ctx context.Context, m *wire.Copy) {
	h := c.h
	if c.limited(h.msgLimit, m.Ref, "messages") {
		return
	}
	msg := m.Message
	if err := natter.ValidateMessageID(string(msg.ID)); err != nil {
		c.fail(m.Ref, err)
		return
	}
	if len(msg.Body) > wire.MaxBody {
		c.push(wire.Error{Ref: m.Ref, Code: wire.CodeTooLarge, Message: fmt.Sprintf("message body over %d bytes", wire.MaxBody)})
		return
	}
	var peer natter.UserID
	switch c.user {
	case msg.From:
		peer = msg.To
		msg.FromDevice = c.device
	case msg.To:
		peer = msg.From
	default:
		c.fail(m.Ref, fmt.Errorf("%w: a copy must be of a message you sent or received", natter.ErrBadRequest))
		return
	}
	if !c.requireContact(ctx, m.Ref, peer) {
		return
	}
	if msg.SentAt.IsZero() {
		msg.SentAt = h.now()
	}
	nm := natter.Message{ID: msg.ID, From: msg.From, FromDevice: msg.FromDevice, To: msg.To, Body: msg.Body, SentAt: msg.SentAt}
	seq, dup, err := h.cfg.Store.AppendCopy(ctx, c.user, nm)
	if err != nil {
		h.met.storeErrors.Inc()
		c.fail(m.Ref, err)
		return
	}
	if !dup {
		// A repeat is not published again: what it carries may differ from
		// the stored copy, which devices get from the inbox in any case.
		h.met.copies.Inc()
		b, _ := wire.Encode(wire.Msg{Seq: seq, Message: wireMessage(nm), Direct: true})
		h.publish(ctx, c.user, event{kind: evFrame, seq: seq, frame: b})
	}
	c.push(wire.OK{Ref: m.Ref})
}
