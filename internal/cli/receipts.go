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
	got  map[natter.UserID]uint64 // highest conv_seq received per sender
	sent map[natter.UserID]uint64 // highest conv_seq confirmed per sender
}

func newDeliveries(me natter.UserID) *deliveries {
	return &deliveries{me: me, got: map[natter.UserID]uint64{}, sent: map[natter.UserID]uint64{}}
}

// note records the messages an event carries.
func (d *deliveries) note(ev client.Event) {
	for _, e := range unreadOf(ev) {
		if m := e.Message; m != nil && m.From != d.me {
			d.mu.Lock()
			d.got[m.From] = max(d.got[m.From], m.ConvSeq)
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
	todo := map[natter.UserID]uint64{}
	for peer, upto := range d.got {
		if upto > d.sent[peer] {
			todo[peer] = upto
		}
	}
	d.mu.Unlock()
	for peer, upto := range todo {
		if c.MarkDelivered(ctx, peer, upto) == nil {
			d.mu.Lock()
			d.sent[peer] = max(d.sent[peer], upto)
			d.mu.Unlock()
		}
	}
}
