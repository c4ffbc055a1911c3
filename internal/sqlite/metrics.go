package sqlite

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets are the bounds, in seconds, of the store's latency
// histograms: fine below 10 ms, where a commit (an fsync) normally lies,
// coarse above, where the tail is.
var latencyBuckets = []float64{
	.0001, .00025, .0005, .001, .002, .003, .004, .005, .0075, .01, .015, .02, .03, .05,
	.075, .1, .15, .2, .3, .5, .75, 1, 2, 5,
}

// metrics are the store's Prometheus metrics. They exist (unregistered)
// when Options.Metrics is nil, so the code that updates them never checks.
type metrics struct {
	// batch is a batch's time from its BEGIN to the end of its COMMIT:
	// what every write of the batch waits for once the writer took it.
	batch prometheus.Histogram
	// wait is a write's time in the queue, from its caller handing it to
	// the writer to the writer taking it into a batch.
	wait prometheus.Histogram
	// commit is the COMMIT alone: the WAL write and its fsync.
	commit prometheus.Histogram
	// writes is the number of writes per batch.
	writes prometheus.Histogram
	// checkpoint is a checkpoint's duration, by kind (see
	// checkpoint.go): a background round alongside the writer, or the
	// final round with the writer paused.
	checkpoint *prometheus.HistogramVec
	// walFrames is the WAL's size in frames (pages) when the last
	// checkpoint ended.
	walFrames prometheus.Gauge
	// restarts counts the checkpoints after which the WAL started over
	// (everything copied back; the next transaction writes from its start).
	restarts prometheus.Counter
	// finalsCut counts the final checkpoints cut short at finalWait.
	finalsCut prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "natter_store_batch_seconds",
			Help:    "Time of one group-commit batch of the store's writer, from BEGIN to the end of COMMIT (fsync included).",
			Buckets: latencyBuckets}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "natter_store_queue_seconds",
			Help:    "Time a write waits for the store's writer to take it into a batch (behind the batch running, a checkpoint's last round, or a full queue).",
			Buckets: latencyBuckets}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "natter_store_commit_seconds",
			Help:    "Time of the store's COMMIT statements (WAL write and fsync).",
			Buckets: latencyBuckets}),
		writes: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "natter_store_batch_writes",
			Help:    "Writes per group-commit batch.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}}),
		checkpoint: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "natter_store_checkpoint_seconds",
			Help:    "Time of WAL checkpoints, by kind: background (alongside the writer) or final (the writer paused between two batches: no write commits meanwhile).",
			Buckets: latencyBuckets}, []string{"kind"}),
		walFrames: prometheus.NewGauge(prometheus.GaugeOpts{Name: "natter_store_wal_frames",
			Help: "Frames (pages) in the WAL at the end of the last checkpoint."}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_store_wal_restarts_total",
			Help: "Final checkpoints that copied the whole WAL back, so that the next write starts it over."}),
		finalsCut: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_store_checkpoint_final_cut_total",
			Help: "Final checkpoints (the writer paused) cut short after 20 ms; the WAL did not start over that time."}),
	}
	if reg != nil {
		reg.MustRegister(m.batch, m.wait, m.commit, m.writes, m.checkpoint, m.walFrames, m.restarts, m.finalsCut)
	}
	return m
}

func seconds(d time.Duration) float64 { return d.Seconds() }
