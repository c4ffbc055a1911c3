// Package membus is the in-process implementation of natter.Bus and
// natter.Registry, for a server that runs as a single node. It has no
// dependencies and starts no goroutines. A cluster uses internal/natsbus
// instead; both pass the conformance suites in internal/bustest.
//
// # Delivery design
//
// Subscribers are kept in a map from user to an immutable slice of
// subscriptions, split into shards by a hash of the user name so that
// publishers for different users rarely touch the same lock. Subscribe and
// Unsubscribe replace a user's slice under the shard's write lock
// (copy-on-write); Publish takes the shard's read lock only long enough to
// load the slice, then calls each subscriber's fn on its own goroutine with
// no lock held.
//
// Holding no lock while fn runs is what makes it safe for fn to call
// Subscribe, Unsubscribe or Publish (for any user, including its own) without
// deadlocking, and keeps one slow fn from stalling publishers to other users.
// Ordering does not need a lock: Publish returns only after every fn has
// returned, so the events of one publishing goroutine reach each subscriber
// in the order they were published, which is what natter.Bus promises. The
// price, documented on Bus.Subscribe, is that two goroutines publishing to
// the same user at the same time may run the same fn concurrently, and their
// events may interleave differently at different subscribers.
package membus

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/natterim/natter"
)

// numShards splits the subscriber map so that publishers to different users
// seldom share a lock. 64 shards keep contention low on large machines while
// costing a few kilobytes.
const numShards = 64

// Bus is the in-process natter.Bus. The zero value is not usable: call New.
type Bus struct {
	seed   maphash.Seed
	closed atomic.Bool
	shards [numShards]shard
}

type shard struct {
	mu   sync.RWMutex
	subs map[natter.UserID][]*subscription // each slice is immutable once stored
}

var _ natter.Bus = (*Bus)(nil)

// New returns an empty, open Bus.
func New() *Bus {
	b := &Bus{seed: maphash.MakeSeed()}
	for i := range b.shards {
		b.shards[i].subs = make(map[natter.UserID][]*subscription)
	}
	return b
}

func (b *Bus) shard(user natter.UserID) *shard {
	return &b.shards[maphash.String(b.seed, string(user))%numShards]
}

// Publish delivers event to every current subscriber of user before it
// returns, calling their functions one after another on the calling
// goroutine. A user with no subscribers is not an error: the event is
// dropped.
//
// Subscribers receive one shared copy of event, made before delivery, so the
// caller may reuse event once Publish returns; subscribers must treat the
// bytes as read-only.
//
// Publish returns an error wrapping natter.ErrClosed after Close, and the
// context's error if ctx is already done (then nothing is delivered).
func (b *Bus) Publish(ctx context.Context, user natter.UserID, event []byte) error {
	if b.closed.Load() {
		return fmt.Errorf("membus: publish to %s: %w", user, natter.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("membus: publish to %s: %w", user, err)
	}
	s := b.shard(user)
	s.mu.RLock()
	subs := s.subs[user]
	s.mu.RUnlock()
	if len(subs) == 0 {
		return nil
	}
	ev := slices.Clone(event)
	for _, sub := range subs {
		if !sub.done.Load() {
			sub.fn(ev)
		}
	}
	return nil
}

// Subscribe calls fn for every event published for user from now until the
// subscription ends (Unsubscribe, or Close of the bus). It returns an error
// wrapping natter.ErrClosed after Close.
//
// fn runs on the publisher's goroutine and must not block. It may call any
// method of the bus. Because each publisher delivers on its own goroutine,
// fn may run concurrently when several goroutines publish to user at once,
// so whatever it touches must be safe for concurrent use (a channel send is).
// A Publish that was already under way when Unsubscribe returned may still
// call fn once more, so fn must not, for example, send on a channel that is
// closed right after Unsubscribe.
func (b *Bus) Subscribe(user natter.UserID, fn func(event []byte)) (natter.Subscription, error) {
	if fn == nil {
		return nil, fmt.Errorf("membus: subscribe to %s: %w: nil func", user, natter.ErrBadRequest)
	}
	sub := &subscription{bus: b, user: user, fn: fn}
	s := b.shard(user)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked under the shard lock: Close sets closed before it empties the
	// shards, so either Close sees this subscription or this sees closed.
	if b.closed.Load() {
		return nil, fmt.Errorf("membus: subscribe to %s: %w", user, natter.ErrClosed)
	}
	old := s.subs[user]
	subs := make([]*subscription, len(old), len(old)+1)
	copy(subs, old)
	s.subs[user] = append(subs, sub)
	return sub, nil
}

// Close ends every subscription; later calls of Publish and Subscribe fail
// with natter.ErrClosed. Closing twice is not an error.
func (b *Bus) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		for _, subs := range s.subs {
			for _, sub := range subs {
				sub.done.Store(true)
			}
		}
		clear(s.subs)
		s.mu.Unlock()
	}
	return nil
}

// subscription is one Subscribe call's registration.
type subscription struct {
	bus  *Bus
	user natter.UserID
	fn   func([]byte)
	done atomic.Bool
}

// Unsubscribe ends the subscription. It may be called from any goroutine,
// including from fn itself, and more than once.
func (sub *subscription) Unsubscribe() error {
	if sub.done.Swap(true) {
		return nil
	}
	s := sub.bus.shard(sub.user)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.subs[sub.user]
	i := slices.Index(old, sub)
	if i < 0 {
		return nil // removed by Close
	}
	if len(old) == 1 {
		delete(s.subs, sub.user)
		return nil
	}
	s.subs[sub.user] = slices.Delete(slices.Clone(old), i, i+1)
	return nil
}
