package pgstore

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/natterim/natter"
)

// BenchmarkAppendMessage measures AppendMessage on the PostgreSQL of this
// machine, from 1, 16 and 64 concurrent senders (each in its own
// conversation among 16 users, so inboxes overlap as on a server), one
// store with a pool of DefaultMaxConns connections. Every append is its own
// transaction with synchronous_commit on; concurrent ones share WAL flushes
// through PostgreSQL's group commit. wal_syncs/op is the WAL fsyncs of the
// whole server (pg_stat_wal, read once the store's backends have exited and
// reported) per append: below 1 when commits share flushes. It counts
// every other client of the server too, so run it on a quiet one.
//
//	go test -run '^$' -bench AppendMessage -benchtime 5s ./internal/pgstore/
func BenchmarkAppendMessage(b *testing.B) {
	for _, senders := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			cfg, schema := newSchema(b)
			ctx := b.Context()
			s, err := OpenConfig(ctx, cfg.Copy(), Options{MaxConns: DefaultMaxConns})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const nUsers = 16
			users := make([]natter.UserID, nUsers)
			for i := range users {
				users[i] = natter.UserID(fmt.Sprintf("user%02d", i))
				if err := s.CreateUser(ctx, users[i], "hash", at(i)); err != nil {
					b.Fatal(err)
				}
			}
			body := make([]byte, 200) // a short text message, sealed
			for i := range body {
				body[i] = byte(i * 7)
			}
			syncs0 := walSyncs(b)
			b.SetParallelism((senders + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			var next atomic.Int64
			b.ResetTimer()
			run := func(g int, more func() bool) {
				from, to := users[g%nUsers], users[(g+1+g/nUsers)%nUsers]
				if from == to {
					to = users[(g+1)%nUsers]
				}
				for i := 0; more(); i++ {
					_, err := s.AppendMessage(ctx, natter.Message{
						ID: natter.MessageID(fmt.Sprintf("m%d-%d", g, i)), From: from, FromDevice: "phone", To: to,
						Body: body, SentAt: at(i),
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			}
			if senders == 1 {
				run(0, func() bool { return next.Add(1) <= int64(b.N) })
			} else {
				b.RunParallel(func(pb *testing.PB) { run(int(next.Add(1)), pb.Next) })
			}
			b.StopTimer()
			s.Close()
			waitGone(b, schema)
			if syncs0 >= 0 {
				b.ReportMetric(float64(walSyncs(b)-syncs0)/float64(b.N), "wal_syncs/op")
			}
		})
	}
}

// walSyncs returns the server's WAL fsyncs so far (pg_stat_wal.wal_sync),
// or -1 if it cannot tell.
func walSyncs(b *testing.B) int64 {
	conn, err := pgx.Connect(b.Context(), testURL())
	if err != nil {
		return -1
	}
	defer conn.Close(context.WithoutCancel(b.Context()))
	var n int64
	if err := conn.QueryRow(b.Context(), `SELECT wal_sync FROM pg_stat_wal`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// waitGone waits until no backend named app is left: a backend reports its
// statistics as it exits.
func waitGone(b *testing.B, app string) {
	conn, err := pgx.Connect(b.Context(), testURL())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(b.Context()))
	// pg_terminate_backend with a timeout waits for each to exit; the
	// store closed them already, so this only waits for the exits.
	if _, err := conn.Exec(b.Context(),
		`SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = $1`, app); err != nil {
		b.Fatal(err)
	}
}
