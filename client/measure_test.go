package client_test

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/natterim/natter/client"
)

// TestMeasureEchoRTT prints the application-level round trip of a message
// and its echo, over a direct channel and through the server (on loopback,
// so it compares the paths' overheads, not networks). A measurement, not a
// check: NATTER_MEASURE=1 go test -run TestMeasureEchoRTT -v ./client
func TestMeasureEchoRTT(t *testing.T) {
	if os.Getenv("NATTER_MEASURE") == "" {
		t.Skip("a measurement: set NATTER_MEASURE=1 to run it")
	}
	for _, direct := range []bool{true, false} {
		inst := startServer(t)
		mod := func(o *client.Options) {}
		if direct {
			mod = withDirect(false)
		}
		alice := signup(t, inst, "alice", "alice-1", mod)
		bob := signup(t, inst, "bob", "bob-1", mod)
		befriend(t, alice, bob)
		want := client.PathServer
		if direct {
			waitReach(t, alice, "bob")
			if _, _, err := alice.OpenDirect(t.Context(), "bob"); err != nil {
				t.Fatal(err)
			}
			want = client.PathDirect
		}
		var rtts []time.Duration
		for i := range 200 {
			start := time.Now()
			res, err := alice.Send(t.Context(), "bob", []byte(fmt.Sprint("ping ", i)))
			if err != nil || res.Path != want {
				t.Fatalf("send: %+v %v", res, err)
			}
			bob.ev.message(res.ID)
			back, err := bob.Send(t.Context(), "alice", []byte(fmt.Sprint("pong ", i)))
			if err != nil {
				t.Fatal(err)
			}
			alice.ev.message(back.ID)
			rtts = append(rtts, time.Since(start))
		}
		slices.Sort(rtts)
		t.Logf("%-7s echo round trip (send, receive, answer, receive): p50 %v p95 %v p99 %v",
			want, rtts[len(rtts)/2].Round(time.Microsecond), rtts[len(rtts)*95/100].Round(time.Microsecond), rtts[len(rtts)*99/100].Round(time.Microsecond))
	}
}
