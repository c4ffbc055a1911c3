package natsbus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/bustest"
)

// awaitCopy waits until ok holds for r's copy, or fails the test after
// bustest.DeliveryTimeout.
func awaitCopy(t testing.TB, r *Registry, what string, ok func(c *sessionCopy) bool) {
	t.Helper()
	deadline := time.NewTimer(bustest.DeliveryTimeout)
	defer deadline.Stop()
	for {
		changed, done := r.copy.await(ok)
		if done {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%s: not in node %s's copy within %v", what, r.n.ID(), bustest.DeliveryTimeout)
		}
	}
}

// caughtUp reports whether the copy is filled and its watch delivered
// revision rev.
func caughtUp(rev uint64) func(c *sessionCopy) bool {
	return func(c *sessionCopy) bool { return c.warm && c.seen >= rev }
}

// holds reports whether the copy is filled and holds exactly the
// sessions of user with the given connections, in order.
func holds(user natter.UserID, conns ...string) func(c *sessionCopy) bool {
	return func(c *sessionCopy) bool {
		if !c.warm {
			return false
		}
		ss := c.users[escape(string(user))].sessions
		if len(ss) != len(conns) {
			return false
		}
		for i, s := range ss {
			if s.Conn != conns[i] || s.User != user {
				return false
			}
		}
		return true
	}
}

// TestSessionsFromCopy: once the copy is filled, Sessions sends nothing
// to NATS and still answers right; with the copy cold it reads NATS.
func TestSessionsFromCopy(t *testing.T) {
	s := newSpace(t, sharedURL(t))
	n := s.open(t, Config{Timeout: time.Hour}) // no heartbeat or check during the test
	reg := n.Registry()
	ctx := context.Background()
	since := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, d := range []natter.DeviceID{"phone", "laptop"} {
		s := natter.LiveSession{User: "alice", Device: d, Conn: "c-" + string(d), Status: natter.StatusOnline, Since: since,
			Reach: []natter.Candidate{{Type: "host", Proto: "udp", Addr: "10.0.0.1:5000"}}}
		if err := reg.Put(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	awaitCopy(t, reg, "alice's sessions", holds("alice", "c-laptop", "c-phone"))
	tests := []struct {
		name     string
		cold     bool
		requests bool
	}{
		{"Warm", false, false},
		{"Cold", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cold {
				reg.copy.reset() // as after a reconnect, until the new watch's values are in
			}
			before := n.nc.Stats().OutMsgs
			for range 100 {
				ss, err := reg.Sessions(ctx, "alice")
				if err != nil {
					t.Fatal(err)
				}
				if len(ss) != 2 || ss[0].Device != "laptop" || ss[1].Device != "phone" || !ss[0].Since.Equal(since) {
					t.Fatalf("Sessions(alice) = %+v, want laptop and phone", ss)
				}
				ss[0].Reach[0].Addr = "changed by the caller" // must not reach the copy
			}
			sent := n.nc.Stats().OutMsgs - before
			if got := sent > 0; got != tt.requests {
				t.Errorf("100 Sessions sent %d messages to NATS; want requests: %v", sent, tt.requests)
			}
			ss, _ := reg.Sessions(ctx, "alice")
			if ss[0].Reach[0].Addr != "10.0.0.1:5000" {
				t.Errorf("a caller's change reached the registry: %+v", ss[0].Reach)
			}
		})
	}
}

// TestCopyFollowsOtherNodes: changes one node makes show in the other
// node's copy (with no NATS read), and each node's own changes in its
// copy at once.
func TestCopyFollowsOtherNodes(t *testing.T) {
	s := newSpace(t, sharedURL(t))
	a, b := s.open(t, Config{Node: "a"}).Registry(), s.open(t, Config{Node: "b"}).Registry()
	ctx := context.Background()
	sess := func(device natter.DeviceID, conn string) natter.LiveSession {
		return natter.LiveSession{User: "alice", Device: device, Conn: conn, Status: natter.StatusOnline, Since: time.Now().UTC()}
	}
	for _, r := range []*Registry{a, b} {
		awaitCopy(t, r, "filled", caughtUp(0))
	}
	put := func(r *Registry, device natter.DeviceID, conn string) func() error {
		return func() error { return r.Put(ctx, sess(device, conn)) }
	}
	del := func(r *Registry, device natter.DeviceID, conn string) func() error {
		return func() error {
			ok, err := r.Delete(ctx, "alice", device, conn)
			if err == nil && !ok {
				err = errors.New("nothing deleted")
			}
			return err
		}
	}
	steps := []struct {
		name  string
		on    *Registry
		do    func() error
		conns []string // alice's connections after the step, by device
	}{
		{"PutOnA", a, put(a, "laptop", "c1"), []string{"c1"}},
		{"PutOnB", b, put(b, "phone", "c2"), []string{"c1", "c2"}},
		{"ReplaceOnA", a, put(a, "phone", "c3"), []string{"c1", "c3"}},
		{"DeleteOnB", b, del(b, "laptop", "c1"), []string{"c3"}},
		{"DeleteLastOnA", a, del(a, "phone", "c3"), nil},
		{"PutAgainOnB", b, put(b, "laptop", "c4"), []string{"c4"}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if _, ok := st.on.copy.await(holds("alice", st.conns...)); !ok {
			t.Fatalf("%s: the writer's copy does not have its own write at once", st.name)
		}
		for _, r := range []*Registry{a, b} {
			awaitCopy(t, r, st.name, holds("alice", st.conns...))
		}
	}
	if _, ok := b.copy.await(holds("bob")); !ok {
		t.Error("bob has sessions in b's copy")
	}
}

// synced is a node's registry whose Sessions first waits until the
// node's copy has everything written to the bucket before the call (on
// any node): what another node wrote shows on this one "within the
// watch's delivery", and the conformance suites, which read on one node
// right after writing on another, await that delivery this way.
type synced struct{ *Registry }

func (s synced) Sessions(ctx context.Context, user natter.UserID) ([]natter.LiveSession, error) {
	ctx, cancel := context.WithTimeout(ctx, bustest.DeliveryTimeout)
	defer cancel()
	st, err := s.kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	last := st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
	for {
		changed, ok := s.copy.await(caughtUp(last))
		if ok {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("revision %d not in node %s's copy: %w", last, s.n.ID(), ctx.Err())
		}
	}
	return s.Registry.Sessions(ctx, user)
}
