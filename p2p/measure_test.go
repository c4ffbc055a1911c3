//go:build !js

// Native only: these tests make pion's own PeerConnections.

package p2p

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"
)

// TestMeasure reports connection set-up time, throughput and RTT on
// loopback, direct and through a TURN relay. It is slow, so it runs only
// with P2P_MEASURE=1 (and is best run without -race):
//
//	P2P_MEASURE=1 go test -run TestMeasure -v ./p2p
func TestMeasure(t *testing.T) {
	if os.Getenv("P2P_MEASURE") == "" {
		t.Skip("set P2P_MEASURE=1 to measure")
	}
	servers := startTURN(t)
	for _, mode := range []string{"direct", "relayed"} {
		t.Run(mode, func(t *testing.T) {
			n := newMemNet()
			edit := func(c *Config) {
				if mode == "relayed" {
					c.RelayOnly, c.ICEServers = true, servers
				}
			}
			a := n.newManager(t, "alice", "phone", edit)
			b := n.newManager(t, "bob", "laptop", edit)

			// Set-up: Dial until the data channel is open, 20 times.
			var setup []time.Duration
			for range 20 {
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ca, err := a.Dial(ctx, "bob", "laptop")
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				setup = append(setup, time.Since(start))
				cb := accept(t, b)
				ca.Close()
				waitDone(t, cb, time.Second)
			}
			slices.Sort(setup)
			t.Logf("%s: Dial to connected over 20 runs: p50 %v, p95 %v, max %v",
				mode, setup[len(setup)/2].Round(100*time.Microsecond), setup[len(setup)*95/100-1].Round(100*time.Microsecond), setup[len(setup)-1].Round(100*time.Microsecond))

			ca, cb := connect(t, a, b)
			if got := ca.Path(); got != Path(mode) {
				t.Fatalf("path %q", got)
			}
			for _, size := range []int{100, 1024, 16 << 10} {
				const dur = 2 * time.Second
				msg := make([]byte, size)
				start := time.Now()
				sent := 0
				recvd := make(chan int)
				stop := make(chan struct{})
				go func() {
					n := 0
					for {
						select {
						case <-cb.Messages():
							n++
						case <-stop:
							recvd <- n
							return
						}
					}
				}()
				for time.Since(start) < dur {
					for range 100 {
						if err := ca.Send(msg); err != nil {
							t.Fatal(err)
						}
						sent++
					}
				}
				// Wait for the queue to drain, then count.
				for ca.dc.BufferedAmount() > 0 && time.Since(start) < 3*dur {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond)
				elapsed := time.Since(start)
				close(stop)
				got := <-recvd
				t.Logf("%s: %5d-byte messages: %.0f msg/s, %.1f MB/s (%d sent, %d received)",
					mode, size, float64(got)/elapsed.Seconds(), float64(got*size)/elapsed.Seconds()/1e6, sent, got)
			}

			// RTT: ICE's measure (keepalives on an idle path), and an
			// application-level echo through the data channel.
			time.Sleep(1500 * time.Millisecond)
			go func() {
				for m := range cb.Messages() {
					cb.Send(m)
				}
			}()
			var echo []time.Duration
			for range 200 {
				start := time.Now()
				ca.Send([]byte("ping"))
				<-ca.Messages()
				echo = append(echo, time.Since(start))
			}
			slices.Sort(echo)
			t.Logf("%s: ICE RTT %v; echo over the channel p50 %v, p95 %v", mode, ca.RTT(), echo[len(echo)/2], echo[len(echo)*95/100])
		})
	}
}
