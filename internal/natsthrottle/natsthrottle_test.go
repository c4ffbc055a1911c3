package natsthrottle_test

import (
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter/internal/auth"
	"github.com/natterim/natter/internal/natstest"
	"github.com/natterim/natter/internal/natsthrottle"
	"github.com/natterim/natter/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func policy() *auth.Throttle {
	return &auth.Throttle{Base: time.Second, Max: time.Hour, Forget: time.Hour, MaxKeys: 1000}
}

// TestShared: two nodes share one back-off. Failures recorded on either
// (also at the same time) count once each, a wait is seen on both, and a
// success on one clears it for both.
func TestShared(t *testing.T) {
	srv := natstest.Start(t, "")
	ctx := t.Context()
	var nodes []*natsthrottle.Throttle
	for range 2 {
		c, err := natsthrottle.Dial(ctx, srv.URL(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		nodes = append(nodes, c.Throttle(policy(), "u", slog.New(slog.DiscardHandler)))
	}
	a, b := nodes[0], nodes[1]
	now := time.Now()
	if d := b.Wait("u:alice", now); d != 0 {
		t.Fatalf("wait before any failure: %v", d)
	}
	if d := a.Fail("u:alice", now); d != time.Second {
		t.Fatalf("first failure: back-off %v, want 1s", d)
	}
	if d := b.Wait("u:alice", now); d != time.Second {
		t.Fatalf("the other node waits %v, want 1s", d)
	}
	if d := b.Fail("u:alice", now); d != 2*time.Second {
		t.Fatalf("second failure, on the other node: back-off %v, want 2s", d)
	}
	// Ten failures at once, five on each node: each counted once.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() { nodes[i%2].Fail("u:alice", now) })
	}
	wg.Wait()
	if d, want := a.Wait("u:alice", now), policy().Backoff(12); d != want {
		t.Fatalf("after 12 failures: wait %v, want %v", d, want)
	}
	b.Succeed("u:alice")
	if d := a.Wait("u:alice", now); d != 0 {
		t.Fatalf("after a success on the other node: wait %v", d)
	}
	if d := a.Fail("u:alice", now); d != time.Second {
		t.Fatalf("a failure after the success starts over: %v", d)
	}
}

// TestNATSDown: with NATS unreachable, the node's own counts apply.
func TestNATSDown(t *testing.T) {
	srv := natstest.Start(t, "")
	c, err := natsthrottle.Dial(t.Context(), srv.URL(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	th := c.Throttle(policy(), "u", slog.New(slog.DiscardHandler))
	srv.Stop()
	now := time.Now()
	if d := th.Fail("u:bob", now); d != time.Second {
		t.Fatalf("failure with NATS down: %v, want this node's 1s", d)
	}
	if d := th.Wait("u:bob", now); d != time.Second {
		t.Fatalf("wait with NATS down: %v, want this node's 1s", d)
	}
}

// TestLimiterShared: two nodes share one user's allowance: a burst spent on
// one leaves nothing on the other, and the bucket refills at its rate.
func TestLimiterShared(t *testing.T) {
	srv := natstest.Start(t, "")
	var nodes []*natsthrottle.Limiter
	for range 2 {
		c, err := natsthrottle.Dial(t.Context(), srv.URL(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		nodes = append(nodes, c.Limiter("msgs", 10, 40, slog.New(slog.DiscardHandler)))
	}
	now := time.Now()
	allowed := 0
	for i := range 100 { // alternate nodes, at one instant: only the burst passes
		if ok, _ := nodes[i%2].Allow("alice", now); ok {
			allowed++
		}
	}
	if allowed != 40 {
		t.Fatalf("%d actions allowed across two nodes at one instant, want the burst, 40", allowed)
	}
	ok, retry := nodes[1].Allow("alice", now)
	if ok || retry <= 0 || retry > time.Second {
		t.Fatalf("after the burst: ok %v, retry %v (want a wait of at most 1 s)", ok, retry)
	}
	// A second later ten more tokens are there (leased ten at a time).
	later, n := now.Add(time.Second), 0
	for range 20 {
		if ok, _ := nodes[0].Allow("alice", later); ok {
			n++
		}
	}
	if n != 10 {
		t.Fatalf("%d allowed a second later, want 10", n)
	}
	if ok, _ := nodes[1].Allow("bob", now); !ok {
		t.Fatal("another user's allowance is not alice's")
	}
}
