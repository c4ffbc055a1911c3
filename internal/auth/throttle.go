package auth

import (
	"sync"
	"time"
)

// Throttle slows down password guessing: after each wrong password for a key
// (an account, or a client address) the key must wait longer before the next
// attempt is even checked: Base, 2×Base, 4×Base, … up to Max. A success
// clears the key; a key with no failure for Forget is forgotten. The first
// Free failures of a key cost nothing (a per-address throttle wants some:
// many people share an address behind a NAT).
type Throttle struct {
	Free   int
	Base   time.Duration
	Max    time.Duration
	Forget time.Duration
	// MaxKeys bounds memory: when full, the stalest entries are dropped.
	MaxKeys int

	mu   sync.Mutex
	keys map[string]*throttleEntry
}

type throttleEntry struct {
	fails int
	until time.Time // no attempt before this
	last  time.Time
}

// NewThrottle returns a Throttle with sensible defaults: 500 ms doubling up
// to 5 minutes, forgotten after an hour.
func NewThrottle() *Throttle {
	return &Throttle{Base: 500 * time.Millisecond, Max: 5 * time.Minute, Forget: time.Hour, MaxKeys: 100_000}
}

// Wait returns how long key must still wait before an attempt is allowed
// (zero if it may try now).
func (t *Throttle) Wait(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.keys[key]
	if e == nil || !now.Before(e.until) {
		return 0
	}
	return e.until.Sub(now)
}

// Fail records a wrong password for key and returns the back-off now in
// force.
func (t *Throttle) Fail(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.keys == nil {
		t.keys = make(map[string]*throttleEntry)
	}
	e := t.keys[key]
	if e == nil || now.Sub(e.last) > t.Forget {
		if len(t.keys) >= t.MaxKeys {
			t.evict(now)
		}
		e = &throttleEntry{}
		t.keys[key] = e
	}
	e.fails++
	d := t.Backoff(e.fails)
	e.last = now
	if d > 0 {
		e.until = now.Add(d)
	}
	return d
}

// Backoff is the wait that follows a key's fails-th failure: none for the
// first Free, then Base, doubling up to Max. A throttle whose counts live
// elsewhere (shared by a cluster's nodes) applies the same policy.
func (t *Throttle) Backoff(fails int) time.Duration {
	if fails <= t.Free {
		return 0
	}
	d := t.Base
	for i := 1 + t.Free; i < fails && d < t.Max; i++ {
		d *= 2
	}
	return min(d, t.Max)
}

// Succeed clears key's failures.
func (t *Throttle) Succeed(key string) {
	t.mu.Lock()
	delete(t.keys, key)
	t.mu.Unlock()
}

// evict drops forgotten entries, or half the map if none are. Called with mu
// held.
func (t *Throttle) evict(now time.Time) {
	for k, e := range t.keys {
		if now.Sub(e.last) > t.Forget {
			delete(t.keys, k)
		}
	}
	n := len(t.keys) / 2
	for k := range t.keys {
		if len(t.keys) <= n || len(t.keys) < t.MaxKeys {
			break
		}
		delete(t.keys, k)
	}
}
