package sqlite

import (
	"fmt"
	"path/filepath"
	"runtime"
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
