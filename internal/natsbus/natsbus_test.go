package natsbus

import (
	"context"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/bustest"
)

// The conformance suites run on one node, and on two nodes (two NATS
// connections) sharing one NATS server: one subscribes, the other
// publishes; one puts, the other deletes and reads.
func TestBus(t *testing.T) {
	url := sharedURL(t)
	t.Run("OneNode", func(t *testing.T) {
		bustest.RunBus(t, func(t *testing.T) natter.Bus {
			return newSpace(t, url).open(t, Config{}).Bus()
		})
	})
	t.Run("TwoNodes", func(t *testing.T) {
		bustest.RunBus(t, func(t *testing.T) natter.Bus {
			s := newSpace(t, url)
			return busPair{sub: s.open(t, Config{Node: "a"}).Bus(), pub: s.open(t, Config{Node: "b"}).Bus()}
		})
	})
}

func TestRegistry(t *testing.T) {
	url := sharedURL(t)
	t.Run("OneNode", func(t *testing.T) {
		bustest.RunRegistry(t, func(t *testing.T) natter.Registry {
			return newSpace(t, url).open(t, Config{}).Registry()
		})
	})
	t.Run("TwoNodes", func(t *testing.T) {
		bustest.RunRegistry(t, func(t *testing.T) natter.Registry {
			s := newSpace(t, url)
			return regPair{put: s.open(t, Config{Node: "a"}).Registry(), other: s.open(t, Config{Node: "b"}).Registry()}
		})
	})
}

// busPair is two nodes seen as one bus: events are published on one and
// received on the other.
type busPair struct{ sub, pub *Bus }

func (p busPair) Publish(ctx context.Context, user natter.UserID, event []byte) error {
	return p.pub.Publish(ctx, user, event)
}

func (p busPair) Subscribe(user natter.UserID, fn func([]byte)) (natter.Subscription, error) {
	return p.sub.Subscribe(user, fn)
}

func (p busPair) Close() error {
	p.sub.Close()
	return p.pub.Close()
}

// regPair is two nodes seen as one registry: sessions are put on one,
// deleted and read on the other. The other node reads its own deletes at
// once, and the puts once its watch delivered them (synced).
type regPair struct{ put, other *Registry }

func (p regPair) Put(ctx context.Context, s natter.LiveSession) error { return p.put.Put(ctx, s) }

func (p regPair) Delete(ctx context.Context, user natter.UserID, device natter.DeviceID, conn string) (bool, error) {
	return p.other.Delete(ctx, user, device, conn)
}

func (p regPair) Sessions(ctx context.Context, user natter.UserID) ([]natter.LiveSession, error) {
	return synced{p.other}.Sessions(ctx, user)
}

// TestExpiry: a node whose NATS connection ends without any cleanup has
// its sessions expire (short timeout), reported once to the other nodes.
// A node sees the removals another made once its watch delivered them
// (synced).
func TestExpiry(t *testing.T) {
	url := sharedURL(t)
	const timeout = 3 * time.Second
	bustest.RunExpiry(t, func(t *testing.T) bustest.OpenNode {
		s := newSpace(t, url)
		return func(t *testing.T) (natter.ExpiringRegistry, func()) {
			n := s.open(t, Config{Timeout: timeout, Node: "eu.west/1"}) // natterd takes any --node without spaces
			return synced{n.Registry()}, n.Crash
		}
	}, timeout)
}

// TestTakenForDead: the other nodes take a live node for dead (as when it
// was cut off from NATS for half of Timeout), remove its sessions and
// report them expired. The node notices that its heartbeat is gone, puts
// its sessions back and reports them restored, so that contacts are told
// again.
func TestTakenForDead(t *testing.T) {
	s := newSpace(t, sharedURL(t))
	cfg := Config{Timeout: 3 * time.Second}
	a, b := s.open(t, cfg), s.open(t, cfg)
	expired, restored := make(chan natter.LiveSession, 4), make(chan natter.LiveSession, 4)
	b.Registry().OnExpire(func(s natter.LiveSession) { expired <- s })
	a.Registry().OnRestore(func(s natter.LiveSession) { restored <- s })
	ctx := context.Background()
	laptop := natter.LiveSession{User: "alice", Device: "laptop", Conn: "c1", Status: natter.StatusOnline, Since: time.Now().UTC()}
	if err := a.Registry().Put(ctx, laptop); err != nil {
		t.Fatal(err)
	}
	// What b does when a's heartbeat stood still.
	b.Registry().expireNode(a.ID())
	for _, ch := range []struct {
		what string
		c    chan natter.LiveSession
	}{{"expired", expired}, {"restored", restored}} {
		select {
		case got := <-ch.c:
			if got.User != "alice" || got.Device != "laptop" || got.Conn != "c1" {
				t.Fatalf("%s %+v, want alice's laptop", ch.what, got)
			}
		case <-time.After(3 * cfg.Timeout):
			t.Fatalf("alice's laptop not reported %s", ch.what)
		}
	}
	// b sees it once its watch delivered a's write.
	awaitCopy(t, b.Registry(), "alice's laptop put back", holds("alice", "c1"))
	ss, err := b.Registry().Sessions(ctx, "alice")
	if err != nil || len(ss) != 1 || ss[0].Conn != "c1" {
		t.Fatalf("alice's sessions after a put them back: %v, %v", ss, err)
	}
	// A session that ended while it was gone stays gone.
	if ok, err := a.Registry().Delete(ctx, "alice", "laptop", "c1"); err != nil || !ok {
		t.Fatalf("Delete: %v, %v", ok, err)
	}
}
