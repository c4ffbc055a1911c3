package hub

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// Limiter is a per-user rate limit of one kind of action.
type Limiter interface {
	// Allow takes one token of user's, or says how long until one is
	// there.
	Allow(user natter.UserID, now time.Time) (ok bool, retry time.Duration)
}

// userLimits holds one token bucket per user for an action (sending
// messages, asking for contacts), on this node alone: a user connected to
// several nodes gets each node's allowance unless Config.SharedLimits is set.
type userLimits struct {
	every rate.Limit
	burst int

	mu      sync.Mutex
	m       map[natter.UserID]*limitEntry
	touched int
}

type limitEntry struct {
	l    *rate.Limiter
	last time.Time
}

func newUserLimits(perSecond float64, burst int) *userLimits {
	return &userLimits{every: rate.Limit(perSecond), burst: burst, m: map[natter.UserID]*limitEntry{}}
}

// Allow implements Limiter.
func (u *userLimits) Allow(user natter.UserID, now time.Time) (ok bool, retry time.Duration) {
	if u == nil || u.every <= 0 {
		return true, 0
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	e := u.m[user]
	if e == nil {
		e = &limitEntry{l: rate.NewLimiter(u.every, u.burst)}
		u.m[user] = e
	}
	e.last = now
	if u.touched++; u.touched%4096 == 0 {
		u.pruneLocked(now)
	}
	r := e.l.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// pruneLocked forgets users whose bucket has long been full again.
func (u *userLimits) pruneLocked(now time.Time) {
	full := time.Duration(float64(u.burst)/float64(u.every)*float64(time.Second)) + time.Minute
	for k, e := range u.m {
		if now.Sub(e.last) > full {
			delete(u.m, k)
		}
	}
}

// limited answers request ref with rate_limited if user may not act now.
func (c *client) limited(l Limiter, ref uint64, what string) bool {
	ok, retry := l.Allow(c.user, c.h.now())
	if ok {
		return false
	}
	c.h.met.rateLimited.WithLabelValues(what).Inc()
	c.push(wire.Error{Ref: ref, Code: wire.CodeRateLimited,
		Message:    fmt.Sprintf("too many %s; try again in %s", what, retry.Round(time.Millisecond)),
		RetryAfter: ceilMillis(retry)})
	return true
}
