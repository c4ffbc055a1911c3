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
