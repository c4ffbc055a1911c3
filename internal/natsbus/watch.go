package natsbus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// watch is the running watch of the bucket that keeps the
// registry's copy current (sessionCopy).
type watch struct {
	w      jetstream.KeyWatcher
	cancel context.CancelFunc // ends the watch's subscription
	stop   chan struct{}      // closed to end follow
	done   chan struct{}      // closed when follow returned
}

// rewatch replaces the watch that keeps the copy current: it stops the
// running one, empties the copy (cold: Sessions reads the bucket) and
// starts a new watch, which fills the copy with the bucket's values and
// then follows its changes. It is called by the heartbeat goroutine only
// (and by newRegistry before it starts), after a reconnect and after the
// bucket was created again; if it fails, the next heartbeat tries again.
// Starting the watch takes at most OpTimeout.
func (r *Registry) rewatch() error {
	r.stopWatch()
	gen := r.copy.reset()
	// The watch lives as long as its context (nats.go unsubscribes when
	// it ends), so the context has no deadline; starting it is bounded
	// by canceling it if it is not up after OpTimeout.
	ctx, cancel := context.WithCancel(r.n.base)
	timer := time.AfterFunc(r.n.cfg.OpTimeout, cancel)
	// Every key, heartbeats included (the copy keeps only the users'):
	// then the revision the watch reached is the bucket's, which tests
	// await.
	w, err := r.kv.WatchAll(ctx)
	if !timer.Stop() && err == nil {
		err = context.DeadlineExceeded // canceled as it came up
		w.Stop()
	}
	if err != nil {
		cancel()
		r.watchWanted = true
		return fmt.Errorf("natsbus: watch the registry: %w", err)
	}
	r.watchWanted = false
	r.watch = &watch{w: w, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
	wt := r.watch
	r.n.wg.Go(func() { r.follow(gen, wt) })
	return nil
}

// stopWatch stops the running watch, if any, and waits for its follow to
// return. The copy keeps what it holds.
func (r *Registry) stopWatch() {
	if r.watch == nil {
		return
	}
	close(r.watch.stop)
	<-r.watch.done
	r.watch = nil
}

// follow applies what wt's watcher delivers to the copy until wt is
// stopped or the node closes. If the watcher ends by itself (its
// subscription closed), it asks the heartbeat goroutine to start another.
func (r *Registry) follow(gen uint64, wt *watch) {
	defer close(wt.done)
	defer r.endWatch(wt)
	for {
		select {
		case <-r.n.base.Done():
			return
		case <-wt.stop:
			return
		case e, ok := <-wt.w.Updates():
			if !ok {
				// Not followed any more: cold until the next watch.
				r.copy.cool(gen)
				r.n.log.Warn("registry watch ended; starting another")
				select {
				case r.watchEnded <- struct{}{}:
				default:
				}
				return
			}
			if e == nil {
				r.copy.ready(gen)
				continue
			}
			r.copy.applyWatch(gen, e)
		}
	}
}

// endWatch stops wt's watcher and drains what it still delivers (nats.go's
// watcher blocks on a full channel), for at most OpTimeout.
func (r *Registry) endWatch(wt *watch) {
	w := wt.w
	w.Stop()
	wt.cancel()
	t := time.NewTimer(r.n.cfg.OpTimeout)
	defer t.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}
