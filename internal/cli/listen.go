package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
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
	if err := r.online(); err != nil {
		return err
	}
	l := &listener{r: r, only: only}
	for {
		since := time.Now()
		err := l.session(ctx)
		if err != nil && r.replacedHere(ctx, err, since) {
			continue // another natter command of this home came and went
		}
		return r.listenEnded(parent, ctx, err)
	}
}

// listener is one natter listen: it prints events, session after session
// (see replacedHere).
type listener struct {
	r    *runner
	only map[string]bool
	n    int // events printed
}

func (l *listener) done() bool { return l.r.opts.count > 0 && l.n >= l.r.opts.count }

// session resumes the session and prints its events until it ends, --count
// is reached or ctx ends.
func (l *listener) session(ctx context.Context) error {
	r := l.r
	c, s, err := r.resume(ctx)
	if err != nil {
		return err
	}
	r.agent.set(c, s)
	defer r.agent.unset()
	p := &eventPrinter{r: r, me: s.User, device: s.Device, only: l.only}

	// Show what earlier commands kept first, then the live session.
	kept, commit, err := r.home.takeUnread(s.User)
	if err != nil {
		c.Close()
		return err
	}
	var rest []unreadEntry // acknowledged but not printed: kept for natter inbox
	// keep reports whether an entry is kept for later rather than printed:
	// past --count, or of a type --only leaves out.
	keep := func(e unreadEntry) bool {
		return l.done() || (e.Message != nil && !p.wants(evMessage)) || (e.Receipt != nil && !p.wants(evReceipt))
	}
	show := func(e unreadEntry, offline bool) {
		if keep(e) {
			rest = append(rest, e)
			return
		}
		if e.Message != nil {
			l.n += p.message(*e.Message, offline, e.Path)
		} else {
			l.n += p.receipt(*e.Receipt)
		}
	}
	d := newDeliveries(s.User)
	handle := func(ev client.Event) {
		r.agent.publish(ev)
		d.note(ev)
		r.recordEvent(ctx, s.User, ev)
		entries := unreadOf(ev)
		if entries == nil {
			if !l.done() && !replaced(ev) {
				l.n += p.print(ev)
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
	for err == nil && !l.done() {
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
	if l.done() || ctx.Err() != nil {
		// listen ends: the commands handed to it finish on c first, and
		// those that come now connect by themselves.
		r.agent.stop()
	}
	r.agent.unset()
	c.Close()
	for ev := range c.Events() {
		handle(ev)
	}
	if kerr := r.home.appendUnread(s.User, rest); kerr != nil && err == nil {
		err = kerr
	}
	return err
}

// replaced reports whether ev says the device logged in on another
// connection: listen and chat handle that themselves (replacedHere).
func replaced(ev client.Event) bool {
	ce, ok := ev.(client.ConnEvent)
	var we *wire.Err
	return ok && ce.Final && errors.As(ce.Err, &we) && we.Code == wire.CodeReplaced
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
