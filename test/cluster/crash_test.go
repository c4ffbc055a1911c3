package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// traffic is users sending to each other continuously, in a ring, and what
// each received.
type traffic struct {
	t     *testing.T
	users []*user

	mu    sync.Mutex
	acked map[natter.MessageID]natter.UserID // acknowledged sends, by recipient
	got   map[natter.UserID]map[natter.MessageID]int
	order map[natter.UserID][]int // per recipient: the sender's counters, in the order received
	errs  map[string]int          // failed sends, by error code ("other" for errors without one)
}

// run makes each user send to the next one every interval until ctx ends,
// and collects what every user receives.
func (tr *traffic) run(ctx context.Context, interval time.Duration) *sync.WaitGroup {
	tr.acked = map[natter.MessageID]natter.UserID{}
	tr.got = map[natter.UserID]map[natter.MessageID]int{}
	tr.order = map[natter.UserID][]int{}
	tr.errs = map[string]int{}
	var wg sync.WaitGroup
	for i, u := range tr.users {
		to := tr.users[(i+1)%len(tr.users)].name
		wg.Go(func() {
			tk := time.NewTicker(interval)
			defer tk.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
				}
				sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				r, err := u.Send(sctx, to, []byte(fmt.Sprintf("%s %d", u.name, n)))
				cancel()
				tr.mu.Lock()
				if err == nil {
					tr.acked[r.ID] = to
				} else {
					code := "other"
					var we *wire.Err
					if errors.As(err, &we) {
						code = string(we.Code)
					}
					tr.errs[code]++
				}
				tr.mu.Unlock()
			}
		})
	}
	for _, u := range tr.users {
		go func() {
			for ev := range u.ch {
				var msgs []client.MessageEvent
				switch e := ev.(type) {
				case client.MessageEvent:
					msgs = append(msgs, e)
				case client.InboxEvent:
					for _, g := range e.Groups {
						for _, m := range g.Messages {
							msgs = append(msgs, client.MessageEvent{Message: m.Message})
						}
					}
				}
				tr.mu.Lock()
				for _, m := range msgs {
					if m.Message.From == u.name {
						continue
					}
					if tr.got[u.name] == nil {
						tr.got[u.name] = map[natter.MessageID]int{}
					}
					tr.got[u.name][m.Message.ID]++
					_, num, _ := strings.Cut(string(m.Message.Body), " ")
					k, _ := strconv.Atoi(num)
					tr.order[u.name] = append(tr.order[u.name], k)
				}
				tr.mu.Unlock()
			}
		}()
	}
	return &wg
}

// check waits until every acknowledged message reached its recipient, then
// checks that none came twice and each recipient got its sender's messages
// in order.
func (tr *traffic) check(d time.Duration) {
	t := tr.t
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		tr.mu.Lock()
		var missing []string
		for id, to := range tr.acked {
			if tr.got[to][id] == 0 {
				missing = append(missing, fmt.Sprintf("%s→%s", id, to))
			}
		}
		n := len(tr.acked)
		tr.mu.Unlock()
		if len(missing) == 0 {
			t.Logf("%d acknowledged messages, every one delivered", n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages never arrived, e.g. %v", len(missing), n, missing[:min(5, len(missing))])
		}
		time.Sleep(100 * time.Millisecond)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for u, ids := range tr.got {
		for id, n := range ids {
			if n > 1 {
				t.Errorf("%s got %s %d times", u, id, n)
			}
		}
		o := tr.order[u]
		for i := 1; i < len(o); i++ {
			if o[i] <= o[i-1] {
				t.Errorf("%s got its sender's message %d after %d", u, o[i], o[i-1])
				break
			}
		}
	}
}

// TestClusterNodeKilled: users on three nodes send continuously; one node
// is killed with SIGKILL. Its users' clients reconnect to the other nodes,
// every acknowledged message reaches its recipient exactly once and in
// order, and once everyone has left, no session is left online. The killed
// node, restarted, takes users again.
func TestClusterNodeKilled(t *testing.T) { testNodeGoneVia(t, (*node).kill, false) }

// TestClusterNodeDrained is TestClusterNodeKilled with SIGTERM: the node
// tells its clients to reconnect, and they land on the others.
func TestClusterNodeDrained(t *testing.T) { testNodeGoneVia(t, (*node).stop, false) }

// testNodeGoneVia runs the node-gone test with end ending n1; viaProxy puts
// HAProxy in front (docs/cluster/haproxy.cfg) and gives clients its
// address only, instead of every node's.
func testNodeGoneVia(t *testing.T, end func(*node), viaProxy bool) {
	c := newCluster(t, 3)
	var p *proxy
	if viaProxy {
		p = startHAProxy(t, c)
		webThroughProxy(t, c, p)
	}
	var users []*user
	for i := range 6 {
		// Each user's first address is a node of its own; the others
		// are where it goes when that one fails.
		addrs := append([]string{c.nodes[i%3].addr}, c.nodes[(i+1)%3].addr, c.nodes[(i+2)%3].addr)
		if p != nil {
			addrs = []string{p.tls} // the proxy places them (leastconn)
		} else {
			c.place = c.nodes[i%3].name
		}
		users = append(users, c.signup(natter.UserID(fmt.Sprintf("user%d", i)), addrs))
		c.place = ""
	}
	for i, u := range users {
		befriend(t, u, users[(i+1)%len(users)])
	}
	onKilled := 0
	onN1 := map[natter.UserID]bool{}
	var victim, watcher *user // a user on n1 and a contact of theirs elsewhere
	for i, u := range users {
		if u.Welcome().Node != "n1" {
			continue
		}
		onKilled++
		onN1[u.name] = true
		if next := users[(i+1)%len(users)]; next.Welcome().Node != "n1" && victim == nil {
			victim, watcher = u, next
		}
	}
	if victim == nil {
		t.Fatalf("%d users on n1, none with a contact on another node", onKilled)
	}

	tr := &traffic{t: t, users: users}
	ctx, stop := context.WithCancel(t.Context())
	senders := tr.run(ctx, 20*time.Millisecond)
	time.Sleep(2 * time.Second)
	killed := time.Now()
	end(c.nodes[0])
	t.Logf("n1 gone (%d users on it)", onKilled)
	// How long its users take to be on another node (a figure for the
	// log; the checks below are on what was delivered).
	back := map[natter.UserID]time.Duration{}
	for time.Since(killed) < 4*time.Second && len(back) < onKilled {
		for _, u := range users {
			if _, ok := back[u.name]; !ok && onN1[u.name] && u.Welcome().Node != "n1" {
				back[u.name] = time.Since(killed)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("n1's users back on other nodes after %v", back)
	time.Sleep(time.Until(killed.Add(4 * time.Second)))
	stop()
	senders.Wait()
	tr.check(30 * time.Second)
	for _, u := range users {
		if n := u.Welcome().Node; n == "n1" {
			t.Errorf("%s is still on n1 (%s after the kill)", u.name, time.Since(killed))
		}
	}

	// No session of the killed node is left online: the victim's contact
	// sees them offline once their client has gone.
	if err := victim.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs, err := watcher.Contacts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		st := natter.StatusOnline
		for _, ct := range cs {
			if ct.User == victim.name {
				st = ct.Status
			}
		}
		if st == natter.StatusOffline {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still sees %s %s 10 s after they left (a session of the killed node left online?)", watcher.name, victim.name, st)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The killed node comes back on its address and takes users.
	c.nodes[0].start()
	late := c.signup("late", []string{c.nodes[0].addr})
	other := c.signup("other", []string{c.nodes[1].addr})
	befriend(t, late, other)
	other.message(late.send("other", "from the restarted node"))
}
