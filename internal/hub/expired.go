package hub

import (
	"context"
	"time"

	"github.com/natterim/natter"
)

// SessionExpired tells contacts about a session that the registry ended
// without a Delete: in a cluster, one of a node that died
// (natter.ExpiringRegistry), whose connection's cleanup will never run.
// It does what that cleanup would have done once the session was removed:
// the device's connection info is withdrawn, and the user's presence is
// announced again (offline, with last seen, if no real session is left).
// Give it to the registry's OnExpire.
func (h *Hub) SessionExpired(s natter.LiveSession) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.log.Info("session expired: its node died", "user", s.User, "device", s.Device, "node", s.Node)
	if len(s.Reach) > 0 {
		h.publishReach(ctx, s.User, s.Device, nil)
	}
	if s.Quiet {
		h.revokeIfGone(ctx, s.User)
		return
	}
	h.announce(ctx, s.User)
}

// SessionRestored tells contacts again about a session that the registry
// put back by itself: in a cluster, one of this node's that the other
// nodes removed while they took it for dead (it was cut off from NATS),
// after telling contacts the user went offline (SessionExpired, there).
// The session's connection info and the user's presence are announced
// again. A quiet session was never announced: nothing to do. Give it to
// the registry's OnRestore (natsbus).
func (h *Hub) SessionRestored(s natter.LiveSession) {
	if s.Quiet {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.log.Info("session restored: this node was taken for dead", "user", s.User, "device", s.Device)
	if len(s.Reach) > 0 {
		h.publishReach(ctx, s.User, s.Device, s.Reach)
	}
	h.announce(ctx, s.User)
}
