package bench

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	// Every value lies in the range of its bucket, and bucket ranges are
	// contiguous and within 1/2^subBits of their low end.
	vals := []uint64{0, 1, 2, 127, 128, 255, 256, 257, 1000, 1 << 20, 1<<20 + 12345, math.MaxInt64}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		vals = append(vals, r.Uint64N(1<<uint(r.IntN(63))+1))
	}
	for _, v := range vals {
		i := bucketOf(v)
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if float64(hi-lo) > float64(lo)/subCount {
			t.Fatalf("bucket %d = [%d, %d] is wider than 1/%d of its start", i, lo, hi, subCount)
		}
	}
	for i := 1; i < numBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, lo, i-1, prevHi)
		}
	}
}

func TestQuantile(t *testing.T) {
	exact := func(sorted []time.Duration, q float64) time.Duration {
		rank := int(math.Ceil(q * float64(len(sorted))))
		return sorted[max(rank, 1)-1]
	}
	r := rand.New(rand.NewPCG(3, 4))
	tests := []struct {
		name string
		vals []time.Duration
	}{
		{"one value", []time.Duration{42 * time.Millisecond}},
		{"small exact values", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"uniform 1..100000µs", func() []time.Duration {
			var v []time.Duration
			for i := 1; i <= 100000; i++ {
				v = append(v, time.Duration(i)*time.Microsecond)
			}
			return v
		}()},
		{"long tail", func() []time.Duration {
			var v []time.Duration
			for range 50000 {
				v = append(v, time.Duration(r.ExpFloat64()*float64(2*time.Millisecond)))
			}
			v = append(v, 3*time.Second)
			return v
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.vals {
				h.Record(v)
			}
			sorted := slices.Clone(tt.vals)
			slices.Sort(sorted)
			if h.Count() != uint64(len(sorted)) {
				t.Errorf("count %d, want %d", h.Count(), len(sorted))
			}
			if h.Min() != sorted[0] || h.Max() != sorted[len(sorted)-1] {
				t.Errorf("min/max %v/%v, want %v/%v", h.Min(), h.Max(), sorted[0], sorted[len(sorted)-1])
			}
			for _, q := range []float64{0.001, 0.5, 0.9, 0.99, 0.999, 1} {
				got, want := h.Quantile(q), exact(sorted, q)
				if math.Abs(float64(got-want)) > float64(want)/subCount+1 {
					t.Errorf("q%v = %v, want %v (±%.1f%%)", q, got, want, 100.0/subCount)
				}
			}
		})
	}
}

func TestHistogramEmptyAndNegative(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Mean() != 0 || h.Min() != 0 || h.Max() != 0 {
		t.Errorf("empty histogram: q99 %v mean %v min %v max %v, want zeros", h.Quantile(0.99), h.Mean(), h.Min(), h.Max())
	}
	h.Record(-time.Second) // clocks of two processes may disagree slightly
	if h.Count() != 1 || h.Max() != 0 || h.Quantile(0.5) != 0 {
		t.Errorf("negative duration: count %d max %v, want it counted as 0", h.Count(), h.Max())
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i) * 10 * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	for _, q := range []float64{0.5, 0.99, 0.999} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged q%v = %v, want %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() || a.Mean() != all.Mean() {
		t.Errorf("merged count/min/max/mean %d/%v/%v/%v, want %d/%v/%v/%v",
			a.Count(), a.Min(), a.Max(), a.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
}

// TestSnapshot: histograms recorded apart and added through snapshots (as
// the processes of a --procs run are) give what one histogram given every
// value gives, also after a JSON round trip.
func TestSnapshot(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var all, parts Histogram
	var part [3]Histogram
	for i := range 30000 {
		d := time.Duration(r.Int64N(int64(2 * time.Second)))
		all.Record(d)
		part[i%3].Record(d)
	}
	for i := range part {
		b, err := json.Marshal(part[i].Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		var s HistSnapshot
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		if err := parts.AddSnapshot(s); err != nil {
			t.Fatal(err)
		}
	}
	if parts.Count() != all.Count() || parts.Mean() != all.Mean() || parts.Min() != all.Min() || parts.Max() != all.Max() {
		t.Errorf("merged: n %d mean %v min %v max %v; want n %d mean %v min %v max %v",
			parts.Count(), parts.Mean(), parts.Min(), parts.Max(), all.Count(), all.Mean(), all.Min(), all.Max())
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		if got, want := parts.Quantile(q), all.Quantile(q); got != want {
			t.Errorf("merged quantile %v = %v, want %v", q, got, want)
		}
	}
	var empty Histogram
	if err := empty.AddSnapshot(HistSnapshot{Buckets: [][2]uint64{{numBuckets, 1}}}); err == nil {
		t.Error("a bucket out of range was accepted")
	}
	if err := empty.AddSnapshot((&Histogram{}).Snapshot()); err != nil || empty.Count() != 0 || empty.Min() != 0 {
		t.Errorf("an empty snapshot: err %v, count %d, min %v", err, empty.Count(), empty.Min())
	}
}
