package natsbus

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
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

// BenchmarkRegistry times the registry's operations, one at a time:
// Sessions of a user with two devices, from the node's copy (no NATS round
// trip) and from the bucket (a round trip: the copy is cold, as after a
// reconnect), and a session's Put then Delete (two round trips each, a
// read and a compare-and-set).
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
	awaitCopy(b, reg, "alice's sessions", holds("alice", "c", "c"))
	b.Run("Sessions", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reg.Sessions(ctx, "alice"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SessionsCold", func(b *testing.B) {
		reg.copy.cool(reg.copy.generation())
		b.ReportAllocs()
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

// BenchmarkCopyMemory reports what the registry's copy holds per session:
// 10,000 users with one session each (status text, two candidates), as
// the watch decodes them, measured as the growth of the live heap.
func BenchmarkCopyMemory(b *testing.B) {
	const users = 10000
	for b.Loop() {
		c := newSessionCopy()
		gen := c.generation()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range users {
			user := natter.UserID(fmt.Sprintf("user%06d", i))
			v, err := json.Marshal(record{User: user, Sessions: []stored{{Owner: "node1-a1b2c3d4", Device: "laptop-1",
				Conn: fmt.Sprintf("c%08d", i), Node: "node1", Status: natter.StatusOnline, Text: "at my desk",
				Reach: []natter.Candidate{{Type: "host", Proto: "udp", Addr: "192.168.1.10:50000", Priority: 2130706431},
					{Type: "srflx", Proto: "udp", Addr: "203.0.113.7:50001"}},
				Since: time.Now().UTC()}}})
			if err != nil {
				b.Fatal(err)
			}
			c.applyLocal(gen, user, uint64(i+1), false, decodeRecord(v))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/users, "B/session")
		runtime.KeepAlive(c)
	}
}

// BenchmarkCopyLag puts a session on one node and waits until another
// node's copy has it, and reports the time from Put's return to then (p50,
// p99): how long two nodes may disagree about a session, through the NATS
// server on this machine, unloaded.
func BenchmarkCopyLag(b *testing.B) {
	s := newSpace(b, sharedURL(b))
	a, other := s.open(b, Config{}).Registry(), s.open(b, Config{}).Registry()
	ctx := context.Background()
	awaitCopy(b, other, "filled", caughtUp(0))
	var lag []time.Duration
	for i := 0; b.Loop(); i++ {
		conn := fmt.Sprint(i)
		if err := a.Put(ctx, natter.LiveSession{User: "alice", Device: "laptop", Conn: conn, Since: time.Now()}); err != nil {
			b.Fatal(err)
		}
		put := time.Now()
		awaitCopy(b, other, "the put", holds("alice", conn))
		lag = append(lag, time.Since(put))
	}
	slices.Sort(lag)
	b.ReportMetric(float64(lag[len(lag)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lag[len(lag)*99/100].Microseconds()), "p99-µs")
}
