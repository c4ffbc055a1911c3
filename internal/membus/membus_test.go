package membus_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/bustest"
	"github.com/natterim/natter/internal/membus"
)

func TestBus(t *testing.T) {
	bustest.RunBus(t, func(t *testing.T) natter.Bus { return membus.New() })
}

func TestRegistry(t *testing.T) {
	bustest.RunRegistry(t, func(t *testing.T) natter.Registry { return membus.NewRegistry() })
}

// The tests below pin down what membus promises beyond the natter.Bus
// contract: synchronous delivery, re-entrancy and event ownership.

func TestPublishIsSynchronous(t *testing.T) {
	bus := membus.New()
	defer bus.Close()
	var got atomic.Int32
	for range 3 {
		if _, err := bus.Subscribe("alice", func([]byte) { got.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := bus.Publish(context.Background(), "alice", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if n := got.Load(); n != 3 {
		t.Fatalf("after Publish returned, %d of 3 subscribers had the event", n)
	}
}

func TestReentrant(t *testing.T) {
	tests := []struct {
		name string
		// run returns alice's subscriber, which calls back into the bus;
		// self returns that subscriber's own subscription.
		run func(t *testing.T, bus *membus.Bus, self func() natter.Subscription) func([]byte)
	}{
		{"UnsubscribeSelf", func(t *testing.T, bus *membus.Bus, self func() natter.Subscription) func([]byte) {
			return func([]byte) {
				if err := self().Unsubscribe(); err != nil {
					t.Errorf("Unsubscribe from fn: %v", err)
				}
			}
		}},
		{"SubscribeFromFn", func(t *testing.T, bus *membus.Bus, self func() natter.Subscription) func([]byte) {
			return func([]byte) {
				if _, err := bus.Subscribe("alice", func([]byte) {}); err != nil {
					t.Errorf("Subscribe from fn: %v", err)
				}
			}
		}},
		{"PublishSameUserFromFn", func(t *testing.T, bus *membus.Bus, self func() natter.Subscription) func([]byte) {
			return func(ev []byte) {
				if string(ev) == "first" {
					if err := bus.Publish(context.Background(), "alice", []byte("echo")); err != nil {
						t.Errorf("Publish from fn: %v", err)
					}
				}
			}
		}},
		{"CloseFromFn", func(t *testing.T, bus *membus.Bus, self func() natter.Subscription) func([]byte) {
			return func([]byte) { bus.Close() }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := membus.New()
			defer bus.Close()
			var sub natter.Subscription
			fn := tt.run(t, bus, func() natter.Subscription { return sub })
			var err error
			sub, err = bus.Subscribe("alice", fn)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				bus.Publish(context.Background(), "alice", []byte("first"))
				bus.Publish(context.Background(), "alice", []byte("second"))
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Publish deadlocked when fn called back into the bus")
			}
		})
	}
}

func TestUnsubscribeFromFnStopsDelivery(t *testing.T) {
	bus := membus.New()
	defer bus.Close()
	var n atomic.Int32
	var sub natter.Subscription
	sub, err := bus.Subscribe("alice", func([]byte) {
		n.Add(1)
		sub.Unsubscribe()
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		bus.Publish(context.Background(), "alice", []byte("x"))
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("fn ran %d times, want 1 (it unsubscribed on the first event)", got)
	}
}

func TestPublisherMayReuseEvent(t *testing.T) {
	bus := membus.New()
	defer bus.Close()
	var got [][]byte
	bus.Subscribe("alice", func(ev []byte) { got = append(got, ev) })
	buf := []byte("one")
	bus.Publish(context.Background(), "alice", buf)
	copy(buf, "two")
	bus.Publish(context.Background(), "alice", buf)
	if string(got[0]) != "one" || string(got[1]) != "two" {
		t.Fatalf("subscriber holds %q, want [one two]: Publish must copy the event", got)
	}
}

func TestUnsubscribeAndCloseTwice(t *testing.T) {
	bus := membus.New()
	sub, err := bus.Subscribe("alice", func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := bus.Subscribe("bob", func([]byte) {})
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("second Unsubscribe: %v", err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := other.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe after Close: %v", err)
	}
}

func TestPublishCanceledContext(t *testing.T) {
	bus := membus.New()
	defer bus.Close()
	called := false
	bus.Subscribe("alice", func([]byte) { called = true })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := bus.Publish(ctx, "alice", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a canceled context: %v, want context.Canceled", err)
	}
	if called {
		t.Fatal("event delivered although the context was canceled")
	}
}

func TestSubscribeNilFunc(t *testing.T) {
	bus := membus.New()
	defer bus.Close()
	if _, err := bus.Subscribe("alice", nil); !errors.Is(err, natter.ErrBadRequest) {
		t.Fatalf("Subscribe(nil): %v, want ErrBadRequest", err)
	}
}

func TestRegistryCopies(t *testing.T) {
	ctx := context.Background()
	reg := membus.NewRegistry()
	reach := []natter.Candidate{{Type: "host", Proto: "udp", Addr: "10.0.0.1:1"}}
	reg.Put(ctx, natter.LiveSession{User: "alice", Device: "d", Conn: "c", Reach: reach})
	reach[0].Addr = "changed by the caller of Put"
	got, _ := reg.Sessions(ctx, "alice")
	got[0].Reach[0].Addr = "changed by the caller of Sessions"
	again, _ := reg.Sessions(ctx, "alice")
	if a := again[0].Reach[0].Addr; a != "10.0.0.1:1" {
		t.Fatalf("registry holds Addr %q: it must copy Reach in and out", a)
	}
}

func TestRegistryRefusesIncompleteSession(t *testing.T) {
	reg := membus.NewRegistry()
	for _, s := range []natter.LiveSession{{User: "alice"}, {Device: "d"}} {
		if err := reg.Put(context.Background(), s); !errors.Is(err, natter.ErrBadRequest) {
			t.Errorf("Put(%+v): %v, want ErrBadRequest", s, err)
		}
	}
}

// BenchmarkPublish publishes to one of 20,000 subscribed users (each with two
// devices) from parallel goroutines, the load of a busy single node.
func BenchmarkPublish(b *testing.B) {
	const users = 20000
	bus := membus.New()
	defer bus.Close()
	ids := make([]natter.UserID, users)
	for i := range ids {
		ids[i] = natter.UserID(fmt.Sprintf("user%05d", i))
		for range 2 {
			ch := make(chan []byte, 1)
			bus.Subscribe(ids[i], func(ev []byte) {
				select {
				case ch <- ev:
				default:
				}
			})
		}
	}
	event := make([]byte, 200)
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(7919)
		for pb.Next() {
			i++
			bus.Publish(context.Background(), ids[i%users], event)
		}
	})
}

// BenchmarkSubscribeUnsubscribe measures session churn among 20,000 users.
func BenchmarkSubscribeUnsubscribe(b *testing.B) {
	const users = 20000
	bus := membus.New()
	defer bus.Close()
	ids := make([]natter.UserID, users)
	for i := range ids {
		ids[i] = natter.UserID(fmt.Sprintf("user%05d", i))
		bus.Subscribe(ids[i], func([]byte) {})
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(7919)
		for pb.Next() {
			i++
			sub, _ := bus.Subscribe(ids[i%users], func([]byte) {})
			sub.Unsubscribe()
		}
	})
}
