package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// inboxWait bounds how long natter inbox waits for the server's stored inbox
// to arrive in full.
const inboxWait = 15 * time.Second

func runInbox(ctx context.Context, r *runner, _ []string) error {
	if r.via != nil {
		// A listen or chat of this home is online: it received (and showed)
		// what arrived; what it kept is in the unread file.
		_, s, err := r.via.get(ctx)
		if err != nil {
			return err
		}
		entries, commit, err := r.home.takeUnread(s.User)
		if err != nil {
			return err
		}
		r.printInbox(inboxGroups(entries, s.User, s.Device), s.User)
		return commit()
	}
	c, s, err := r.resume(ctx)
	if err != nil {
		return err
	}
	// Read the inbox the server sends after the resume, up to its last
	// part, and whatever else arrives meanwhile.
	var got []unreadEntry
	var failure error
	d := newDeliveries(s.User)
	timeout := time.NewTimer(inboxWait)
	defer timeout.Stop()
wait:
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				break wait
			}
			got = append(got, unreadOf(ev)...)
			r.recordEvent(ctx, s.User, ev)
			d.note(ev)
			if ib, ok := ev.(client.InboxEvent); ok && ib.Done {
				break wait
			}
			if ce, ok := ev.(client.ConnEvent); ok && ce.Final {
				failure = serverErr(fmt.Errorf("connection: %w", ce.Err), "")
				break wait
			}
		case <-timeout.C:
			failure = withCode("timeout", "the server did not send the whole inbox within %v; showing what arrived", inboxWait)
			break wait
		case <-ctx.Done():
			failure = ctx.Err()
			break wait
		}
	}
	d.flush(context.WithoutCancel(ctx), c)
	c.Close()
	for ev := range c.Events() {
		got = append(got, unreadOf(ev)...)
		r.recordEvent(ctx, s.User, ev)
	}
	// Keep what arrived first, so that nothing the SDK acknowledged is lost
	// if natter dies before it is printed; then take everything kept.
	if err := r.home.appendUnread(s.User, got); err != nil {
		return err
	}
	entries, commit, err := r.home.takeUnread(s.User)
	if err != nil {
		return err
	}
	r.printInbox(inboxGroups(entries, s.User, s.Device), s.User)
	if err := commit(); err != nil {
		return err
	}
	return failure
}

func (r *runner) printInbox(groups []wire.InboxGroup, me natter.UserID) {
	if r.g.json {
		out := jsonInbox{Groups: make([]jsonInboxGroup, 0, len(groups))}
		for _, g := range groups {
			jg := jsonInboxGroup{From: g.From, Messages: make([]jsonMessage, 0, len(g.Messages))}
			for _, m := range g.Messages {
				jg.Messages = append(jg.Messages, toJSONMessage(m.Message))
			}
			for _, rc := range g.Receipts {
				jg.Receipts = append(jg.Receipts, toJSONReceipt(rc))
			}
			out.Groups = append(out.Groups, jg)
		}
		r.emit(out)
		return
	}
	if len(groups) == 0 {
		r.printf("nothing new\n")
		return
	}
	for i, g := range groups {
		if i > 0 {
			r.printf("\n")
		}
		who := string(g.From)
		if g.From == me {
			who = "you, from another device"
		}
		switch n := len(g.Messages); n {
		case 0:
			r.printf("%s:\n", who)
		case 1:
			r.printf("%s (1 message):\n", who)
		default:
			r.printf("%s (%d messages):\n", who, n)
		}
		for _, m := range g.Messages {
			to := ""
			if m.From == me {
				to = "to " + string(m.To) + ": "
			}
			text := strings.ReplaceAll(messageText(m.Body), "\n", "\n    ")
			r.printf("  [%s] %s%s\n", when(m.SentAt, r.now()), to, text)
		}
		for _, rc := range g.Receipts {
			r.printf("  (%s)\n", receiptText(rc))
		}
	}
}
