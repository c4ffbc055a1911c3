package natsbus

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// BenchmarkPublish publishes 200-byte events on one node to users
// subscribed on another, from parallel goroutines, and waits until every
// event arrived: the bus's throughput between two nodes through the NATS
// server on this machine.
func BenchmarkPublish(b *testing.B) {
	s := newSpace(b, sharedURL(b))
	sub, pub := s.open(b, Config{}), s.open(b, Config{})
	const users = 1000
	ids := make([]natter.UserID, users)
	var got atomic.Int64
	for i := range ids {
		ids[i] = natter.UserID(fmt.Sprintf("user%04d", i))
		if _, err := sub.Bus().Subscribe(ids[i], func([]byte) { got.Add(1) }); err != nil {
			b.Fatal(err)
		}
	}
	event := make([]byte, 200)
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := pub.Bus().Publish(context.Background(), ids[next.Add(1)%users], event); err != nil {
				b.Error(err)
				return
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for got.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if n := got.Load(); n < int64(b.N) {
		b.Fatalf("%d of %d events arrived", n, b.N)
	}
}

// BenchmarkRegistry times the registry's operations, one at a time (each
// is a NATS round trip, or two): Sessions of a user with two devices, and
// a session's Put then Delete.
func BenchmarkRegistry(b *testing.B) {
	s := newSpace(b, sharedURL(b))
	reg := s.open(b, Config{}).Registry()
	ctx := context.Background()
	since := time.Now()
	for _, d := range []natter.DeviceID{"laptop", "phone"} {
		if err := reg.Put(ctx, natter.LiveSession{User: "alice", Device: d, Conn: "c", Status: natter.StatusOnline, Since: since}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Sessions", func(b *testing.B) {
		for b.Loop() {
			if _, err := reg.Sessions(ctx, "alice"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PutDelete", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			conn := fmt.Sprint(i)
			if err := reg.Put(ctx, natter.LiveSession{User: "bob", Device: "d", Conn: conn, Since: since}); err != nil {
				b.Fatal(err)
			}
			if ok, err := reg.Delete(ctx, "bob", "d", conn); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkLatency sends one 200-byte event at a time from one node to a
// subscriber on another and reports the time from Publish to delivery
// (p50, p99): the bus's latency through the NATS server, unloaded.
func BenchmarkLatency(b *testing.B) {
	s := newSpace(b, sharedURL(b))
	sub, pub := s.open(b, Config{}), s.open(b, Config{})
	arrived := make(chan time.Time, 1)
	if _, err := sub.Bus().Subscribe("alice", func([]byte) { arrived <- time.Now() }); err != nil {
		b.Fatal(err)
	}
	event := make([]byte, 200)
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := pub.Bus().Publish(context.Background(), "alice", event); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-arrived).Sub(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
