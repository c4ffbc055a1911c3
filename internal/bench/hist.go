package bench

import (
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the histogram's precision: every power-of-two range of
// values is split into 2^subBits equal buckets, so a reported percentile
// is within 1/2^(subBits+1) (0.4%) of the true value.
const subBits = 7

const (
	subCount   = 1 << subBits
	numBuckets = (64-subBits)*subCount + subCount
)

// Histogram counts durations in log-linear buckets (the HdrHistogram
// layout): values below 2^(subBits+1) ns are counted exactly, larger ones
// with a relative error under 0.4%. It takes about 60 KiB whatever the
// number of values, records without locks (one atomic add), and two
// histograms merge by adding counts, so every receiver of a run can share
// one.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // nanoseconds; wraps only after 584 years of latency
	min    atomic.Uint64 // stored as ^v so that the zero value means "none"
	max    atomic.Uint64
}

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1)
	top := v >> shift // in [subCount, 2*subCount)
	return (shift+1)*subCount + int(top-subCount)
}

// bucketRange returns the smallest and largest values counted in bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < 2*subCount {
		return uint64(i), uint64(i)
	}
	shift := i/subCount - 1
	top := uint64(i%subCount + subCount)
	lo = top << shift
	return lo, lo + (1 << shift) - 1
}

// Record counts one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	h.bound(v, v)
}

// bound widens the recorded minimum and maximum to include lo and hi.
func (h *Histogram) bound(lo, hi uint64) {
	for {
		m := h.max.Load()
		if hi <= m || h.max.CompareAndSwap(m, hi) {
			break
		}
	}
	for {
		m := h.min.Load()
		if m != 0 && lo >= ^m || h.min.CompareAndSwap(m, ^lo) {
			break
		}
	}
}

// Count returns how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max returns the largest duration recorded, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min returns the smallest duration recorded, exactly (0 if none).
func (h *Histogram) Min() time.Duration {
	m := h.min.Load()
	if m == 0 {
		return 0
	}
	return time.Duration(^m)
}

// Mean returns the average duration (0 if none).
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the duration below or at which a fraction q (0 < q <= 1)
// of the recorded durations lie: the value of rank ceil(q·n) in sorted
// order, as the middle of its bucket, clamped to the exact minimum and
// maximum. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return min(max(time.Duration(v), h.Min()), h.Max())
		}
	}
	return h.Max() // counts and n raced with a Record; close enough
}

// Merge adds o's counts to h. o must not change meanwhile.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	n := o.n.Load()
	if n == 0 {
		return
	}
	h.n.Add(n)
	h.sum.Add(o.sum.Load())
	h.bound(uint64(o.Min()), uint64(o.Max()))
}

// HistSnapshot is a Histogram's content in a form that travels (as JSON)
// from one process to another: the counts of the buckets that have any.
type HistSnapshot struct {
	N       uint64      `json:"n"`
	Sum     uint64      `json:"sum_ns"`
	Min     uint64      `json:"min_ns"`
	Max     uint64      `json:"max_ns"`
	Buckets [][2]uint64 `json:"buckets"` // bucket index, count
}

// Snapshot returns h's content. h must not change meanwhile.
func (h *Histogram) Snapshot() HistSnapshot {
	s := HistSnapshot{N: h.n.Load(), Sum: h.sum.Load(), Min: uint64(h.Min()), Max: uint64(h.Max())}
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			s.Buckets = append(s.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return s
}

// AddSnapshot adds the content of s (another Histogram's Snapshot) to h,
// as Merge does.
func (h *Histogram) AddSnapshot(s HistSnapshot) error {
	for _, b := range s.Buckets {
		if b[0] >= numBuckets {
			return fmt.Errorf("histogram bucket %d out of range", b[0])
		}
	}
	for _, b := range s.Buckets {
		h.counts[b[0]].Add(b[1])
	}
	if s.N == 0 {
		return nil
	}
	h.n.Add(s.N)
	h.sum.Add(s.Sum)
	h.bound(s.Min, s.Max)
	return nil
}
