package bench

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// slowDelivery is the delivery latency above which a message counts as slow
// in the timeline.
const slowDelivery = 10 * time.Millisecond

// timeline counts, per second of the window (by send time), the messages
// delivered, the slow ones and the slowest, so that a latency tail can be
// lined up with what the server logged (checkpoints, slow batches) at
// that time.
type timeline struct {
	start int64 // the window's start, Unix nanoseconds
	secs  []timelineSec
}

type timelineSec struct {
	n, slow atomic.Uint64
	max     atomic.Int64 // nanoseconds
}

func newTimeline(start time.Time, d time.Duration) *timeline {
	return &timeline{start: start.UnixNano(), secs: make([]timelineSec, int(d.Seconds()+0.999))}
}

// record counts a message sent at sent (Unix nanoseconds) that took d.
func (t *timeline) record(sent int64, d time.Duration) {
	i := int((sent - t.start) / int64(time.Second))
	if i < 0 || i >= len(t.secs) {
		return
	}
	s := &t.secs[i]
	s.n.Add(1)
	if d > slowDelivery {
		s.slow.Add(1)
	}
	for {
		m := s.max.Load()
		if int64(d) <= m || s.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// TimelineSec is one second of the window in the Result.
type TimelineSec struct {
	Start     time.Time `json:"start"`
	Delivered uint64    `json:"delivered"`
	Slow      uint64    `json:"slow"` // delivery latency over 10 ms
	MaxMS     float64   `json:"max_ms"`
}

func (t *timeline) result() []TimelineSec {
	out := make([]TimelineSec, len(t.secs))
	for i := range t.secs {
		s := &t.secs[i]
		out[i] = TimelineSec{Start: time.Unix(0, t.start+int64(i)*int64(time.Second)).UTC(),
			Delivered: s.n.Load(), Slow: s.slow.Load(), MaxMS: ms(time.Duration(s.max.Load()))}
	}
	return out
}

func writeTimeline(b *strings.Builder, ts []TimelineSec) {
	for _, s := range ts {
		fmt.Fprintf(b, "second:     %s  %5d delivered, %4d over %v, max %s\n",
			s.Start.Format("15:04:05"), s.Delivered, s.Slow, slowDelivery, fmtMS(s.MaxMS))
	}
}
