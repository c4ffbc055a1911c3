package natsbus

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natterim/natter"
)

// Delivery shards: each node's NATS subscriptions feed one of these
// channels by a hash of the user, and one goroutine per shard calls the
// local subscribers. One user's events go through one shard, in the order
// the connection received them. (nats.go's asynchronous subscriptions
// would cost a goroutine per user.)
const (
	deliveryShards = 8
	shardQueue     = 16384 // messages waiting in one shard; more are dropped (slow consumer)
)

// Bus is the NATS natter.Bus of one Node (see the package doc). Get it
// from Node.Bus.
type Bus struct {
	n      *Node
	nc     *nats.Conn
	prefix string // "<Config.Prefix>.u."
	closed atomic.Bool
	seed   maphash.Seed
	shards [deliveryShards]chan *nats.Msg
	parts  partIDs

	mu    sync.Mutex
	users map[natter.UserID]*userSub
	byNS  sync.Map // *nats.Subscription → *userSub, read by the shards
}

var _ natter.Bus = (*Bus)(nil)

// userSub is a node's one NATS subscription for a user and the local
// subscribers it feeds.
type userSub struct {
	ns    *nats.Subscription
	subs  atomic.Pointer[[]*subscription] // immutable once stored
	ready chan struct{}                   // closed once the NATS server has ns
	join  joiner                          // used by the user's shard goroutine only
}

func newBus(n *Node) *Bus {
	b := &Bus{n: n, nc: n.nc, prefix: n.cfg.Prefix + ".u.", seed: maphash.MakeSeed(),
		users: make(map[natter.UserID]*userSub)}
	b.parts.init()
	for i := range b.shards {
		ch := make(chan *nats.Msg, shardQueue)
		b.shards[i] = ch
		n.wg.Go(func() { b.dispatch(ch) })
	}
	return b
}

func (b *Bus) subject(user natter.UserID) string { return b.prefix + escape(string(user)) }

// Publish sends event to every subscriber of user on every node. It
// returns once nats.go has the event in its outgoing buffer (core NATS:
// no acknowledgement), so one caller's events keep their order. While the
// node is cut off from NATS the event waits in nats.go's reconnect buffer
// and goes out when the node reconnects; if that buffer is full Publish
// fails. Events larger than the server's max_payload go in parts.
//
// Publish returns an error wrapping natter.ErrClosed after Close, and the
// context's error if ctx is done.
func (b *Bus) Publish(ctx context.Context, user natter.UserID, event []byte) error {
	if b.closed.Load() {
		return fmt.Errorf("natsbus: publish to %s: %w", user, natter.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("natsbus: publish to %s: %w", user, err)
	}
	start := time.Now()
	subj := b.subject(user)
	var err error
	if max := int(b.nc.MaxPayload()) - partHeader; max <= 0 || len(event) <= max {
		err = b.nc.Publish(subj, append([]byte{kindWhole}, event...))
	} else {
		err = b.publishParts(subj, event, max)
	}
	b.n.met.publishSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		b.n.met.publishErrors.Inc()
		if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) {
			err = fmt.Errorf("%w (%w)", natter.ErrClosed, err)
		}
		return fmt.Errorf("natsbus: publish to %s: %w", user, err)
	}
	return nil
}

// Subscribe calls fn for every event published for user, on any node, from
// the time it returns until Unsubscribe or Close. It returns once the NATS
// server has the subscription (or OpTimeout passed while the node is cut
// off: the subscription is then made when it reconnects).
//
// fn runs on one of the node's delivery goroutines and must not block: it
// holds up the events of other users. One user's events reach fn one at a
// time, in the order the node received them. fn may call any method of the
// bus. An event being delivered when Unsubscribe returns may still reach fn
// once. Subscribers on one node share each event's bytes: read-only.
func (b *Bus) Subscribe(user natter.UserID, fn func(event []byte)) (natter.Subscription, error) {
	if fn == nil {
		return nil, fmt.Errorf("natsbus: subscribe to %s: %w: nil func", user, natter.ErrBadRequest)
	}
	sub := &subscription{bus: b, user: user, fn: fn}
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return nil, fmt.Errorf("natsbus: subscribe to %s: %w", user, natter.ErrClosed)
	}
	us := b.users[user]
	fresh := us == nil
	if fresh {
		us = &userSub{ready: make(chan struct{})}
		us.subs.Store(&[]*subscription{})
		ns, err := b.nc.ChanSubscribe(b.subject(user), b.shard(user))
		if err != nil {
			b.mu.Unlock()
			if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) {
				err = fmt.Errorf("%w (%w)", natter.ErrClosed, err)
			}
			return nil, fmt.Errorf("natsbus: subscribe to %s: %w", user, err)
		}
		us.ns = ns
		b.byNS.Store(ns, us)
		b.users[user] = us
	}
	sub.us = us
	old := *us.subs.Load()
	subs := append(slices.Clip(old), sub)
	us.subs.Store(&subs)
	b.mu.Unlock()

	if fresh {
		// A round trip: once the server answers, it has the SUB that
		// went before.
		if err := b.nc.FlushTimeout(b.n.cfg.OpTimeout); err != nil {
			b.n.log.Warn("subscribe: NATS server not reached; subscribing when it is", "user", user, "err", err)
		}
		close(us.ready)
	} else {
		<-us.ready
	}
	return sub, nil
}

func (b *Bus) shard(user natter.UserID) chan *nats.Msg {
	return b.shards[maphash.String(b.seed, string(user))%deliveryShards]
}

// dispatch delivers one shard's messages until the node closes.
func (b *Bus) dispatch(ch chan *nats.Msg) {
	for {
		select {
		case <-b.n.base.Done():
			return
		case m := <-ch:
			v, ok := b.byNS.Load(m.Sub)
			if !ok {
				continue // unsubscribed since
			}
			us := v.(*userSub)
			ev, ok := us.join.add(m.Data, b.n.log)
			if !ok {
				continue
			}
			for _, s := range *us.subs.Load() {
				if !s.done.Load() {
					s.fn(ev)
				}
			}
		}
	}
}

// Close ends every subscription of this bus; later calls of Publish and
// Subscribe fail with natter.ErrClosed. It leaves the node's connection
// open (Node.Close closes it). Closing twice is not an error.
func (b *Bus) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for user, us := range b.users {
		for _, s := range *us.subs.Load() {
			s.done.Store(true)
		}
		b.byNS.Delete(us.ns)
		us.ns.Unsubscribe()
		delete(b.users, user)
	}
	return nil
}

// subscription is one Subscribe call's registration.
type subscription struct {
	bus  *Bus
	user natter.UserID
	us   *userSub
	fn   func([]byte)
	done atomic.Bool
}

// Unsubscribe ends the subscription; the node's NATS subscription for the
// user ends with the last local one. It may be called from fn, and more
// than once.
func (s *subscription) Unsubscribe() error {
	if s.done.Swap(true) {
		return nil
	}
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	us := s.us
	if b.users[s.user] != us {
		return nil // ended by Close
	}
	old := *us.subs.Load()
	i := slices.Index(old, s)
	if i < 0 {
		return nil
	}
	if len(old) > 1 {
		subs := slices.Delete(slices.Clone(old), i, i+1)
		us.subs.Store(&subs)
		return nil
	}
	us.subs.Store(&[]*subscription{})
	delete(b.users, s.user)
	b.byNS.Delete(us.ns)
	if err := us.ns.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("natsbus: unsubscribe from %s: %w", s.user, err)
	}
	return nil
}
