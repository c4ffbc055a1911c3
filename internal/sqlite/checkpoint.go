package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"time"
)

// # Checkpoints
//
// In WAL mode every commit appends each page it changed to the WAL, and a
// checkpoint later copies the pages of the WAL back into the database file.
// SQLite's default, a checkpoint by the committing connection whenever the
// WAL holds 1,000 pages (4 MB), ran about twenty times a second under load:
// nearly every page a message touched was written twice (to the WAL, then to
// the file), and the batch that crossed the threshold waited for the copy.
//
// So the writer's connection has automatic checkpoints off, and a
// checkpointer goroutine on a connection of its own copies the WAL back every
// Options.CheckpointInterval. A page changed many times in that interval (a
// busy user's inbox page, the tail of the messages table) reaches the file
// once. The background checkpoint is PASSIVE: it never blocks the writer,
// which keeps appending while it runs, so it never catches up with the end of
// the WAL, and SQLite restarts the WAL from its beginning only once every
// frame has been copied. After each background checkpoint the writer
// therefore finishes the copy between two batches (the frames appended
// meanwhile: a fraction of the interval's) with a RESTART checkpoint, which
// also waits for the readers still reading older frames (reads are short) so
// that its next transaction starts the WAL over: with reads always running,
// a PASSIVE checkpoint alone let the WAL grow without bound (half a gigabyte
// in a minute of natter-bench). The WAL thus stays near one interval's worth
// of writes.
//
// Durability is unchanged: a commit is durable when its WAL frames are
// synced (synchronous=FULL), whether or not they have been checkpointed; a
// crash leaves the WAL for the next open to replay.

// DefaultCheckpointInterval is how often the WAL is copied back into the
// database file when Options.CheckpointInterval is zero.
const DefaultCheckpointInterval = 10 * time.Second

// checkpointer copies the WAL back into the database every interval on its
// own connection, then asks the writer to finish.
type checkpointer struct {
	db       *sql.DB // one connection, not read-only
	interval time.Duration
	stop     chan struct{}
	done     chan struct{}
	finish   chan<- struct{} // the writer's: finish the checkpoint
	log      *slog.Logger
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		var busy, frames, copied int64
		err := c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
		if err != nil {
			c.log.Warn("sqlite: background checkpoint failed", "err", err)
			continue
		}
		c.log.Debug("sqlite: background checkpoint", "busy", busy, "frames", frames, "copied", copied)
		select {
		case c.finish <- struct{}{}:
		default: // the writer has not finished the previous one yet
		}
	}
}

// close stops the checkpointer and closes its connection.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}

// finishCheckpoint copies what the WAL holds beyond the background
// checkpoint, between two batches, and waits for older readers, so that the
// next transaction starts the WAL over. Failure is only logged: the next
// round tries again.
func (w *writer) finishCheckpoint(ctx context.Context) {
	var busy, frames, copied int64
	if err := w.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &frames, &copied); err != nil {
		w.log.Warn("sqlite: checkpoint failed", "err", err)
		return
	}
	w.log.Debug("sqlite: checkpoint", "busy", busy, "frames", frames, "copied", copied)
	w.checkpoints.Add(1)
}
