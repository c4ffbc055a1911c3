package turnsrv

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus metrics. They exist (and count)
// whether or not they are registered.
type metrics struct {
	allocations      prometheus.Gauge
	allocationsTotal prometheus.Counter
	authFailures     *prometheus.CounterVec
	quotaRefusals    prometheus.Counter
	relayedBytes     *prometheus.CounterVec
	toPeer, toClient prometheus.Counter // relayedBytes by direction
	bindings         prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		allocations: prometheus.NewGauge(prometheus.GaugeOpts{Name: "natter_turn_allocations",
			Help: "Live TURN allocations (relayed addresses)."}),
		allocationsTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_turn_allocations_total",
			Help: "TURN allocations made."}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_turn_auth_failures_total",
			Help: "TURN requests refused, by reason: malformed, expired, unauthorized (no live session), bad_integrity (wrong password)."},
			[]string{"reason"}),
		quotaRefusals: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_turn_quota_refusals_total",
			Help: "Allocations refused because the user already held the most allowed."}),
		relayedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_turn_relayed_bytes_total",
			Help: "Payload bytes relayed, by direction: to_peer (client to peer) and to_client (peer to client)."},
			[]string{"direction"}),
		bindings: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_stun_binding_total",
			Help: "STUN Binding requests answered (server-reflexive address look-ups)."}),
	}
	m.toPeer = m.relayedBytes.WithLabelValues("to_peer")
	m.toClient = m.relayedBytes.WithLabelValues("to_client")
	for _, r := range []string{reasonMalformed, reasonExpired, reasonUnauthorized, reasonBadPassword} {
		m.authFailures.WithLabelValues(r)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.allocations, m.allocationsTotal, m.authFailures, m.quotaRefusals,
		m.relayedBytes, m.bindings}
}

// register registers every metric with reg, or none.
func (m *metrics) register(reg prometheus.Registerer) error {
	var done []prometheus.Collector
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return fmt.Errorf("%w: register metrics: %w", ErrBadConfig, err)
		}
		done = append(done, c)
	}
	return nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.collectors() {
		reg.Unregister(c)
	}
}
