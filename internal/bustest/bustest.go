// Package bustest is the one conformance suite for natter.Bus and
// natter.Registry. Every implementation (internal/membus for one node,
// internal/natsbus for a cluster) runs it from its own tests:
//
//	func TestBus(t *testing.T) {
//		bustest.RunBus(t, func(t *testing.T) natter.Bus { return membus.New() })
//	}
//
// The suites test the contracts in package natter, plus the few
// expectations RunBus lists that bus.go does not yet spell out. They do not
// assume that delivery is synchronous: they wait for events with a timeout,
// and where they check that something did NOT arrive they first let the bus
// settle for a short while. Nor do they assume more ordering than the
// contract gives: only the events of one publisher for one user are ordered.
package bustest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Timeouts used by the suites. DeliveryTimeout bounds how long an event may
// take to arrive; SettleTime is how long the suites wait before concluding
// that an event that should not arrive did not.
const (
	DeliveryTimeout = 10 * time.Second
	SettleTime      = 150 * time.Millisecond
)

// recorder collects the events delivered to one subscription. Its fn is safe
// to call from several goroutines at once and never blocks.
type recorder struct {
	mu     sync.Mutex
	events [][]byte
	signal chan struct{} // has a value when events grew since the last wait
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 1)} }

func (r *recorder) fn(event []byte) {
	r.mu.Lock()
	r.events = append(r.events, bytes.Clone(event))
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// snapshot returns the events received so far.
func (r *recorder) snapshot() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.events...)
}

// wait returns the events received once there are at least n, failing the
// test if that takes longer than DeliveryTimeout.
func (r *recorder) wait(t testing.TB, what string, n int) [][]byte {
	t.Helper()
	deadline := time.NewTimer(DeliveryTimeout)
	defer deadline.Stop()
	for {
		if evs := r.snapshot(); len(evs) >= n {
			return evs
		}
		select {
		case <-r.signal:
		case <-deadline.C:
			t.Fatalf("%s: got %d events within %v, want %d", what, len(r.snapshot()), DeliveryTimeout, n)
		}
	}
}

// waitFor returns the events received once one of them is event, failing
// the test if that takes longer than DeliveryTimeout.
func (r *recorder) waitFor(t testing.TB, what string, event []byte) [][]byte {
	t.Helper()
	deadline := time.NewTimer(DeliveryTimeout)
	defer deadline.Stop()
	for {
		evs := r.snapshot()
		for _, ev := range evs {
			if bytes.Equal(ev, event) {
				return evs
			}
		}
		select {
		case <-r.signal:
		case <-deadline.C:
			t.Fatalf("%s: %q did not arrive within %v (got %.40q)", what, event, DeliveryTimeout, r.snapshot())
		}
	}
}

// settle waits SettleTime and returns the events received by then.
func (r *recorder) settle() [][]byte {
	time.Sleep(SettleTime)
	return r.snapshot()
}

// numbered returns the events "<prefix><i>" for i in [from, to).
func numbered(prefix string, from, to int) [][]byte {
	var out [][]byte
	for i := from; i < to; i++ {
		out = append(out, fmt.Appendf(nil, "%s%d", prefix, i))
	}
	return out
}

// diffEvents describes the first difference between got and want, or "".
func diffEvents(got, want [][]byte) string {
	for i := range min(len(got), len(want)) {
		if !bytes.Equal(got[i], want[i]) {
			return fmt.Sprintf("event %d is %.40q, want %.40q", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("got %d events, want %d", len(got), len(want))
	}
	return ""
}
