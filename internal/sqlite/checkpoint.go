package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"sync/atomic"
	"time"
)

// # Checkpoints
//
// In WAL mode every commit appends each page it changed to the WAL, and a
// checkpoint later copies the pages of the WAL back into the database file.
// SQLite's default, a checkpoint by the committing connection whenever the
// WAL holds 1,000 pages, ran about twenty times a second under load: nearly
// every page a message touched was written twice (to the WAL, then to the
// file), and the batch that crossed the threshold waited for the copy.
//
// So the writer's connection has automatic checkpoints off, and a
// checkpointer goroutine on a connection of its own copies the WAL back
// every Options.CheckpointInterval. A page changed many times in that
// interval (a busy user's inbox page, the tail of the messages table)
// reaches the file once. Its checkpoints are PASSIVE: they never block the
// writer, which keeps appending meanwhile, so they never reach the end of
// the WAL by themselves. And SQLite starts the WAL over from its beginning
// only when a write transaction begins with every frame copied back (and no
// reader still reading frames): without that the WAL grew without bound
// (half a gigabyte in a minute of natter-bench).
//
// The checkpointer therefore copies in rounds, each copying what the writer
// appended during the previous one, until a round is short (shortRound):
// what is left is then a few milliseconds of writes (if the rounds never
// get short, on a busy machine, it tries again at the next interval; the
// WAL is longer meanwhile). It then pauses the writer between two batches
// and runs a last PASSIVE round while nothing is appended: it copies those
// last pages (a few hundred: a few milliseconds, the fsync of the database
// file included), and the writer's next transaction starts the WAL over.
// No step waits for readers: a reader still reading old frames only means
// that this round does not restart the WAL, and the next one will. Only if
// that keeps happening and the WAL outgrows Options.MaxWALFrames is the
// last round a RESTART checkpoint, which waits for those readers, for at
// most restartWait. The last round is cut short after finalWait (SQLite
// stops copying and the writer goes on; the next interval tries again),
// again unless the WAL is over its bound.
//
// An earlier version had the writer run a RESTART checkpoint on its own
// connection after every background one: it copied everything appended
// since the background checkpoint had started (up to half a second of
// writes) and then waited for readers, with the writer stopped for 75-300
// ms every 10 s; p99 delivery latency at 2,000 msgs/s was 105-1,455 ms.
// Then the writer ran the last PASSIVE round itself, on its own connection;
// pausing it and using the checkpointer's connection instead does the same
// work with the writer's connection left alone. Either way, in natterd
// under natter-bench the last round took 20-350 ms for a few hundred frames
// at times (3-6 ms in isolation): its fsyncs, which on ext4 wait for the
// other processes' pending writes, and which the 20 ms cut cannot stop.
//
// Durability is unchanged: a commit is durable when its WAL frames are
// synced (synchronous=FULL), whether or not they have been checkpointed; a
// checkpoint syncs the database file before the WAL can start over; a crash
// leaves the WAL for the next open to replay.

// DefaultCheckpointInterval is how often the WAL is copied back into the
// database file when Options.CheckpointInterval is zero. Longer intervals
// write a page changed many times in them once (fewer bytes written per
// message: natter-bench at 2,000 msgs/s wrote 13-18 KiB per message with
// 10 s, 21-27 KiB with 2 s) but make each background copy larger and the
// WAL longer (about 200 MB at 10 s there). The writer pauses only for the
// last round, whatever the interval.
const DefaultCheckpointInterval = 10 * time.Second

// DefaultMaxWALFrames is Options.MaxWALFrames when zero: 256 Ki frames
// (256 MiB with 1 KiB pages).
const DefaultMaxWALFrames = 256 << 10

const (
	// shortRound is how short a background round must be for the writer
	// to finish after it: the writer copies what was appended meanwhile.
	shortRound = 25 * time.Millisecond
	// maxRounds bounds the background rounds of one checkpoint.
	maxRounds = 8
	// finalWait bounds the last round, during which the writer is paused
	// (a few milliseconds normally; on a starved machine a copy of a few
	// hundred pages took up to 750 ms), unless the WAL is over its bound.
	finalWait = 20 * time.Millisecond
	// restartWait bounds the wait for readers in a RESTART checkpoint:
	// the busy timeout of the checkpointer's connection.
	restartWait = 50 * time.Millisecond
)

// checkpointer copies the WAL back into the database every interval on its
// own connection, pausing the writer for its last round.
type checkpointer struct {
	db       *sql.DB // one connection, not read-only
	interval time.Duration
	stop     chan struct{}
	done     chan struct{}
	// pause is the writer's: sending it a channel pauses the writer
	// (between two batches) until that channel is closed.
	pause  chan<- chan struct{}
	maxWAL int // Options.MaxWALFrames
	log    *slog.Logger
	met    *metrics
	// finals and restarts count the last rounds and those that copied
	// the whole WAL back (it starts over), for tests.
	finals, restarts atomic.Int64
}

// ckptResult is what PRAGMA wal_checkpoint answers.
type ckptResult struct {
	busy   bool  // could not copy everything (readers, or another checkpoint)
	frames int64 // frames in the WAL
	copied int64 // frames copied back, in all
	took   time.Duration
}

// done reports whether every frame of the WAL has been copied back.
func (r ckptResult) done() bool { return !r.busy && r.frames == r.copied }

// checkpoint runs PRAGMA wal_checkpoint(mode) and records it as kind's.
func (c *checkpointer) checkpoint(ctx context.Context, mode, kind string) (ckptResult, error) {
	var r ckptResult
	var busy int
	start := time.Now()
	err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &r.frames, &r.copied)
	r.took = time.Since(start)
	r.busy = busy != 0
	c.met.checkpoint.WithLabelValues(kind).Observe(seconds(r.took))
	switch {
	case err == nil:
		c.met.walFrames.Set(float64(r.frames))
	case ctx.Err() == nil:
		c.log.Warn("sqlite: checkpoint failed", "kind", kind, "err", err)
	}
	c.log.Debug("sqlite: checkpoint", "kind", kind, "busy", r.busy, "frames", r.frames, "copied", r.copied, "took", r.took, "err", err)
	return r, err
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	ctx := context.Background()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		var r ckptResult
		var err error
		for round := 1; round <= maxRounds; round++ {
			if r, err = c.checkpoint(ctx, "PASSIVE", "background"); err != nil || r.took <= shortRound {
				break
			}
			// Copy what was appended meanwhile.
		}
		// The last round pauses the writer: only for a short remainder,
		// unless the WAL is over its bound. Rather than stop the writer
		// for what the rounds could not catch up with (the machine is
		// busy), wait for the next interval.
		if err != nil || r.took > shortRound && r.frames <= int64(c.maxWAL) {
			continue
		}
		if !c.final(ctx, r.frames > int64(c.maxWAL)) {
			return
		}
	}
}

// final pauses the writer and copies what is left; with restart, it waits
// briefly for readers of old frames (a RESTART checkpoint). It returns
// false if the checkpointer was stopped meanwhile.
func (c *checkpointer) final(ctx context.Context, restart bool) bool {
	resume := make(chan struct{})
	select {
	case c.pause <- resume:
	case <-c.stop:
		return false
	}
	defer close(resume)
	mode := "PASSIVE"
	if restart {
		mode = "RESTART" // its connection's busy timeout is restartWait
	} else {
		// The writer waits for this: give up past finalWait (SQLite
		// stops the copy; a later checkpoint does it again).
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, finalWait)
		defer cancel()
	}
	r, err := c.checkpoint(ctx, mode, "final")
	if err != nil {
		if ctx.Err() != nil {
			c.met.finalsCut.Inc()
		}
		return true
	}
	if restart {
		c.log.Info("sqlite: WAL over its bound: RESTART checkpoint", "busy", r.busy, "frames", r.frames, "copied", r.copied, "took", r.took)
	}
	c.finals.Add(1)
	if r.done() {
		c.met.restarts.Inc()
		c.restarts.Add(1)
	}
	return true
}

// close stops the checkpointer and closes its connection.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
