package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/natterim/natter"
)

// The store's bounds: the inbox holds what some device of its user has yet
// to acknowledge, for at most Config.Retention, and a device that has not
// logged in for Config.DeviceRetire is retired. Sweep does both, a round at
// a time; natterd runs it every --trim-interval (docs/delivery.md).

// Retention defaults (Config.Retention, Config.DeviceRetire).
const (
	DefaultRetention    = 30 * 24 * time.Hour // like files (DefaultFileRetention)
	DefaultDeviceRetire = 90 * 24 * time.Hour
)

// sweepBatch bounds the inbox entries (and the trimmed messages) one store
// write of a sweep deletes, so that the writer is never held long: each is
// a write queued like any other, and the messages of the moment share its
// commit.
const sweepBatch = 256

// idleBatch is how many idle devices a sweep lists at a time.
const idleBatch = 100

// maxExpiryLines bounds the per-user log lines of one sweep's expiries (the
// first sweep after a long stop may expire many users' entries); the rest
// are summed up in one line.
const maxExpiryLines = 100

// SweepResult is what one Sweep did.
type SweepResult struct {
	Trimmed   int // inbox entries deleted: every device of their user had acknowledged them
	Expired   int // inbox entries deleted unacknowledged after the retention
	Forgotten int // trimmed messages and copies forgotten after the retention (a retry of one is no longer recognised)
	Retired   int // devices retired: not logged in for DeviceRetire
}

// Sweep runs one round over the store's bounds: it trims every inbox of
// what all the user's devices acknowledged, expires what is older than the
// retention (logging each user's count at Info), forgets trimmed messages
// past the retention, and retires devices not seen for DeviceRetire (an
// online device is seen now: its login time is refreshed instead). It
// returns what it did, also on error (what was done stays done).
func (h *Hub) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	now := h.now()
	var olderThan time.Time // zero: nothing expires
	if h.cfg.Retention > 0 {
		olderThan = now.Add(-h.cfg.Retention)
	}
	expired := make(map[natter.UserID]int)
	err := h.trimAll(ctx, olderThan, &res, expired)
	users := make([]natter.UserID, 0, len(expired))
	for u := range expired {
		users = append(users, u)
	}
	slices.Sort(users)
	for i, u := range users {
		if i == maxExpiryLines {
			rest := 0
			for _, u := range users[i:] {
				rest += expired[u]
			}
			h.log.Info("inbox entries expired unacknowledged, more users", "users", len(users)-i, "count", rest, "retention", h.cfg.Retention)
			break
		}
		h.log.Info("inbox entries expired unacknowledged", "user", u, "count", expired[u], "retention", h.cfg.Retention)
	}
	if err != nil {
		return res, err
	}
	if !olderThan.IsZero() {
		for {
			n, err := h.cfg.Store.ForgetTrimmed(ctx, olderThan, sweepBatch)
			res.Forgotten += n
			h.met.ret.forgotten.Add(float64(n))
			if err != nil {
				return res, fmt.Errorf("forget trimmed messages: %w", err)
			}
			if n < sweepBatch {
				break
			}
		}
	}
	if h.cfg.DeviceRetire > 0 {
		if err := h.retireDevices(ctx, now, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// trimAll makes one pass of Store.TrimInbox over every user.
func (h *Hub) trimAll(ctx context.Context, olderThan time.Time, res *SweepResult, expired map[natter.UserID]int) error {
	from := natter.UserID("")
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := h.cfg.Store.TrimInbox(ctx, from, olderThan, sweepBatch)
		res.Trimmed += r.Acked
		h.met.ret.trimmed.Add(float64(r.Acked))
		for u, n := range r.Expired {
			res.Expired += n
			expired[u] += n
			h.met.ret.expired.Add(float64(n))
		}
		if err != nil {
			return fmt.Errorf("trim inboxes: %w", err)
		}
		if r.Done {
			return nil
		}
		from = r.Next
	}
}

// retireDevices retires the devices that have not logged in since
// now - DeviceRetire and are not online now.
func (h *Hub) retireDevices(ctx context.Context, now time.Time, res *SweepResult) error {
	cutoff := now.Add(-h.cfg.DeviceRetire)
	for {
		idle, err := h.cfg.Store.IdleDevices(ctx, cutoff, idleBatch)
		if err != nil {
			return fmt.Errorf("list idle devices: %w", err)
		}
		progress := false
		for _, d := range idle {
			online, err := h.online(ctx, d.User, d.Device)
			if err != nil {
				return err
			}
			if online {
				// Connected since before the cutoff: seen now. Refresh
				// its login time, so that a drop does not retire it.
				if _, err := h.cfg.Store.TouchDevice(ctx, d.User, d.Device, now, 0); err != nil {
					return fmt.Errorf("touch online device %s/%s: %w", d.User, d.Device, err)
				}
				progress = true
				continue
			}
			removed, err := h.cfg.Store.RemoveDevice(ctx, d.User, d.Device, cutoff)
			if err != nil && !errors.Is(err, natter.ErrNoSuchUser) {
				return fmt.Errorf("retire device %s/%s: %w", d.User, d.Device, err)
			}
			progress = true
			if !removed {
				continue // logged in meanwhile
			}
			res.Retired++
			h.met.ret.devicesRemoved.WithLabelValues("retired").Inc()
			h.log.Info("device retired", "user", d.User, "device", d.Device, "last_login", d.LastLogin, "unseen_for", h.cfg.DeviceRetire)
			h.deviceGone(ctx, d.User, d.Device, fmt.Sprintf("retired after %s without a login", h.cfg.DeviceRetire))
		}
		if len(idle) < idleBatch || !progress {
			return nil
		}
	}
}

// online reports whether user's device has a live session on any node.
func (h *Hub) online(ctx context.Context, user natter.UserID, device natter.DeviceID) (bool, error) {
	ss, err := h.cfg.Registry.Sessions(ctx, user)
	if err != nil {
		return false, fmt.Errorf("registry: %w", err)
	}
	for _, s := range ss {
		if s.Device == device {
			return true, nil
		}
	}
	return false, nil
}

// retentionMetrics count what Sweep and RemoveDevice deleted.
type retentionMetrics struct {
	trimmed        prometheus.Counter
	expired        prometheus.Counter
	forgotten      prometheus.Counter
	devicesRemoved *prometheus.CounterVec
}

func newRetentionMetrics(reg prometheus.Registerer) *retentionMetrics {
	m := &retentionMetrics{
		trimmed: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_inbox_trimmed_total",
			Help: "Inbox entries deleted because every device of their user had acknowledged them."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_inbox_expired_total",
			Help: "Inbox entries deleted after the retention (--retention) that some device of their user had not acknowledged: never delivered to it."}),
		forgotten: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_trimmed_forgotten_total",
			Help: "Trimmed messages and copies forgotten after the retention: a retried send of one is stored as new."}),
		devicesRemoved: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_devices_removed_total",
			Help: "Devices removed from the directory, by reason: user (RemoveDevice) or retired (no login for --device-retire)."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.trimmed, m.expired, m.forgotten, m.devicesRemoved)
	}
	return m
}
