package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/natstest"
	"github.com/natterim/natter/internal/pgtest"
	"github.com/natterim/natter/wire"
)

// ringUsers signs up n users spread over the cluster's nodes, each a
// contact of the next.
func ringUsers(t *testing.T, c *cluster, n int) []*user {
	t.Helper()
	var users []*user
	for i := range n {
		users = append(users, c.signup(natter.UserID(fmt.Sprintf("user%d", i)), []string{c.nodes[i%len(c.nodes)].addr}))
	}
	for i, u := range users {
		befriend(t, u, users[(i+1)%len(users)])
	}
	return users
}

// restartMidTraffic has users send continuously, runs restart (which
// stops and starts a service the cluster needs) two seconds in, lets
// traffic go on for four more seconds, and returns the failed sends by
// code, those that failed while restart ran with code unavailable, and how
// many were acknowledged after it. The caller checks delivery (tr.check).
func restartMidTraffic(t *testing.T, users []*user, restart func()) (tr *traffic, during, after int) {
	t.Helper()
	tr = &traffic{t: t, users: users}
	ctx, stop := context.WithCancel(t.Context())
	senders := tr.run(ctx, 20*time.Millisecond)
	time.Sleep(2 * time.Second)
	restart()
	tr.mu.Lock()
	during, before := tr.errs[string(wire.CodeUnavailable)], len(tr.acked)
	tr.mu.Unlock()
	time.Sleep(4 * time.Second)
	stop()
	senders.Wait()
	tr.mu.Lock()
	after = len(tr.acked) - before
	t.Logf("failed sends by code: %v; %d acknowledged after the restart", tr.errs, after)
	tr.mu.Unlock()
	if after == 0 {
		t.Error("no send was acknowledged after the restart")
	}
	return tr, during, after
}

// TestClusterPostgresRestart stops PostgreSQL for three seconds while users
// on two nodes send continuously: sends fail with "unavailable" meanwhile,
// the nodes take writes again once it is back, and every acknowledged
// message arrives exactly once and in order.
func TestClusterPostgresRestart(t *testing.T) {
	pg := pgtest.StartServer(t)
	c := newClusterOn(t, 2, pg.URL(), natstest.Start(t, ""))
	tr, down, _ := restartMidTraffic(t, ringUsers(t, c, 4), func() {
		pg.Stop()
		t.Log("PostgreSQL stopped")
		time.Sleep(3 * time.Second)
		pg.Start()
		t.Log("PostgreSQL started again")
	})
	if down == 0 {
		t.Errorf("no send failed with %q while PostgreSQL was down", wire.CodeUnavailable)
	}
	tr.check(30 * time.Second)
}

// TestClusterNATSRestart restarts the NATS server while users on two nodes
// send continuously: the nodes reconnect, and every acknowledged message
// arrives exactly once and in order, those whose live push was lost with
// the bus from the store.
func TestClusterNATSRestart(t *testing.T) {
	nats := natstest.Start(t, "")
	c := newClusterOn(t, 2, pgtest.Schema(t), nats)
	tr, _, _ := restartMidTraffic(t, ringUsers(t, c, 4), func() {
		nats.Restart()
		t.Log("NATS restarted")
	})
	tr.check(30 * time.Second)
}
