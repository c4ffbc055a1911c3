package tui

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
)

// Receipts: every message from a peer is confirmed "delivered", and
// "read" once its conversation is on screen. They are coalesced: a burst of
// messages, or switching between conversations, sends one receipt per peer
// after receiptDelay. A receipt covers the peer's messages up to the newest
// that arrived: up to its conv seq (MarkRead, MarkDelivered) or, if it went
// peer to peer and has none, up to it by ID (MarkReadID, MarkDeliveredID).

// flushMsg sends the receipts that are due.
type flushMsg struct{ gen int }

// receiptSentMsg is the result of one receipt.
type receiptSentMsg struct {
	gen     int
	peer    natter.UserID
	read    bool
	n, prev int // the conversation's inCount covered, and before
	err     error
}

// scheduleReceipts arranges a flush, unless one is pending.
func (a *App) scheduleReceipts() tea.Cmd {
	if a.flushPending || a.sess == nil {
		return nil
	}
	a.flushPending = true
	gen := a.gen
	return tea.Tick(a.receiptDelay, func(time.Time) tea.Msg { return flushMsg{gen} })
}

// flushReceipts sends what is due: delivered for every conversation, read
// for the one on screen.
func (a *App) flushReceipts() tea.Cmd {
	var cmds []tea.Cmd
	for _, c := range a.convs {
		if c.inCount > c.deliveredSent {
			cmds = append(cmds, a.sendReceipt(c, false))
		}
		if a.onScreen(c) {
			c.unread = 0
			if c.inCount > c.readSent {
				cmds = append(cmds, a.sendReceipt(c, true))
			}
		}
	}
	return tea.Batch(cmds...)
}

func (a *App) sendReceipt(c *conv, read bool) tea.Cmd {
	b, gen, peer, upto, n := a.sess.Backend, a.gen, c.peer, c.maxIn, c.inCount
	// The newest message went peer to peer: only its ID names it.
	id := natter.MessageID("")
	if c.lastInSeq == 0 {
		id = c.lastIn
	}
	prev := c.deliveredSent
	if read {
		prev, c.readSent = c.readSent, n
	} else {
		c.deliveredSent = n
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		var err error
		switch {
		case read && id != "":
			err = b.MarkReadID(ctx, peer, id)
		case read:
			err = b.MarkRead(ctx, peer, upto)
		case id != "":
			err = b.MarkDeliveredID(ctx, peer, id)
		default:
			err = b.MarkDelivered(ctx, peer, upto)
		}
		return receiptSentMsg{gen: gen, peer: peer, read: read, n: n, prev: prev, err: err}
	}
}

// receiptSent takes a failed receipt back, so that the next flush tries
// again.
func (a *App) receiptSent(m receiptSentMsg) {
	if m.gen != a.gen || m.err == nil {
		return
	}
	c := a.conv(m.peer)
	if m.read && c.readSent == m.n {
		c.readSent = m.prev
	}
	if !m.read && c.deliveredSent == m.n {
		c.deliveredSent = m.prev
	}
}
