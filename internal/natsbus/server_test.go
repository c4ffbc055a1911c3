package natsbus

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/natstest"
)

// collector records a subscription's events.
type collector struct {
	mu     sync.Mutex
	events [][]byte
	signal chan struct{}
}

func newCollector() *collector { return &collector{signal: make(chan struct{}, 1)} }

func (c *collector) fn(ev []byte) {
	c.mu.Lock()
	c.events = append(c.events, bytes.Clone(ev))
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.events...)
}

// TestServerRestart: the NATS server stops and starts again mid-test,
// losing its memory (the registry's bucket). The nodes reconnect, events
// flow again, and each node puts back the sessions it holds.
func TestServerRestart(t *testing.T) {
	srv := natstest.Start(t, "")
	s := newSpace(t, srv.URL())
	cfg := Config{Timeout: 3 * time.Second, ReconnectWait: 50 * time.Millisecond, OpTimeout: 2 * time.Second}
	a, b := s.open(t, cfg), s.open(t, cfg)
	ctx := context.Background()

	var restored atomic.Int32
	a.Registry().OnRestore(func(natter.LiveSession) { restored.Add(1) })
	got := newCollector()
	if _, err := a.Bus().Subscribe("alice", got.fn); err != nil {
		t.Fatal(err)
	}
	laptop := natter.LiveSession{User: "alice", Device: "laptop", Conn: "c1", Node: "a", Status: natter.StatusOnline,
		Since: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := a.Registry().Put(ctx, laptop); err != nil {
		t.Fatal(err)
	}
	if err := b.Bus().Publish(ctx, "alice", []byte("before")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, got, func(ev []byte) bool { return string(ev) == "before" }, nil)

	awaitCopy(t, b.Registry(), "alice's laptop", holds("alice", "c1"))
	gen := b.Registry().copy.generation()
	srv.Stop()
	// Cut off, b answers from the copy it has: NATS could not answer.
	if ss, err := b.Registry().Sessions(ctx, "alice"); err != nil || len(ss) != 1 || ss[0].Conn != "c1" {
		t.Fatalf("Sessions while NATS is down: %v, %v; want alice's laptop from the copy", ss, err)
	}
	srv.Restart()

	// Publish from b until a receives: the first events may go while b or a
	// is still reconnecting (lost, as the package doc says).
	i := 0
	waitEvent(t, got, func(ev []byte) bool { return bytes.HasPrefix(ev, []byte("after ")) }, func() {
		i++
		b.Bus().Publish(ctx, "alice", fmt.Appendf(nil, "after %d", i))
	})
	// a puts its session back in the new (empty) bucket; b fills its copy
	// again from there.
	awaitCopy(t, b.Registry(), "alice's laptop after the restart", func(c *sessionCopy) bool {
		return c.gen > gen && holds("alice", "c1")(c)
	})
	ss, err := b.Registry().Sessions(ctx, "alice")
	if err != nil || len(ss) != 1 || ss[0].Conn != "c1" || !ss[0].Since.Equal(laptop.Since) {
		t.Fatalf("alice's sessions on b after the NATS server restarted: %v, %v", ss, err)
	}
	// And the registry works for new sessions.
	phone := laptop
	phone.Device, phone.Conn = "phone", "c2"
	if err := b.Registry().Put(ctx, phone); err != nil {
		t.Fatalf("Put after the restart: %v", err)
	}
	if ok, err := a.Registry().Delete(ctx, "alice", "laptop", "c1"); err != nil || !ok {
		t.Fatalf("Delete after the restart: %v, %v", ok, err)
	}
	for _, r := range []*Registry{a.Registry(), b.Registry()} {
		awaitCopy(t, r, "alice's phone alone after the restart", holds("alice", "c2"))
	}
	// Nobody was told alice went offline: nothing to tell again.
	if n := restored.Load(); n != 0 {
		t.Errorf("%d sessions reported restored after NATS lost them; want none", n)
	}
}

// waitEvent waits up to 20 s for an event that match accepts, calling
// poke (if not nil) every 50 ms meanwhile.
func waitEvent(t *testing.T, c *collector, match func([]byte) bool, poke func()) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	if poke != nil {
		poke()
	}
	for {
		for _, ev := range c.snapshot() {
			if match(ev) {
				return
			}
		}
		select {
		case <-c.signal:
		case <-tick.C:
			if poke != nil {
				poke()
			}
		case <-deadline.C:
			t.Fatalf("event did not arrive within 20s; got %.60q", c.snapshot())
		}
	}
}

// TestLargeEventsInterleave: on a server with a small max_payload, events
// go in parts; parts of events published at once by several goroutines of
// one node interleave on the wire and still arrive whole, each publisher's
// in order, on the other node.
func TestLargeEventsInterleave(t *testing.T) {
	srv := natstest.Start(t, "max_payload: 1024")
	s := newSpace(t, srv.URL())
	a, b := s.open(t, Config{}), s.open(t, Config{})
	got := newCollector()
	if _, err := a.Bus().Subscribe("alice", got.fn); err != nil {
		t.Fatal(err)
	}
	const publishers, each = 3, 20
	event := func(p, i int) []byte {
		head := fmt.Sprintf("p%d:%d:", p, i)
		return append([]byte(head), bytes.Repeat([]byte{byte('a' + p)}, 700*(1+i%8))...) // 1 to 6 parts
	}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				if err := b.Bus().Publish(context.Background(), "alice", event(p, i)); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for len(got.snapshot()) < publishers*each {
		select {
		case <-got.signal:
		case <-deadline.C:
			t.Fatalf("got %d events, want %d", len(got.snapshot()), publishers*each)
		}
	}
	next := make([]int, publishers)
	for _, ev := range got.snapshot() {
		var p, i int
		if _, err := fmt.Sscanf(string(ev), "p%d:%d:", &p, &i); err != nil || p < 0 || p >= publishers {
			t.Fatalf("unexpected event %.40q", ev)
		}
		if i != next[p] || !bytes.Equal(ev, event(p, i)) {
			t.Fatalf("publisher %d: got event %d (%d bytes), want event %d whole (%d bytes)", p, i, len(ev), next[p], len(event(p, next[p])))
		}
		next[p]++
	}
}

// TestFailover: with several URLs (a NATS cluster's servers), nodes whose
// server dies reconnect to another in the list; events flow again there,
// and the registry comes back (these two servers are not clustered, so
// the second has no bucket until the nodes recreate it).
func TestFailover(t *testing.T) {
	first, second := natstest.Start(t, ""), natstest.Start(t, "")
	second.Stop() // not up yet when the nodes connect: they take the first
	s := newSpace(t, first.URL())
	s.url = first.URL() + ", " + second.URL()
	cfg := Config{Timeout: 3 * time.Second, ReconnectWait: 50 * time.Millisecond, OpTimeout: 2 * time.Second}
	a, b := s.open(t, cfg), s.open(t, cfg)
	ctx := context.Background()
	got := newCollector()
	if _, err := a.Bus().Subscribe("alice", got.fn); err != nil {
		t.Fatal(err)
	}
	laptop := natter.LiveSession{User: "alice", Device: "laptop", Conn: "c1", Since: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := a.Registry().Put(ctx, laptop); err != nil {
		t.Fatal(err)
	}

	second.Restart()
	first.Stop()
	i := 0
	waitEvent(t, got, func(ev []byte) bool { return bytes.HasPrefix(ev, []byte("on the second ")) }, func() {
		i++
		b.Bus().Publish(ctx, "alice", fmt.Appendf(nil, "on the second %d", i))
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		ss, err := b.Registry().Sessions(ctx, "alice")
		if err == nil && len(ss) == 1 && ss[0].Conn == "c1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's session not in the second server's registry within 20s: %v, %v", ss, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
