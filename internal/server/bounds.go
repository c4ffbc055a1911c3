package server

import (
	"context"
	"time"

	"github.com/natterim/natter/internal/hub"
)

// Bounds are the store's bounds (docs/delivery.md, "What is kept, and for
// how long"): what the inbox keeps, and which devices the directory keeps.
// Zero means the default; negative means none (no cap, nothing expires,
// no device retired).
type Bounds struct {
	MaxDevices   int           // devices per user; default hub.DefaultMaxDevices
	Retention    time.Duration // unacknowledged inbox entries expire after it; default 30 days
	DeviceRetire time.Duration // devices without a login for this long are retired; default 90 days
	TrimInterval time.Duration // how often the sweep runs (also once at start); default DefaultTrimInterval
}

// DefaultTrimInterval is Bounds.TrimInterval when zero. A sweep that finds
// nothing to delete reads one row per user and per device; one that does
// deletes in writes of a few hundred entries.
const DefaultTrimInterval = time.Minute

// hubBounds copies b into the hub's configuration.
func (b Bounds) hubBounds(c *hub.Config) {
	c.MaxDevices, c.Retention, c.DeviceRetire = b.MaxDevices, b.Retention, b.DeviceRetire
}

// sweepInboxes runs the hub's Sweep at once and then every TrimInterval,
// until ctx ends. A sweep that outlasts the interval delays the next one
// (the ticker drops ticks).
func (s *Server) sweepInboxes(ctx context.Context) {
	every := s.cfg.Bounds.TrimInterval
	if every <= 0 {
		every = DefaultTrimInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		start := time.Now()
		r, err := s.hub.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("inbox sweep", "err", err, "trimmed", r.Trimmed, "expired", r.Expired, "forgotten", r.Forgotten, "retired", r.Retired)
		} else if r.Expired > 0 || r.Retired > 0 || r.Forgotten > 0 {
			s.log.Info("inbox sweep", "trimmed", r.Trimmed, "expired", r.Expired, "forgotten", r.Forgotten, "retired", r.Retired, "took", time.Since(start))
		} else if r.Trimmed > 0 {
			s.log.Debug("inbox sweep", "trimmed", r.Trimmed, "took", time.Since(start))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// flagBounds turns the flags' zeros ("off" for --retention and
// --device-retire, as their help says) into Bounds' negatives; Bounds' zero
// is the default.
func flagBounds(b Bounds) Bounds {
	if b.Retention == 0 {
		b.Retention = -1
	}
	if b.DeviceRetire == 0 {
		b.DeviceRetire = -1
	}
	if b.MaxDevices == 0 {
		b.MaxDevices = -1
	}
	return b
}
