package sqlite

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// BenchmarkAppendMessage measures AppendMessage throughput from 64 concurrent
// senders on a real file, with group commit (one commit and fsync per batch)
// and without (one per message). Each sender writes to its own conversation
// among 16 users, so inboxes and conversations overlap as on a server.
//
//	go test -run '^$' -bench AppendMessage -benchtime 5s ./internal/sqlite/
func BenchmarkAppendMessage(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"group", Options{}},
		{"single", Options{NoGroupCommit: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := b.Context()
			db, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), bc.opts)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			const nUsers = 16
			users := make([]natter.UserID, nUsers)
			for i := range users {
				users[i] = natter.UserID(fmt.Sprintf("user%02d", i))
				if err := db.CreateUser(ctx, users[i], "hash", time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			body := make([]byte, 200) // a short text message, sealed
			for i := range body {
				body[i] = byte(i * 7)
			}
			const senders = 64
			b.SetParallelism((senders + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			var next atomic.Int64
			commits0, batched0 := db.w.commits.Load(), db.w.batched.Load()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				g := int(next.Add(1))
				from, to := users[g%nUsers], users[(g+1+g/nUsers)%nUsers]
				if from == to {
					to = users[(g+1)%nUsers]
				}
				for i := 0; pb.Next(); i++ {
					_, err := db.AppendMessage(ctx, natter.Message{
						ID: natter.MessageID(fmt.Sprintf("g%d-%d", g, i)), From: from, FromDevice: "bench", To: to,
						Body: body, SentAt: time.Now(),
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if commits := db.w.commits.Load() - commits0; commits > 0 {
				b.ReportMetric(float64(db.w.batched.Load()-batched0)/float64(commits), "writes/commit")
			}
		})
	}
}

// BenchmarkPacedAppend offers AppendMessage at a steady 2,000 messages a
// second among 1,000 users (as natter-bench's 2,000 msgs/s), for 12 s per
// iteration with the default checkpoint interval, and reports the latency
// of the writes: what a sender waits for its SendAck in the store, with
// the checkpoints that happen meanwhile. It measures the store's own tail,
// without natterd's network and without natter-bench's CPU.
//
//	go test -run '^$' -bench PacedAppend -benchtime 1x ./internal/sqlite/
func BenchmarkPacedAppend(b *testing.B) {
	ctx := b.Context()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const nUsers, rate = 1000, 2000
	users := make([]natter.UserID, nUsers)
	for i := range users {
		users[i] = natter.UserID(fmt.Sprintf("user%04d", i))
		if err := db.CreateUser(ctx, users[i], "hash", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	body := make([]byte, 600) // a 64-byte text, sealed
	for i := range body {
		body[i] = byte(i * 7)
	}
	var lat []time.Duration
	var mu sync.Mutex
	var n atomic.Int64
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		var wg sync.WaitGroup
		for tick := 0; tick < 12*rate; tick++ {
			time.Sleep(time.Until(start.Add(time.Duration(tick) * time.Second / rate)))
			i := int(n.Add(1))
			from, to := users[i%nUsers], users[(i*7919+1+i%10)%nUsers]
			if from == to {
				to = users[(i+1)%nUsers]
			}
			wg.Go(func() {
				t0 := time.Now()
				_, err := db.AppendMessage(ctx, natter.Message{ID: natter.MessageID(fmt.Sprintf("m%d", i)),
					From: from, FromDevice: "bench", To: to, Body: body, SentAt: t0})
				d := time.Since(t0)
				if err != nil {
					b.Error(err)
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(0.999), "p99.9-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
}
