package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/natterim/natter/client"
)

func runListen(ctx context.Context, r *runner, _ []string) error {
	only, err := parseOnly(r.opts.only)
	if err != nil {
		return usagef(r.cmd, "%v", err)
	}
	if r.opts.count < 0 || r.opts.timeout < 0 {
		return usagef(r.cmd, "listen: --count and --timeout must not be negative")
	}
	parent := ctx
	if r.opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.timeout)
		defer cancel()
	}
	c, s, err := r.resume(ctx)
	if err != nil {
		return r.listenEnded(parent, ctx, err)
	}
	p := &eventPrinter{r: r, me: s.User, device: s.Device, only: only}
	n := 0
	done := func() bool { return r.opts.count > 0 && n >= r.opts.count }

	// Show what earlier commands kept first, then the live session.
	kept, commit, err := r.home.takeUnread(s.User)
	if err != nil {
		c.Close()
		return err
	}
	var rest []unreadEntry // acknowledged but not printed: --count was reached
	// keep reports whether an entry is kept for later rather than printed:
	// past --count, or of a type --only leaves out.
	keep := func(e unreadEntry) bool {
		return done() || (e.Message != nil && !p.wants(evMessage)) || (e.Receipt != nil && !p.wants(evReceipt))
	}
	show := func(e unreadEntry, offline bool) {
		if keep(e) {
			rest = append(rest, e)
			return
		}
		if e.Message != nil {
			n += p.message(*e.Message, offline)
		} else {
			n += p.receipt(*e.Receipt)
		}
	}
	d := newDeliveries(s.User)
	handle := func(ev client.Event) {
		d.note(ev)
		entries := unreadOf(ev)
		if entries == nil {
			if !done() {
				n += p.print(ev)
			}
			return
		}
		offline := true // inbox entries
		if me, ok := ev.(client.MessageEvent); ok {
			offline = me.Offline
		}
		for _, e := range entries {
			show(e, offline)
		}
	}
	for _, e := range kept {
		show(e, true)
	}
	if err := commit(); err != nil {
		c.Close()
		return err
	}
	err = r.applyPresence(ctx, c)
	for err == nil && !done() {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				err = errors.New("the connection closed")
				break
			}
			handle(ev)
			d.flush(ctx, c)
			if ce, ok := ev.(client.ConnEvent); ok && ce.Final {
				err = serverErr(fmt.Errorf("session ended: %w", ce.Err), "")
			}
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	// Events still queued were acknowledged by the SDK: print them (after
	// an interrupt, say) or, beyond --count, keep them.
	d.flush(context.WithoutCancel(ctx), c)
	c.Close()
	for ev := range c.Events() {
		handle(ev)
	}
	if kerr := r.home.appendUnread(s.User, rest); kerr != nil && err == nil {
		err = kerr
	}
	return r.listenEnded(parent, ctx, err)
}

// listenEnded decides how listen's end is reported: an interrupt (the
// parent context ended) is a normal end, and so is --timeout unless --count
// events were expected.
func (r *runner) listenEnded(parent, ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case parent.Err() != nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		if r.opts.count > 0 {
			return withCode("timeout", "listen: timed out after %v before %d events", r.opts.timeout, r.opts.count)
		}
		return nil
	}
	return err
}
