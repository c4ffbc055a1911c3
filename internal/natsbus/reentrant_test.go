package natsbus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// TestReentrant: a subscriber's fn may call back into the bus (its own
// Unsubscribe, Subscribe, Publish, Close) without deadlocking the node's
// delivery.
func TestReentrant(t *testing.T) {
	url := sharedURL(t)
	tests := []struct {
		name string
		fn   func(bus *Bus, self func() natter.Subscription, ev []byte)
	}{
		{"UnsubscribeSelf", func(bus *Bus, self func() natter.Subscription, ev []byte) { self().Unsubscribe() }},
		{"SubscribeNewUser", func(bus *Bus, self func() natter.Subscription, ev []byte) {
			bus.Subscribe(natter.UserID("new-"+string(ev)), func([]byte) {})
		}},
		{"PublishSameUser", func(bus *Bus, self func() natter.Subscription, ev []byte) {
			if string(ev) == "first" {
				bus.Publish(context.Background(), "alice", []byte("echo"))
			}
		}},
		{"Close", func(bus *Bus, self func() natter.Subscription, ev []byte) { bus.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bus := newSpace(t, url).open(t, Config{}).Bus()
			var sub natter.Subscription
			calls := make(chan struct{}, 10)
			sub, err := bus.Subscribe("alice", func(ev []byte) {
				tt.fn(bus, func() natter.Subscription { return sub }, ev)
				calls <- struct{}{}
			})
			if err != nil {
				t.Fatal(err)
			}
			// A second subscriber shows the delivery goroutine goes on.
			after := make(chan []byte, 10)
			if _, err := bus.Subscribe("bob", func(ev []byte) { after <- ev }); err != nil {
				t.Fatal(err)
			}
			if err := bus.Publish(context.Background(), "alice", []byte("first")); err != nil {
				t.Fatal(err)
			}
			select {
			case <-calls:
			case <-time.After(10 * time.Second):
				t.Fatal("fn was not called")
			}
			err = bus.Publish(context.Background(), "bob", []byte("next"))
			if tt.name == "Close" {
				if !errors.Is(err, natter.ErrClosed) {
					t.Fatalf("Publish after Close from fn: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-after:
			case <-time.After(10 * time.Second):
				t.Fatal("delivery stopped after fn called back into the bus")
			}
		})
	}
}
