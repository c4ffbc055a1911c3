package bench

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/natterim/natter/client"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// A message body is the magic, the run's ID and the sender's clock in Unix
// nanoseconds, padded to Config.Size.
const (
	bodyMagic = "nb01"
	// BodyMin is the smallest body: magic, run ID and send time.
	BodyMin = len(bodyMagic) + 8 + 8
)

func newRunID(id *[8]byte) { crand.Read(id[:]) }

// makeBody returns a body stamped with sent.
func (r *runner) makeBody(sent time.Time) []byte {
	b := make([]byte, r.cfg.Size)
	copy(b, bodyMagic)
	copy(b[4:], r.run[:])
	binary.BigEndian.PutUint64(b[12:], uint64(sent.UnixNano()))
	for i := BodyMin; i < len(b); i++ {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// parseBody returns the send time in a body of this run. ok is false for a
// body that is not the bench's; old is true for one of another run.
func (r *runner) parseBody(b []byte) (sent int64, ok, old bool) {
	if len(b) < BodyMin || string(b[:4]) != bodyMagic {
		return 0, false, false
	}
	if string(b[4:12]) != string(r.run[:]) {
		return 0, true, true
	}
	return int64(binary.BigEndian.Uint64(b[12:20])), true, false
}

// inWindow reports whether the Unix-nanosecond time t is in the
// measurement window.
func (r *runner) inWindow(t int64) bool {
	s := r.winStart.Load()
	return s != 0 && t >= s && t < r.winEnd.Load()
}

// events is u's event loop: it must read the Client's events until the
// channel is closed.
func (r *runner) events(u *user) {
	defer close(u.done)
	ready, gotContacts := false, false
	for ev := range u.c.Events() {
		switch e := ev.(type) {
		case client.MessageEvent:
			if e.OpenErr != nil {
				r.onUnopened(e.OpenErr)
				continue
			}
			r.onMessage(&e.Message, e.Offline)
		case client.InboxEvent:
			for _, g := range e.Groups {
				for i := range g.Messages {
					if err := e.OpenErrs[g.Messages[i].ID]; err != nil {
						r.onUnopened(err)
						continue
					}
					r.onMessage(&g.Messages[i].Message, true)
				}
			}
			if e.Done && !ready {
				ready = true
				close(u.ready)
			}
		case client.ContactsEvent:
			if !gotContacts && !ready {
				u.contacts, gotContacts = e.Contacts, true
			}
		case client.ConnEvent:
			switch {
			case e.Final:
				r.sessionsEnded.Add(1)
				r.countErr("session", e.Err)
			case e.Up:
				r.reconnects.Add(1)
			default:
				r.disconnects.Add(1)
				r.countErr("disconnect", e.Err)
			}
		}
	}
}

// onUnopened accounts for a message whose body could not be opened.
func (r *runner) onUnopened(err error) {
	r.unopened.Add(1)
	r.countErr("open", err)
}

// onMessage accounts for one message received.
func (r *runner) onMessage(m *wire.Message, offline bool) {
	now := time.Now().UnixNano()
	sent, ok, old := r.parseBody(m.Body)
	switch {
	case !ok:
		r.foreign.Add(1)
		return
	case old:
		r.stale.Add(1)
		return
	}
	r.delivered.Add(1)
	if offline {
		r.deliveredOffline.Add(1)
	}
	if r.inWindow(sent) {
		r.delivery.Record(time.Duration(now - sent))
		if tl := r.timeline.Load(); tl != nil {
			tl.record(sent, time.Duration(now-sent))
		}
	}
	if r.inWindow(now) {
		r.deliveredInWin.Add(1)
	}
}

// sendOne sends one message from u to a random contact and accounts for
// it. It reports whether the send succeeded.
func (r *runner) sendOne(ctx context.Context, u *user) bool {
	defer u.inflight.Add(-1)
	peer := r.peer(u.peers[rand.IntN(len(u.peers))])
	if peer == nil {
		r.countErr("send", errNoPeer)
		r.sendErrs.Add(1)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	start := time.Now()
	_, err := u.c.Send(ctx, peer.name, r.makeBody(start))
	end := time.Now()
	if err != nil {
		if r.stopping.Load() && errors.Is(err, context.Canceled) {
			r.unfinished.Add(1)
		} else {
			r.sendErrs.Add(1)
			r.countErr("send", err)
		}
		return false
	}
	r.acked.Add(1)
	if u.warm.CompareAndSwap(false, true) {
		r.warm.Add(1)
	}
	if r.inWindow(start.UnixNano()) {
		r.ack.Record(end.Sub(start))
	}
	if r.inWindow(end.UnixNano()) {
		r.ackedInWin.Add(1)
	}
	return true
}

var errNoPeer = errors.New("the contact chosen could not log in")

// senders returns the users that can send: logged in, with a contact.
func (r *runner) senders() []*user {
	var us []*user
	for _, u := range r.users {
		if u.c != nil && isClosed(u.ready) && len(u.peers) > 0 {
			us = append(us, u)
		}
	}
	return us
}

// load runs the warm-up and the measurement window, then drains.
func (r *runner) load(ctx context.Context, t0 time.Time) error {
	cfg := &r.cfg
	us := r.senders()
	if len(us) == 0 {
		return errors.New("bench: no user can send")
	}
	// An interrupt (the end of ctx) during the window ends it early, and
	// the run is still drained and reported; sends are not cut short by it.
	bg := context.WithoutCancel(ctx)
	sendCtx, cancelSends := context.WithCancel(bg)
	defer cancelSends()

	if !sleepUntil(ctx, t0) {
		return ctx.Err()
	}
	r.log.Info("sending", "users", len(us), "rate", cfg.Rate, "inflight", cfg.Inflight,
		"warmup", cfg.Warmup, "duration", cfg.Duration)

	var wg sync.WaitGroup
	if cfg.Rate > 0 {
		wg.Go(func() { r.pace(sendCtx, us, t0, &wg) })
	} else {
		for _, u := range us {
			for range cfg.Inflight {
				wg.Go(func() {
					for !r.stopping.Load() && sendCtx.Err() == nil {
						u.inflight.Add(1)
						if !r.sendOne(sendCtx, u) {
							time.Sleep(100 * time.Millisecond) // do not spin on errors
						}
					}
				})
			}
		}
	}

	progress := r.every(progressEvery, func() {
		r.log.Info("progress", "acked", r.acked.Load(), "delivered", r.delivered.Load(), "errors", r.sendErrs.Load())
	})
	warm := len(us)
	if cfg.Parts > 1 {
		warm = 0 // the processes share one window: it opens at t0+Warmup
	}
	if !r.warmUp(ctx, t0.Add(cfg.Warmup), warm) {
		// Interrupted in the warm-up: nothing was measured.
		r.stopping.Store(true)
		cancelSends()
		wg.Wait()
		progress()
		return ctx.Err()
	}
	// The window opens now (winStart is set last: a message counts once
	// both edges are known). With --procs it opens at t0+Warmup in every
	// process, warm or not, so that their figures add up.
	t1 := time.Now()
	if cfg.Parts > 1 {
		t1 = t0.Add(cfg.Warmup)
	}
	t2 := t1.Add(cfg.Duration)
	if cfg.Timeline {
		r.timeline.Store(newTimeline(t1, cfg.Duration))
	}
	r.winEnd.Store(t2.UnixNano())
	r.winStart.Store(t1.UnixNano())
	r.log.Info("measuring", "warm_up", t1.Sub(t0).Round(time.Millisecond), "window", cfg.Duration)
	// Snapshot CPU time at the window's edges.
	srv1, b1 := r.serverStats(bg), benchStats(false)
	m1, mErr := machineCPU()
	if !sleepUntil(ctx, t2) {
		t2 = time.Now()
		r.winEnd.Store(t2.UnixNano())
		r.res.Interrupted = true
		r.log.Warn("interrupted: ending the window early and draining", "window", t2.Sub(t1).Round(time.Millisecond))
	}
	r.stopping.Store(true)
	srv2, b2 := r.serverStats(bg), benchStats(false)
	m2, mErr2 := machineCPU()
	progress()
	r.res.WindowSeconds = t2.Sub(t1).Seconds()
	r.res.Server.window(srv1, srv2, r.res.WindowSeconds, r.ackedInWin.Load(), r.deliveredInWin.Load())
	r.res.Bench.window(b1, b2, r.res.WindowSeconds, r.ackedInWin.Load(), r.deliveredInWin.Load())
	if mErr == nil && mErr2 == nil {
		r.res.MachineCPU = (m2 - m1) / r.res.WindowSeconds
		r.res.CPUs = runtime.NumCPU()
	}

	// Drain: let sends finish and messages arrive, up to Drain.
	deadline := time.Now().Add(cfg.Drain)
	sendsDone := make(chan struct{})
	go func() { wg.Wait(); close(sendsDone) }()
	select {
	case <-sendsDone:
	case <-time.After(time.Until(deadline)):
		cancelSends()
		<-sendsDone
	}
	if cfg.Parts == 1 {
		for r.delivered.Load() < r.acked.Load() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	} else {
		// Deliveries come from the other parts' sends too: wait until
		// they stop.
		for last, quiet := r.delivered.Load(), time.Now(); time.Since(quiet) < drainQuiet && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			if n := r.delivered.Load(); n != last {
				last, quiet = n, time.Now()
			}
		}
	}
	r.res.DrainSeconds = time.Since(t2).Seconds()
	r.res.Server.After = r.serverStats(bg)
	return nil
}

// pace issues sends at Config.Rate from t0 until the run stops, each from a random
// user with a free in-flight slot. A send that finds no such user after a
// few tries is skipped and counted: the server is not keeping up.
func (r *runner) pace(ctx context.Context, us []*user, t0 time.Time, wg *sync.WaitGroup) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	limit := int32(r.cfg.Inflight)
	var issued int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if r.stopping.Load() {
				return
			}
			due := int64(now.Sub(t0).Seconds()*r.cfg.Rate) - issued
			for ; due > 0; due-- {
				issued++
				var u *user
				for range 8 {
					c := us[rand.IntN(len(us))]
					if c.inflight.Add(1) <= limit {
						u = c
						break
					}
					c.inflight.Add(-1)
				}
				if u == nil {
					r.skipped.Add(1)
					continue
				}
				wg.Go(func() { r.sendOne(ctx, u) })
			}
		}
	}
}

// warmUpMax bounds how long the warm-up waits, after --warmup, for every
// sender's first acknowledgement.
const warmUpMax = time.Minute

// warmUp waits until end and until each of the n senders had a send
// acknowledged: a user's first message to a contact sets up a sealed
// session (keys fetched, a prekey claimed), far slower than the rest, and
// the window must measure the steady state. It waits at most warmUpMax
// more for stragglers, then opens the window anyway. It reports false if
// ctx ended first.
func (r *runner) warmUp(ctx context.Context, end time.Time, n int) bool {
	if !sleepUntil(ctx, end) {
		return false
	}
	if int(r.warm.Load()) >= n {
		return true
	}
	r.log.Info("warm-up: waiting for every user's first acknowledgement", "warm", r.warm.Load(), "users", n)
	limit := time.Now().Add(warmUpMax)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for int(r.warm.Load()) < n {
		if time.Now().After(limit) {
			r.log.Warn("warm-up: some users never had a send acknowledged; measuring anyway", "warm", r.warm.Load(), "users", n)
			return true
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// sleepUntil sleeps until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// countErr counts err under phase and a short kind.
func (r *runner) countErr(phase string, err error) {
	kind := phase + ": " + errKind(err)
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.errs[kind] == 0 {
		r.errText[kind] = err.Error()
	}
	r.errs[kind]++
}

func errKind(err error) string {
	var we *wire.Err
	switch {
	case errors.As(err, &we):
		return string(we.Code)
	case errors.Is(err, client.ErrSessionEnded):
		return "session ended"
	case errors.Is(err, client.ErrConnLost):
		return "connection lost"
	case errors.Is(err, client.ErrClosed):
		return "closed"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, errNoPeer):
		return "no peer"
	case errors.Is(err, seal.ErrNotForMe):
		return "not sealed for this device"
	case errors.Is(err, seal.ErrCannotOpen):
		return "cannot open"
	}
	return "other"
}
