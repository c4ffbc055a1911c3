package hub

import (
	"time"

	"github.com/natterim/natter/internal/auth"
)

// Throttler is the wrong-password back-off the hub consults before it
// checks a password (auth.Throttle's methods): one node's own counts
// (auth.Throttle), or counts the nodes of a cluster share
// (internal/natsthrottle), so that a guesser who spreads attempts over the
// nodes meets one back-off.
type Throttler interface {
	// Wait says how long key must wait before an attempt is checked.
	Wait(key string, now time.Time) time.Duration
	// Fail records a wrong password and returns the back-off now in force.
	Fail(key string, now time.Time) time.Duration
	// Succeed clears key's failures.
	Succeed(key string)
}

// NewIPThrottle is the per-address throttle's policy: auth.NewThrottle's,
// with 20 free failures (many people share an address behind a NAT).
func NewIPThrottle() *auth.Throttle {
	t := auth.NewThrottle()
	t.Free = 20
	return t
}
