package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/natterim/natter/internal/auth"
	"github.com/natterim/natter/internal/hub"
	"github.com/natterim/natter/internal/natsthrottle"
)

// openThrottles sets the hub's wrong-password back-off and its per-user
// rate limits: with a NATS bus (a cluster) they are shared by every node
// through NATS (internal/natsthrottle); on one node the hub keeps its own. The function
// returned closes what was opened.
func openThrottles(ctx context.Context, cfg Config, hcfg *hub.Config, log *slog.Logger) (func(), error) {
	if cfg.Bus == "" {
		return func() {}, nil
	}
	user, ip := auth.NewThrottle(), hub.NewIPThrottle()
	conn, err := natsthrottle.Dial(ctx, cfg.Bus, max(user.Forget, ip.Forget))
	if err != nil {
		return nil, fmt.Errorf("--bus: login throttle: %w", err)
	}
	hcfg.Throttle = conn.Throttle(user, "u", log)
	hcfg.IPThrottle = conn.Throttle(ip, "ip", log)
	hcfg.SharedLimits = func(name string, perSecond float64, burst int) hub.Limiter {
		return conn.Limiter(name, perSecond, burst, log)
	}
	return conn.Close, nil
}
