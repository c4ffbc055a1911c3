package natsbus

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a Node's Prometheus metrics.
type metrics struct {
	reg            prometheus.Registerer
	publishSeconds prometheus.Histogram
	publishErrors  prometheus.Counter
	reconnects     prometheus.Counter
	connected      prometheus.Gauge
	dropped        prometheus.Counter
	opSeconds      *prometheus.HistogramVec
	conflicts      prometheus.Counter
	expired        prometheus.Counter
	copyReads      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reg: reg,
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "natter_bus_publish_seconds",
			Help:    "Time to publish one bus event to NATS (core NATS: until it is in the connection's buffer).",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 11)}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_bus_publish_errors_total",
			Help: "Bus events that could not be published (connection closed, reconnect buffer full)."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_bus_reconnects_total",
			Help: "Times this node reconnected to NATS; events for its users published meanwhile were lost to it (clients fill the gaps from the store)."}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "natter_bus_connected",
			Help: "1 while this node is connected to NATS."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_bus_slow_consumer_total",
			Help: "Times this node's delivery queue for a user filled up and NATS events were dropped (slow consumer; nats.go reports each episode once)."}),
		opSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "natter_registry_op_seconds",
			Help:    "Time of one registry operation on NATS (put, delete, sessions), retries included.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 3, 10)}, []string{"op"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_registry_conflicts_total",
			Help: "Registry writes retried because another write to the same user came first."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_registry_expired_total",
			Help: "Sessions of dead nodes this node removed from the registry."}),
		copyReads: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_registry_copy_reads_total",
			Help: "Registry reads (Sessions) answered from this node's copy of the registry, with no NATS round trip; the others are natter_registry_op_seconds{op=\"sessions\"}."}),
	}
	if reg != nil {
		reg.MustRegister(m.publishSeconds, m.publishErrors, m.reconnects, m.connected, m.dropped,
			m.opSeconds, m.conflicts, m.expired, m.copyReads)
	}
	return m
}

// watch registers the gauges read from the registry at scrape time.
func (m *metrics) watch(r *Registry) {
	if m.reg == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "natter_registry_sessions",
			Help: "Live sessions this node holds in the shared registry (the registry's size is the sum over nodes)."},
			func() float64 { return float64(r.Held()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "natter_registry_nodes",
			Help: "Nodes with a heartbeat in the registry, as this node last read them."},
			func() float64 { return float64(r.nodes.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "natter_registry_copy_ready",
			Help: "1 while this node's copy of the registry is filled and followed (Sessions costs no round trip); 0 while it is being filled."},
			func() float64 {
				if r.copy.isWarm() {
					return 1
				}
				return 0
			}),
	)
}

func (m *metrics) observeOp(op string, start time.Time) {
	m.opSeconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
