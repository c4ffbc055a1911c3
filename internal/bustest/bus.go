package bustest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// RunBus runs the natter.Bus conformance suite. open must return a new,
// empty bus each time it is called; it is called once per subtest, from
// parallel subtests. The suite closes every bus it opens, so open need not
// register a Close (if it does, Close is called twice).
//
// Besides what natter.Bus states, the suite expects that a bus is safe for
// concurrent use; that it carries events of any bytes, empty included, up to
// a whole frame of wire.DefaultMaxFrame bytes plus its 4-byte length; and
// that after Close, Publish and Subscribe fail with an error wrapping
// natter.ErrClosed.
func RunBus(t *testing.T, open func(t *testing.T) natter.Bus) {
	tests := []struct {
		name string
		fn   func(t *testing.T, bus natter.Bus)
	}{
		{"Deliver", testDeliver},
		{"EventBytes", testEventBytes},
		{"LargeEvent", testLargeEvent},
		{"NoSubscribers", testNoSubscribers},
		{"Order", testOrder},
		{"OrderPerPublisher", testOrderPerPublisher},
		{"FanOut", testFanOut},
		{"OtherUsers", testOtherUsers},
		{"Unsubscribe", testUnsubscribe},
		{"UnsubscribeLastThenResubscribe", testResubscribe},
		{"ConcurrentChurn", testChurn},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bus := open(t)
			t.Cleanup(func() { bus.Close() })
			tt.fn(t, bus)
		})
	}
}

func subscribe(t *testing.T, bus natter.Bus, user natter.UserID) (*recorder, natter.Subscription) {
	t.Helper()
	r := newRecorder()
	sub, err := bus.Subscribe(user, r.fn)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", user, err)
	}
	return r, sub
}

func publish(t testing.TB, bus natter.Bus, user natter.UserID, events ...[]byte) {
	t.Helper()
	for i, ev := range events {
		if err := bus.Publish(context.Background(), user, ev); err != nil {
			t.Fatalf("Publish(%s) of event %d: %v", user, i, err)
		}
	}
}

// testDeliver: an event published for a user reaches its subscriber intact.
func testDeliver(t *testing.T, bus natter.Bus) {
	r, _ := subscribe(t, bus, "alice")
	publish(t, bus, "alice", []byte("hello"))
	got := r.wait(t, "alice", 1)
	if d := diffEvents(got, [][]byte{[]byte("hello")}); d != "" {
		t.Fatal(d)
	}
}

// testEventBytes: events are opaque: any bytes, including none, arrive
// unchanged.
func testEventBytes(t *testing.T, bus natter.Bus) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	want := [][]byte{{}, all, []byte("\r\n\x00PUB x 1\r\n"), []byte(`{"json":true}`)}
	r, _ := subscribe(t, bus, "alice")
	publish(t, bus, "alice", want...)
	got := r.wait(t, "alice", len(want))
	if d := diffEvents(got, want); d != "" {
		t.Fatal(d)
	}
}

// testLargeEvent: the bus carries an event as large as the largest frame the
// server accepts, length prefix included, since the hub forwards whole
// frames (a Msg with a MaxBody body is close to that size).
func testLargeEvent(t *testing.T, bus natter.Bus) {
	ev := bytes.Repeat([]byte("0123456789abcdef"), (wire.DefaultMaxFrame+4)/16)
	r, _ := subscribe(t, bus, "alice")
	publish(t, bus, "alice", ev)
	got := r.wait(t, "alice", 1)
	if !bytes.Equal(got[0], ev) {
		t.Fatalf("large event arrived as %d bytes, want the %d published", len(got[0]), len(ev))
	}
}

// testNoSubscribers: publishing for a user nobody listens to is not an
// error.
func testNoSubscribers(t *testing.T, bus natter.Bus) {
	publish(t, bus, "nobody", []byte("into the void"))
}

// testOrder: one publisher's events arrive in the order published.
func testOrder(t *testing.T, bus natter.Bus) {
	const n = 1000
	want := numbered("", 0, n)
	r, _ := subscribe(t, bus, "alice")
	publish(t, bus, "alice", want...)
	got := r.wait(t, "alice", n)
	if d := diffEvents(got, want); d != "" {
		t.Fatalf("order: %s", d)
	}
}

// testOrderPerPublisher: several goroutines publish to one user at once;
// each one's events arrive complete and in its order (the interleaving
// between publishers is free).
func testOrderPerPublisher(t *testing.T, bus natter.Bus) {
	const publishers, each = 4, 250
	r, _ := subscribe(t, bus, "alice")
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for _, ev := range numbered(fmt.Sprintf("p%d:", p), 0, each) {
				if err := bus.Publish(context.Background(), "alice", ev); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := r.wait(t, "alice", publishers*each)
	checkPerPublisher(t, got, publishers, each)
}

// checkPerPublisher checks that events "p<p>:<i>" arrived exactly once each,
// in increasing i for every p.
func checkPerPublisher(t *testing.T, got [][]byte, publishers, each int) {
	t.Helper()
	if len(got) != publishers*each {
		t.Fatalf("got %d events, want %d", len(got), publishers*each)
	}
	next := make([]int, publishers)
	for _, ev := range got {
		var p, i int
		if _, err := fmt.Sscanf(string(ev), "p%d:%d", &p, &i); err != nil || p < 0 || p >= publishers {
			t.Fatalf("unexpected event %q", ev)
		}
		if i != next[p] {
			t.Fatalf("publisher %d: got event %d, want %d (events of one publisher must arrive in order)", p, i, next[p])
		}
		next[p]++
	}
}

// testFanOut: every subscriber of a user (one per device) gets every event,
// in order.
func testFanOut(t *testing.T, bus natter.Bus) {
	const subs, n = 3, 200
	var rs []*recorder
	for range subs {
		r, _ := subscribe(t, bus, "alice")
		rs = append(rs, r)
	}
	want := numbered("", 0, n)
	publish(t, bus, "alice", want...)
	for i, r := range rs {
		if d := diffEvents(r.wait(t, fmt.Sprintf("subscriber %d", i), n), want); d != "" {
			t.Errorf("subscriber %d: %s", i, d)
		}
	}
}

// testOtherUsers: an event reaches only the subscribers of its user, even
// for user names that are prefixes of each other or contain '.', '-', '_'.
func testOtherUsers(t *testing.T, bus natter.Bus) {
	users := []natter.UserID{"alice", "alice2", "ali.ce", "alice.x", "al-ice", "al_ice", "bob"}
	rs := make(map[natter.UserID]*recorder)
	for _, u := range users {
		rs[u], _ = subscribe(t, bus, u)
	}
	for _, u := range users {
		publish(t, bus, u, []byte("for "+string(u)))
	}
	for _, u := range users {
		rs[u].wait(t, string(u), 1)
	}
	for _, u := range users {
		got := rs[u].settle()
		if d := diffEvents(got, [][]byte{[]byte("for " + string(u))}); d != "" {
			t.Errorf("subscriber of %s: %s", u, d)
		}
	}
}

// testUnsubscribe: after Unsubscribe (and a moment to settle) a subscription
// gets nothing more, while the user's other subscriptions carry on.
func testUnsubscribe(t *testing.T, bus natter.Bus) {
	gone, sub := subscribe(t, bus, "alice")
	stays, _ := subscribe(t, bus, "alice")
	publish(t, bus, "alice", []byte("before"))
	gone.wait(t, "unsubscribed", 1)
	stays.wait(t, "staying", 1)

	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	gone.settle()
	publish(t, bus, "alice", numbered("after", 0, 10)...)
	stays.wait(t, "staying", 11)
	if got := gone.settle(); len(got) != 1 {
		t.Fatalf("unsubscribed subscription got %d events, want only the 1 published before Unsubscribe: %q", len(got), got)
	}
}

// testResubscribe: a user whose only subscription ended can be published to
// (nothing arrives) and subscribed to again.
func testResubscribe(t *testing.T, bus natter.Bus) {
	old, sub := subscribe(t, bus, "alice")
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	old.settle()
	publish(t, bus, "alice", []byte("lost"))
	r, _ := subscribe(t, bus, "alice")
	publish(t, bus, "alice", []byte("found"))
	got := r.waitFor(t, "new subscription", []byte("found"))
	// "lost" may or may not reach the new subscription, depending on when an
	// asynchronous bus delivers it (on NATS, when the publishing node's
	// buffered "lost" reaches the server: perhaps after the new
	// subscription); "found" must, and must come last.
	if string(got[len(got)-1]) != "found" {
		t.Fatalf("new subscription got %q, want it to end with %q", got, "found")
	}
	if got := old.settle(); len(got) != 0 {
		t.Fatalf("ended subscription got %q", got)
	}
}

// testChurn: subscribing and unsubscribing from many goroutines while
// others publish is safe (run with -race) and does not disturb a steady
// subscriber's stream.
func testChurn(t *testing.T, bus natter.Bus) {
	const publishers, each, churners = 4, 200, 8
	users := []natter.UserID{"u0", "u1", "u2", "u3"}
	steady := make(map[natter.UserID]*recorder)
	for _, u := range users {
		steady[u], _ = subscribe(t, bus, u)
	}

	stop := make(chan struct{})
	var churn sync.WaitGroup
	for c := range churners {
		churn.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sub, err := bus.Subscribe(users[(c+i)%len(users)], func([]byte) {})
				if err != nil {
					t.Errorf("Subscribe: %v", err)
					return
				}
				if err := sub.Unsubscribe(); err != nil {
					t.Errorf("Unsubscribe: %v", err)
					return
				}
			}
		})
	}
	var pubs sync.WaitGroup
	for p := range publishers {
		pubs.Go(func() {
			for i := range each {
				for _, u := range users {
					if err := bus.Publish(context.Background(), u, fmt.Appendf(nil, "p%d:%d", p, i)); err != nil {
						t.Errorf("Publish: %v", err)
						return
					}
				}
			}
		})
	}
	pubs.Wait()
	close(stop)
	churn.Wait()
	for _, u := range users {
		checkPerPublisher(t, steady[u].wait(t, string(u), publishers*each), publishers, each)
	}
}

// testClose: Close ends every subscription, and the bus refuses Publish and
// Subscribe afterwards with an error wrapping natter.ErrClosed.
func testClose(t *testing.T, bus natter.Bus) {
	r, _ := subscribe(t, bus, "alice")
	publish(t, bus, "alice", []byte("before"))
	r.wait(t, "alice", 1)
	if err := bus.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err := bus.Publish(context.Background(), "alice", []byte("after"))
	if !errors.Is(err, natter.ErrClosed) {
		t.Errorf("Publish after Close: got error %v, want one wrapping natter.ErrClosed", err)
	}
	if _, err := bus.Subscribe("alice", func([]byte) {}); !errors.Is(err, natter.ErrClosed) {
		t.Errorf("Subscribe after Close: got error %v, want one wrapping natter.ErrClosed", err)
	}
	if got := r.settle(); len(got) != 1 {
		t.Errorf("subscription got %d events, want only the 1 published before Close: %q", len(got), got)
	}
}
