package turnsrv

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRelay measures the relay between two TURN clients on this host:
// client A sends 1,000-byte datagrams from its allocation to B's relayed
// address, so each one crosses the server twice (A → server → A's relay
// socket → B's relay socket → server → B), as a relayed call does when
// both sides are behind NATs that defeat hole punching. At most window
// datagrams are in flight, so that loopback socket buffers do not
// overflow; a datagram not delivered within a short time counts as lost.
// It reports msgs/s and MB/s of payload delivered, and the loss.
func BenchmarkRelay(b *testing.B) {
	for _, window := range []int{1, 64} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) { benchRelay(b, 1000, window) })
	}
}

func benchRelay(b *testing.B, size, window int) {
	s := startServer(b, Config{Logger: quiet})
	ca, ra := allocate(b, s, "alice")
	cb, rb := allocate(b, s, "bob")
	if err := ca.CreatePermission(rb.LocalAddr()); err != nil {
		b.Fatal(err)
	}
	if err := cb.CreatePermission(ra.LocalAddr()); err != nil {
		b.Fatal(err)
	}

	var received atomic.Int64
	inFlight := make(chan struct{}, window) // a slot per datagram on its way
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2*size)
		for {
			rb.SetReadDeadline(time.Now().Add(time.Second))
			n, _, err := rb.ReadFrom(buf)
			if err != nil {
				return // closed, or nothing more is coming
			}
			if n == size {
				received.Add(1)
				select {
				case <-inFlight:
				default: // given up on as lost, then arrived
				}
			}
		}
	}()

	payload := make([]byte, size)
	send := func(n int) (lost int) {
		start := received.Load()
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		for range n {
			select {
			case inFlight <- struct{}{}:
			default:
				// The window is full: wait for a slot, or give the
				// oldest datagram up as lost.
				timer.Reset(50 * time.Millisecond)
				select {
				case inFlight <- struct{}{}:
				case <-timer.C:
					<-inFlight
					inFlight <- struct{}{}
				}
			}
			if _, err := ra.WriteTo(payload, rb.LocalAddr()); err != nil {
				b.Fatal(err)
			}
		}
		deadline := time.Now().Add(time.Second)
		for received.Load()-start < int64(n) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
		for len(inFlight) > 0 { // forget the lost ones
			<-inFlight
		}
		return n - int(received.Load()-start)
	}

	// Warm up: the channel bindings are made on first use; until then
	// pion sends Send and Data indications.
	send(200)
	time.Sleep(20 * time.Millisecond)

	before := received.Load()
	b.ResetTimer()
	start := time.Now()
	lost := send(b.N)
	elapsed := time.Since(start)
	b.StopTimer()
	got := received.Load() - before

	b.ReportMetric(float64(got)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(got)*float64(size)/elapsed.Seconds()/1e6, "MB/s")
	b.ReportMetric(100*float64(max(lost, 0))/float64(b.N), "loss%")
	ra.Close()
	rb.Close()
	<-done
}
