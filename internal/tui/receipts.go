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
// after receiptDelay.

// flushMsg sends the receipts that are due.
type flushMsg struct{ gen int }

// receiptSentMsg is the result of one receipt.
type receiptSentMsg struct {
	gen        int
	peer       natter.UserID
	read       bool
	upto, prev uint64
	err        error
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
		if c.maxIn > c.deliveredSent {
			cmds = append(cmds, a.sendReceipt(c, false))
		}
		if a.onScreen(c) {
			c.unread = 0
			if c.maxIn > c.readSent {
				cmds = append(cmds, a.sendReceipt(c, true))
			}
		}
	}
	return tea.Batch(cmds...)
}

func (a *App) sendReceipt(c *conv, read bool) tea.Cmd {
	b, gen, peer, upto := a.sess.Backend, a.gen, c.peer, c.maxIn
	prev := c.deliveredSent
	if read {
		prev, c.readSent = c.readSent, upto
	} else {
		c.deliveredSent = upto
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		var err error
		if read {
			err = b.MarkRead(ctx, peer, upto)
		} else {
			err = b.MarkDelivered(ctx, peer, upto)
		}
		return receiptSentMsg{gen: gen, peer: peer, read: read, upto: upto, prev: prev, err: err}
	}
}

// receiptSent takes a failed receipt back, so that the next flush tries
// again.
func (a *App) receiptSent(m receiptSentMsg) {
	if m.gen != a.gen || m.err == nil {
		return
	}
	c := a.conv(m.peer)
	if m.read && c.readSent == m.upto {
		c.readSent = m.prev
	}
	if !m.read && c.deliveredSent == m.upto {
		c.deliveredSent = m.prev
	}
}
