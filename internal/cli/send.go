package cli

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

func runSend(ctx context.Context, r *runner, args []string) error {
	if err := natter.ValidateUserID(args[0]); err != nil {
		return err
	}
	to := natter.UserID(args[0])
	text := strings.Join(args[1:], " ")
	if strings.TrimSpace(text) == "" {
		return usagef(r.cmd, "send: the message is empty")
	}
	// The recipient's device confirms delivery with a receipt, which may
	// arrive on the event goroutine before Send even returns.
	rw := newReceiptWaiter(to)
	return r.oneShot(ctx, rw.watch, func(c *client.Client, s storedSession) error {
		if to == s.User {
			return withCode("self", "you cannot send a message to yourself")
		}
		res, err := c.Send(ctx, to, []byte(text))
		if err != nil {
			return keysErr(serverErr(fmt.Errorf("send to %s: %w", to, err), to), to)
		}
		r.recordSent(ctx, s, to, text, res)
		result := resultStored
		if res.Online {
			result = resultSent
			if rw.wait(ctx, res.ConvSeq, r.opts.wait) {
				result = resultDelivered
			}
		}
		if r.g.json {
			r.emit(jsonSent{ID: res.ID, To: to, ConvSeq: res.ConvSeq, SentAt: utc(res.SentAt), Result: result, Path: res.Path})
			return nil
		}
		switch result {
		case resultDelivered:
			r.printf("delivered to %s\n", to)
		case resultSent:
			r.printf("sent to %s (online, but their device has not confirmed yet)\n", to)
		default:
			r.printf("stored for offline delivery: %s is offline\n", to)
		}
		return nil
	})
}

// receiptWaiter waits for peer's delivered (or read) receipt.
type receiptWaiter struct {
	peer natter.UserID

	mu   sync.Mutex
	upto uint64        // highest conversation sequence number peer confirmed
	ch   chan struct{} // closed and replaced whenever upto grows
}

func newReceiptWaiter(peer natter.UserID) *receiptWaiter {
	return &receiptWaiter{peer: peer, ch: make(chan struct{})}
}

// watch sees the session's events.
func (w *receiptWaiter) watch(ev client.Event) {
	rc, ok := ev.(client.ReceiptEvent)
	if !ok || rc.From != w.peer {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if rc.Upto > w.upto {
		w.upto = rc.Upto
		close(w.ch)
		w.ch = make(chan struct{})
	}
}

// wait reports whether peer confirmed seq within d.
func (w *receiptWaiter) wait(ctx context.Context, seq uint64, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		w.mu.Lock()
		done, ch := w.upto >= seq, w.ch
		w.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}
