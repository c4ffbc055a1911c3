package bustest

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// OpenNode opens one more node of a cluster that shares one registry, and
// returns its registry and a function that kills the node as a crash would:
// its connection to the cluster ends at once and nothing is cleaned up.
type OpenNode func(t *testing.T) (reg natter.ExpiringRegistry, kill func())

// RunExpiry runs the natter.ExpiringRegistry conformance suite, for a
// cluster's registry. cluster must return an OpenNode for a new, empty
// cluster each time it is called. within is how long the implementation
// may take to expire a dead node's sessions (its timeout); the suite waits
// up to twice that, plus DeliveryTimeout.
//
// The suite checks that when a node dies, the sessions it held (and only
// those) leave the registry and are reported once each, across the
// surviving nodes, with every field as put; that sessions removed by Delete
// are never reported; and that the surviving nodes' sessions stay.
func RunExpiry(t *testing.T, cluster func(t *testing.T) OpenNode, within time.Duration) {
	t.Run("DeadNodeExpires", func(t *testing.T) {
		t.Parallel()
		testDeadNode(t, cluster(t), within)
	})
}

// expiries collects what OnExpire reports on every node.
type expiries struct {
	mu     sync.Mutex
	got    []natter.LiveSession
	by     []string // the node that reported each
	signal chan struct{}
}

func (e *expiries) watch(node string, reg natter.ExpiringRegistry) {
	reg.OnExpire(func(s natter.LiveSession) {
		e.mu.Lock()
		e.got = append(e.got, s)
		e.by = append(e.by, node)
		e.mu.Unlock()
		select {
		case e.signal <- struct{}{}:
		default:
		}
	})
}

func (e *expiries) snapshot() ([]natter.LiveSession, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.got), slices.Clone(e.by)
}

func testDeadNode(t *testing.T, open OpenNode, within time.Duration) {
	doomed, kill := open(t)
	a, _ := open(t)
	b, _ := open(t)
	ex := &expiries{signal: make(chan struct{}, 1)}
	ex.watch("doomed", doomed)
	ex.watch("a", a)
	ex.watch("b", b)

	laptop := session("alice", "laptop", "c1")
	laptop.Node = "doomed"
	bobPhone := session("bob", "phone", "c2")
	bobPhone.Node, bobPhone.Quiet, bobPhone.Reach = "doomed", true, nil
	alicePhone := session("alice", "phone", "c3")
	alicePhone.Node = "a"
	put(t, doomed, laptop, bobPhone)
	put(t, a, alicePhone)
	// Sessions that end by Delete, on the doomed node and on another, are
	// never reported.
	gone1, gone2 := session("carol", "desk", "c4"), session("dave", "tablet", "c5")
	put(t, doomed, gone1)
	put(t, b, gone2)
	if !del(t, doomed, "carol", "desk", "c4") || !del(t, b, "dave", "tablet", "c5") {
		t.Fatal("Delete of the owning connection reported nothing removed")
	}

	killed := time.Now()
	kill()
	want := []natter.LiveSession{laptop, bobPhone}
	deadline := time.NewTimer(2*within + DeliveryTimeout)
	defer deadline.Stop()
	for {
		got, _ := ex.snapshot()
		if len(got) >= len(want) {
			break
		}
		select {
		case <-ex.signal:
		case <-deadline.C:
			t.Fatalf("%d of the dead node's %d sessions reported expired within %v: %s",
				len(got), len(want), 2*within+DeliveryTimeout, describeSessions(got))
		}
	}
	t.Logf("the dead node's sessions expired %v after it was killed (timeout %v)", time.Since(killed).Round(time.Millisecond), within)

	checkSessions(t, a, "alice", alicePhone)
	checkSessions(t, b, "bob")
	checkSessions(t, b, "carol")

	// Each reported once, by a surviving node, as put. (Let a late
	// duplicate from another surviving node show itself first.)
	time.Sleep(SettleTime)
	got, by := ex.snapshot()
	if slices.Contains(by, "doomed") {
		t.Errorf("the dead node reported expiries: %v", by)
	}
	slices.SortFunc(got, func(x, y natter.LiveSession) int { return strings.Compare(string(x.User), string(y.User)) })
	if len(got) != len(want) || !slices.EqualFunc(got, want, sameSession) {
		t.Fatalf("expired sessions reported:\ngot  %s\nwant %s (each once)", describeSessions(got), describeSessions(want))
	}
}
