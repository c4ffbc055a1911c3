package cli

import (
	"context"
	"sync"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

// receiptFlushTimeout bounds sending the delivered receipts before natter
// exits.
const receiptFlushTimeout = 3 * time.Second

// deliveries tracks the messages this run of natter received, to tell their
// senders they were delivered (the device has them: printed, or kept in the
// home for natter inbox). natter sends these receipts itself rather than
// with the SDK's AutoDeliveredReceipts, which coalesces them on a timer and
// drops the pending ones at Close: a command that exits right after it got a
// message would never confirm it.
type deliveries struct {
	me natter.UserID

	mu   sync.Mutex
	got  map[natter.UserID]received         // the newest message received per sender
	sent map[natter.UserID]natter.MessageID // the message last confirmed per sender
}

// received is a sender's newest message: confirming it confirms every
// message of theirs before it, on whichever path each came (a receipt
// names it by ID; the SDK adds the conversation position it covers).
type received struct {
	id natter.MessageID
	at time.Time
}

func newDeliveries(me natter.UserID) *deliveries {
	return &deliveries{me: me, got: map[natter.UserID]received{}, sent: map[natter.UserID]natter.MessageID{}}
}

// note records the messages an event carries.
func (d *deliveries) note(ev client.Event) {
	for _, e := range unreadOf(ev) {
		if m := e.Message; m != nil && m.From != d.me {
			d.mu.Lock()
			if g := d.got[m.From]; g.id == "" || m.SentAt.After(g.at) || m.SentAt.Equal(g.at) && m.ID > g.id {
				d.got[m.From] = received{id: m.ID, at: m.SentAt}
			}
			d.mu.Unlock()
		}
	}
}

// flush sends a delivered receipt to every sender with unconfirmed
// messages. Failures are not the user's concern: the sender just sees
// "sent" rather than "delivered".
func (d *deliveries) flush(ctx context.Context, c *client.Client) {
	ctx, cancel := context.WithTimeout(ctx, receiptFlushTimeout)
	defer cancel()
	d.mu.Lock()
	todo := map[natter.UserID]natter.MessageID{}
	for peer, g := range d.got {
		if g.id != d.sent[peer] {
			todo[peer] = g.id
		}
	}
	d.mu.Unlock()
	for peer, id := range todo {
		if c.MarkDeliveredID(ctx, peer, id) == nil {
			d.mu.Lock()
			d.sent[peer] = id
			d.mu.Unlock()
		}
	}
}
