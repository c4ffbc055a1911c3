package bench

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The server's store histograms that natter-bench reads from /metrics at
// the window's edges, to put the store's own times next to the latency it
// measured: a slow batch or checkpoint shows up in both.
var storeHists = []string{
	"natter_store_batch_seconds",
	"natter_store_queue_seconds",
	"natter_store_commit_seconds",
	"natter_store_checkpoint_seconds",
	"natter_send_seconds",
}

// PromHist is a Prometheus histogram as scraped: cumulative counts by
// upper bound (the last bound is +Inf).
type PromHist struct {
	Bounds []float64 `json:"bounds"`
	Counts []float64 `json:"counts"`
	Sum    float64   `json:"sum"`
	Count  float64   `json:"count"`
}

// histKey names one histogram series: its name and its labels other than
// le, as they appear on the page ("natter_store_checkpoint_seconds{by="writer"}").
func histKey(name, labels string) string {
	var keep []string
	for l := range strings.SplitSeq(labels, ",") {
		if l != "" && !strings.HasPrefix(l, "le=") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return name
	}
	return name + "{" + strings.Join(keep, ",") + "}"
}

// leOf returns the le label's bound in a label list.
func leOf(labels string) (float64, bool) {
	for l := range strings.SplitSeq(labels, ",") {
		if v, ok := strings.CutPrefix(l, "le="); ok {
			f, err := strconv.ParseFloat(strings.Trim(v, `"`), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// addHistLine records one line of a histogram in hs if name (without its
// _bucket, _sum or _count suffix) is one of storeHists.
func addHistLine(hs map[string]*PromHist, name, labels string, v float64) {
	base, part := name, ""
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, suf); ok {
			base, part = b, suf
			break
		}
	}
	if part == "" || !slices.Contains(storeHists, base) {
		return
	}
	key := histKey(base, labels)
	h := hs[key]
	if h == nil {
		h = &PromHist{}
		hs[key] = h
	}
	switch part {
	case "_sum":
		h.Sum = v
	case "_count":
		h.Count = v
	case "_bucket":
		if le, ok := leOf(labels); ok {
			h.Bounds = append(h.Bounds, le)
			h.Counts = append(h.Counts, v)
		}
	}
}

// sub returns h − o (the observations between two scrapes), or nil if
// their buckets differ.
func (h *PromHist) sub(o *PromHist) *PromHist {
	if o == nil {
		return h
	}
	if !slices.Equal(h.Bounds, o.Bounds) {
		return nil
	}
	d := &PromHist{Bounds: h.Bounds, Counts: make([]float64, len(h.Counts)), Sum: h.Sum - o.Sum, Count: h.Count - o.Count}
	for i := range h.Counts {
		d.Counts[i] = h.Counts[i] - o.Counts[i]
	}
	return d
}

// quantile returns the upper bound of the bucket holding the q-th
// observation (+Inf past the last finite bound), or 0 without any.
func (h *PromHist) quantile(q float64) float64 {
	if h.Count <= 0 {
		return 0
	}
	rank := math.Ceil(q * h.Count)
	for i, c := range h.Counts {
		if c >= rank {
			return h.Bounds[i]
		}
	}
	return math.Inf(1)
}

// top returns the upper bound of the highest bucket with an observation.
func (h *PromHist) top() float64 {
	for i := range h.Counts {
		if h.Counts[i] >= h.Count {
			return h.Bounds[i]
		}
	}
	return math.Inf(1)
}

// StoreWindow is what the server's store did in the window, from its
// histograms (bounds: the true value is at most this).
type StoreWindow struct {
	Batches      float64            `json:"batches"`
	BatchP50     float64            `json:"batch_p50_ms_le"`
	BatchP99     float64            `json:"batch_p99_ms_le"`
	BatchTop     float64            `json:"batch_max_ms_le"`
	CommitP99    float64            `json:"commit_p99_ms_le"`
	CommitMeanMS float64            `json:"commit_mean_ms"`
	Checkpoints  []CheckpointWindow `json:"checkpoints,omitempty"`
	// A write's wait in the store's queue.
	QueueP50 float64 `json:"queue_p50_ms_le,omitempty"`
	QueueP99 float64 `json:"queue_p99_ms_le,omitempty"`
	// The hub's time to handle a Send (natter_send_seconds), commit
	// included.
	SendP50 float64 `json:"send_p50_ms_le,omitempty"`
	SendP99 float64 `json:"send_p99_ms_le,omitempty"`
}

// CheckpointWindow is one kind of checkpoint in the window.
type CheckpointWindow struct {
	Kind    string  `json:"kind"`
	Count   float64 `json:"count"`
	TotalMS float64 `json:"total_ms"`
	TopMS   float64 `json:"max_ms_le"`
}

// storeWindow computes the store's figures between two scrapes; nil if
// the server has no store histograms.
func storeWindow(a, b *Stats) *StoreWindow {
	if a == nil || b == nil || b.Hists == nil {
		return nil
	}
	get := func(key string) *PromHist {
		h := b.Hists[key]
		if h == nil {
			return nil
		}
		return h.sub(a.Hists[key])
	}
	sw := &StoreWindow{}
	if h := get("natter_store_batch_seconds"); h != nil {
		sw.Batches = h.Count
		sw.BatchP50, sw.BatchP99, sw.BatchTop = 1e3*h.quantile(.5), 1e3*h.quantile(.99), 1e3*h.top()
	}
	if h := get("natter_store_commit_seconds"); h != nil && h.Count > 0 {
		sw.CommitP99 = 1e3 * h.quantile(.99)
		sw.CommitMeanMS = 1e3 * h.Sum / h.Count
	}
	if h := get("natter_store_queue_seconds"); h != nil && h.Count > 0 {
		sw.QueueP50, sw.QueueP99 = 1e3*h.quantile(.5), 1e3*h.quantile(.99)
	}
	if h := get("natter_send_seconds"); h != nil && h.Count > 0 {
		sw.SendP50, sw.SendP99 = 1e3*h.quantile(.5), 1e3*h.quantile(.99)
	}
	var keys []string
	for k := range b.Hists {
		if strings.HasPrefix(k, "natter_store_checkpoint_seconds{") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		h := get(k)
		if h == nil || h.Count == 0 {
			continue
		}
		_, kind, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(k, "natter_store_checkpoint_seconds{"), "}"), "=")
		sw.Checkpoints = append(sw.Checkpoints, CheckpointWindow{Kind: strings.Trim(kind, `"`), Count: h.Count, TotalMS: 1e3 * h.Sum, TopMS: 1e3 * h.top()})
	}
	return sw
}

func (sw *StoreWindow) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%.0f batches, p50 ≤%s p99 ≤%s max ≤%s; COMMIT p99 ≤%s (mean %s)",
		sw.Batches, fmtMS(sw.BatchP50), fmtMS(sw.BatchP99), fmtMS(sw.BatchTop), fmtMS(sw.CommitP99), fmtMS(sw.CommitMeanMS))
	if sw.QueueP99 > 0 {
		fmt.Fprintf(&b, "; queue p50 ≤%s p99 ≤%s", fmtMS(sw.QueueP50), fmtMS(sw.QueueP99))
	}
	if sw.SendP99 > 0 {
		fmt.Fprintf(&b, "; Send handled p50 ≤%s p99 ≤%s", fmtMS(sw.SendP50), fmtMS(sw.SendP99))
	}
	for _, c := range sw.Checkpoints {
		fmt.Fprintf(&b, "; %.0f %s checkpoints (%s in all, max ≤%s)", c.Count, c.Kind, fmtMS(c.TotalMS), fmtMS(c.TopMS))
	}
	return b.String()
}
