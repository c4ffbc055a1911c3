package natsthrottle

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/natterim/natter"
)

// Limiter is a per-user rate limit (a token bucket: perSecond tokens a
// second, at most burst) shared by a cluster's nodes: a user with devices
// on three nodes gets one allowance, not three.
//
// The bucket's level is kept in the key-value bucket, but a node does not
// ask NATS for every action: it leases tokens, a quarter of the burst at a
// time, and spends them locally; only when its lease is spent does it go
// back to NATS (one compare-and-set). So a user sending on one node costs a
// round trip every burst/4 messages, and leased tokens a node does not
// spend are lost to the others for no longer than the user keeps sending
// elsewhere. While NATS is unreachable the node limits on its own.
type Limiter struct {
	kv    jetstream.KeyValue
	name  string
	every float64 // tokens a second
	burst int
	lease int
	log   *slog.Logger

	mu    sync.Mutex
	users map[natter.UserID]*leased
}

// leased is what a node holds of one user's allowance.
type leased struct {
	mu     sync.Mutex // held across a lease: one lease at a time per user
	tokens int
	local  *rate.Limiter // the fallback while NATS cannot be reached
	last   time.Time
}

// level is the shared bucket's state of one user.
type level struct {
	Tokens float64 `json:"tokens"`
	At     int64   `json:"at"` // Unix nanoseconds of Tokens
}

// Limiter returns a shared limit named name (its keys' prefix: one per
// kind of action) of perSecond actions a second with bursts of burst.
func (c *Conn) Limiter(name string, perSecond float64, burst int, log *slog.Logger) *Limiter {
	return &Limiter{kv: c.kv, name: name, every: perSecond, burst: max(1, burst), lease: max(1, burst/4),
		log: log, users: map[natter.UserID]*leased{}}
}

// Allow takes one token of user's, or says how long until one is there.
func (l *Limiter) Allow(user natter.UserID, now time.Time) (bool, time.Duration) {
	if l.every <= 0 {
		return true, 0
	}
	l.mu.Lock()
	u := l.users[user]
	if u == nil {
		if len(l.users) > 100_000 {
			l.prune(now)
		}
		u = &leased{local: rate.NewLimiter(rate.Limit(l.every), l.burst)}
		l.users[user] = u
	}
	u.last = now
	l.mu.Unlock()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.tokens > 0 {
		u.tokens--
		return true, 0
	}
	got, retry, err := l.take(user, now)
	if err != nil {
		l.log.Warn("shared rate limit unreachable: limiting on this node alone", "limit", l.name, "err", err)
		r := u.local.ReserveN(now, 1)
		if d := r.DelayFrom(now); !r.OK() || d > 0 {
			r.CancelAt(now)
			return false, max(d, time.Second)
		}
		return true, 0
	}
	if got == 0 {
		return false, retry
	}
	u.tokens = got - 1
	return true, 0
}

// take leases up to l.lease whole tokens of user's shared bucket.
func (l *Limiter) take(user natter.UserID, now time.Time) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	key := "rl." + l.name + "." + hex.EncodeToString([]byte(user))
	for range 8 {
		var lv level
		var rev uint64
		kve, err := l.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			lv = level{Tokens: float64(l.burst), At: now.UnixNano()}
		case err != nil:
			return 0, 0, err
		default:
			rev = kve.Revision()
			if json.Unmarshal(kve.Value(), &lv) != nil {
				lv = level{Tokens: float64(l.burst), At: now.UnixNano()}
			}
		}
		if dt := float64(now.UnixNano()-lv.At) / 1e9; dt > 0 {
			lv.Tokens = math.Min(float64(l.burst), lv.Tokens+dt*l.every)
		}
		lv.At = max(lv.At, now.UnixNano())
		got := min(l.lease, int(lv.Tokens))
		if got == 0 {
			need := (1 - lv.Tokens) / l.every
			return 0, time.Duration(need * float64(time.Second)), nil
		}
		lv.Tokens -= float64(got)
		b, _ := json.Marshal(lv)
		if rev == 0 {
			_, err = l.kv.Create(ctx, key, b)
		} else {
			_, err = l.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return got, 0, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongRevision(err) {
			return 0, 0, err
		}
	}
	return 0, 0, errors.New("natsthrottle: too many concurrent leases")
}

// prune forgets users not seen for an hour. Called with mu held.
func (l *Limiter) prune(now time.Time) {
	for k, u := range l.users {
		if now.Sub(u.last) > time.Hour {
			delete(l.users, k)
		}
	}
}
