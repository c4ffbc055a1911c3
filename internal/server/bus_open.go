package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/hub"
	"github.com/natterim/natter/internal/membus"
	"github.com/natterim/natter/internal/natsbus"
)

// openBus opens the bus and the live-session registry that cfg.Bus names:
// with "" (the default) the in-process ones (internal/membus), for a single
// node; with nats:// URLs (comma-separated: the servers of one NATS
// cluster, tls:// for TLS) the NATS bus and registry that several nodes
// share (internal/natsbus), whose sessions of a dead node expire within
// cfg.Keepalive. Closing the bus returned closes the NATS connection too.
// Anything else is refused, so that a typo does not start a node on a bus
// of its own.
func openBus(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (natter.Bus, natter.Registry, error) {
	if cfg.Bus == "" {
		return membus.New(), membus.NewRegistry(), nil
	}
	for _, u := range strings.Split(cfg.Bus, ",") {
		u = strings.TrimSpace(u)
		if !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") {
			return nil, nil, fmt.Errorf("--bus %q: want nats:// URLs (comma-separated), or nothing for the in-process bus", redactURL(u))
		}
	}
	n, err := natsbus.Open(ctx, natsbus.Config{URLs: cfg.Bus, Node: cfg.Node, Timeout: cfg.Keepalive, Logger: log, Metrics: reg})
	if err != nil {
		return nil, nil, fmt.Errorf("--bus: %w", err)
	}
	log.Info("bus and registry on NATS", "node", n.ID())
	return nodeBus{n.Bus(), n}, n.Registry(), nil
}

// nodeBus is a NATS node's bus whose Close closes the node.
type nodeBus struct {
	*natsbus.Bus
	n *natsbus.Node
}

func (b nodeBus) Close() error { return b.n.Close() }

// watchExpiry has h tell contacts about the sessions that reg ends by
// itself (a cluster's registry: those of a dead node), and about those it
// puts back by itself (natsbus: this node's, after the others took it for
// dead).
func watchExpiry(reg natter.Registry, h *hub.Hub) {
	if r, ok := reg.(natter.ExpiringRegistry); ok {
		r.OnExpire(h.SessionExpired)
	}
	if r, ok := reg.(interface {
		OnRestore(func(natter.LiveSession))
	}); ok {
		r.OnRestore(h.SessionRestored)
	}
}
