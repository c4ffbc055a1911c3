package test

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/natterim/natter/natlab"
)

// TestMeasureTimeToDirect prints how long a conversation takes to go direct
// in the lab (from starting natter chat to its path event), p50 and p95 over
// repeated runs. It measures, it does not assert: run it with
// NATTER_MEASURE=1 go test -run TestMeasureTimeToDirect -v ./test
func TestMeasureTimeToDirect(t *testing.T) {
	if os.Getenv("NATTER_MEASURE") == "" {
		t.Skip("a measurement: set NATTER_MEASURE=1 to run it")
	}
	const runs = 10
	for _, topo := range []natlab.Topology{natlab.SameLAN(), natlab.TwoHomeRouters(), natlab.BothSymmetric()} {
		var ds []time.Duration
		var rtts []float64
		var path string
		for range runs {
			func() {
				n := startNatLab(t, topo)
				homeA, homeB := n.setupPair()
				n.chat("b", homeB, "alice")
				alice := n.chat("a", homeA, "bob")
				p := alice.next("path", 40*time.Second, func(m map[string]any) bool { return m["path"] != "server" })
				ds = append(ds, time.Since(alice.start))
				path, _ = p["path"].(string)
				if r, ok := p["rtt_ms"].(float64); ok {
					rtts = append(rtts, r)
				}
				n.lab.Close()
			}()
		}
		slices.Sort(ds)
		slices.Sort(rtts)
		t.Logf("%-18s %-8s time to path p50 %v p95 %v (n=%d); path rtt p50 %.2f ms", topo.Name, path,
			ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)*95/100].Round(time.Millisecond), len(ds), rtts[len(rtts)/2])
	}
}
