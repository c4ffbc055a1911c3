package sqlite

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/natterim/natter"
)

// TestWALStartsOver writes without pause while readers read without pause,
// with checkpoints every 20 ms, and checks that the WAL keeps starting over
// and that the metrics say what the writer and the checkpointer did.
func TestWALStartsOver(t *testing.T) {
	ctx := t.Context()
	reg := prometheus.NewRegistry()
	db := openTemp(t, Options{CheckpointInterval: 20 * time.Millisecond, Metrics: reg})
	defer db.Close()
	users := []natter.UserID{"alice", "bob", "carol", "dave"}
	for _, u := range users {
		if err := db.CreateUser(ctx, u, "hash", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.Inbox(ctx, users[(r+i)%len(users)], 0, 50); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	body := make([]byte, 600)
	// Until the WAL has started over a few times (a busy machine makes
	// that slower, not different), for at most 30 s.
	deadline := time.Now().Add(30 * time.Second)
	var sent atomic.Int64
	enough := func() bool { return db.ckpt.restarts.Load() >= 5 && sent.Load() >= 500 }
	for g := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline) && !enough(); i++ {
				from, to := users[g%len(users)], users[(g+1+i)%len(users)]
				if from == to {
					continue
				}
				_, err := db.AppendMessage(ctx, natter.Message{ID: natter.MessageID(fmt.Sprintf("m%d-%d", g, i)),
					From: from, FromDevice: "d", To: to, Body: body, SentAt: time.Now()})
				if err != nil {
					t.Error(err)
					return
				}
				sent.Add(1)
			}
		})
	}
	go func() {
		for time.Now().Before(deadline) && !enough() {
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
	}()
	wg.Wait()
	var msgs int
	if err := db.rdb.QueryRowContext(ctx, "SELECT count(*) FROM messages").Scan(&msgs); err != nil {
		t.Fatal(err)
	}
	written := msgs * 5 // pages a message changes, at least
	fi, err := os.Stat(db.path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	frames := fi.Size() / (PageSize + 24)
	restarts := db.ckpt.restarts.Load()
	t.Logf("%d messages (≥ %d pages written), WAL file %d frames, %v last rounds with the writer paused, %v copied all",
		msgs, written, frames, db.ckpt.finals.Load(), restarts)
	// Readers that never pause hold old snapshots at times, so not every
	// round starts the WAL over; some must.
	if restarts < 5 {
		t.Errorf("%d checkpoints copied the whole WAL back: it hardly ever starts over", restarts)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	samples := map[string]uint64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			samples[mf.GetName()] += m.GetHistogram().GetSampleCount()
		}
	}
	for _, name := range []string{"natter_store_batch_seconds", "natter_store_commit_seconds", "natter_store_checkpoint_seconds"} {
		if samples[name] == 0 {
			t.Errorf("metric %s: nothing observed (%v)", name, samples)
		}
	}
}
