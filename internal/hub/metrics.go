package hub

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the hub's Prometheus metrics.
type Metrics struct {
	connections     *prometheus.GaugeVec
	sessions        prometheus.Gauge
	framesIn        *prometheus.CounterVec
	messages        prometheus.Counter
	duplicates      prometheus.Counter
	logins          *prometheus.CounterVec
	disconnects     *prometheus.CounterVec
	slowConsumers   prometheus.Counter
	storeErrors     prometheus.Counter
	busErrors       prometheus.Counter
	presencePushes  prometheus.Counter
	sendSeconds     prometheus.Histogram
	signals         prometheus.Counter
	typing          prometheus.Counter
	copies          prometheus.Counter
	rateLimited     *prometheus.CounterVec
	keyChanges      prometheus.Counter
	prekeyClaims    *prometheus.CounterVec
	chunksStored    prometheus.Counter
	chunkBytes      prometheus.Counter
	chunkDedup      prometheus.Counter
	chunksServed    prometheus.Counter
	chunksExpired   prometheus.Counter
	archiveSwitches *prometheus.CounterVec
	archiveRecords  prometheus.Counter
	archiveServed   prometheus.Counter
	ret             *retentionMetrics // retention.go
	reg             prometheus.Registerer
}

// NewMetrics creates the hub's metrics and registers them with reg (if not
// nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return newMetrics(reg)
}

// watchPaths registers natter_conversations, computed at scrape time from
// p. A Metrics serves one Hub.
func (m *Metrics) watchPaths(p *paths, now func() time.Time) {
	if m.reg == nil {
		return
	}
	help := "Conversations by path: server = pairs who exchanged a message through the server in the last 5 minutes; direct and relayed = peer-to-peer channels open (reported by the offering client)."
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "natter_conversations", Help: help, ConstLabels: prometheus.Labels{"path": "server"}},
			func() float64 { return p.serverCount(now()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "natter_conversations", Help: help, ConstLabels: prometheus.Labels{"path": "direct"}},
			func() float64 { return p.p2pCount("direct") }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "natter_conversations", Help: help, ConstLabels: prometheus.Labels{"path": "relayed"}},
			func() float64 { return p.p2pCount("relayed") }),
	)
}

func newMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "natter_connections",
			Help: "Open client connections by transport."}, []string{"transport"}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "natter_sessions",
			Help: "Logged-in connections."}),
		framesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_frames_in_total",
			Help: "Frames received from clients, by type."}, []string{"type"}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_messages_total",
			Help: "Messages accepted and stored (relayed through the server)."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_messages_duplicate_total",
			Help: "Sends that repeated an already stored message ID."}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_logins_total",
			Help: "Sign-ups and logins by result."}, []string{"result"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_disconnects_total",
			Help: "Closed connections by reason."}, []string{"reason"}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_slow_consumers_total",
			Help: "Connections dropped because they did not read fast enough."}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_store_errors_total",
			Help: "Store writes that failed."}),
		busErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_bus_errors_total",
			Help: "Bus publishes that failed."}),
		presencePushes: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_presence_pushes_total",
			Help: "Presence updates pushed to contacts."}),
		sendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "natter_send_seconds",
			Help: "Time to handle a send, including the durable commit.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		signals: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_signals_total",
			Help: "Peer-to-peer signalling frames passed between devices."}),
		typing: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_typing_total",
			Help: "Typing notifications relayed to contacts (never stored; those dropped over the rate count in natter_rate_limited_total{what=\"typing\"})."}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_rate_limited_total",
			Help: "Requests refused by a per-user limit, by what was limited."}, []string{"what"}),
		copies: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_direct_copies_total",
			Help: "Copies of peer-to-peer messages stored for the user's own other devices (not relayed to anyone else)."}),
		chunksStored: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_chunks_stored_total",
			Help: "File chunks written to the blob store (uploads of a chunk it did not hold)."}),
		chunkBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_chunk_bytes_stored_total",
			Help: "Bytes of file chunks written to the blob store."}),
		chunkDedup: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_chunk_dedup_total",
			Help: "Chunk uploads the blob store already held (nothing written)."}),
		chunksServed: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_chunks_served_total",
			Help: "File chunks sent to clients (GetChunk)."}),
		chunksExpired: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_chunks_expired_total",
			Help: "File chunks forgotten and deleted after the file retention."}),
		archiveSwitches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_archive_switches_total",
			Help: "Server-side histories (archives) turned on or off by their users (off deletes the user's records), by state asked for."}, []string{"state"}),
		archiveRecords: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_archive_records_total",
			Help: "Archive records accepted (ArchivePut answered OK), repeats of records already stored included: each of a user's devices puts the messages it sees."}),
		archiveServed: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_archive_records_served_total",
			Help: "Archive records sent to devices (ArchiveGet)."}),
		keyChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_key_changes_total",
			Help: "End-to-end key changes announced (KeysChanged): an identity, a device bundle or a device certificate."}),
		prekeyClaims: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_prekey_claims_total",
			Help: "One-time prekey claims by result: prekey (one handed out), empty (the device had none left; senders fall back to its bundle's last-resort key)."}, []string{"result"}),
	}
	m.reg = reg
	m.ret = newRetentionMetrics(reg)
	if reg != nil {
		reg.MustRegister(m.connections, m.sessions, m.framesIn, m.messages, m.duplicates, m.logins,
			m.disconnects, m.slowConsumers, m.storeErrors, m.busErrors, m.presencePushes, m.sendSeconds, m.signals, m.typing, m.copies, m.rateLimited,
			m.keyChanges, m.prekeyClaims, m.chunksStored, m.chunkBytes, m.chunkDedup, m.chunksServed, m.chunksExpired,
			m.archiveSwitches, m.archiveRecords, m.archiveServed)
	}
	return m
}
