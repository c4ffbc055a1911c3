package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/natterim/natter"
)

// writeFunc is one write request's work. It runs on the writer's connection
// inside a transaction (and a savepoint) and must do all of its writing
// through w. It may run more than once (see writer.oneByOne), so it must not
// have effects outside the database other than setting its results.
type writeFunc func(ctx context.Context, w *writer) error

// The states of a request: queued until the writer takes it into a batch
// (started) or its caller gives up waiting (withdrawn), whichever comes first.
const (
	queued int32 = iota
	started
	withdrawn
)

// request is one write waiting for the writer.
type request struct {
	fn     writeFunc
	state  atomic.Int32
	done   chan error // buffered; receives fn's outcome after the commit
	queued time.Time  // when it was handed to the writer
}

// writer owns the one write connection. It runs batches of requests, each
// batch in one transaction with one commit (see the package doc).
type writer struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt // prepared on first use; only run touches it
	// inboxSeq and convs are the sequence counters (see counters.go);
	// only run touches them.
	inboxSeq map[natter.UserID]int64
	convs    map[convKey]convCounter
	reqs     chan *request
	maxBatch int
	log      *slog.Logger
	met      *metrics
	done     chan struct{} // closed when run returns

	// pause receives the checkpointer's requests to pause between two
	// batches until the channel received is closed (see checkpoint.go).
	pause chan chan struct{}

	// commits and batched count successful batch commits and the
	// requests they held, for the benchmarks' writes/commit figure.
	commits, batched atomic.Int64
}

func newWriter(conn *sql.Conn, maxBatch int, log *slog.Logger, met *metrics) *writer {
	return &writer{
		met:      met,
		conn:     conn,
		stmts:    make(map[string]*sql.Stmt),
		inboxSeq: make(map[natter.UserID]int64),
		convs:    make(map[convKey]convCounter),
		reqs:     make(chan *request, maxBatch),
		maxBatch: maxBatch,
		log:      log,
		done:     make(chan struct{}),
		pause:    make(chan chan struct{}),
	}
}

// run takes requests until reqs is closed and drained. Each turn it takes the
// first request, blocking, and then every request already queued up to
// maxBatch, without waiting for more: under light load a write commits alone
// and at once; under heavy load the requests that queued up during one commit
// form the next batch.
func (w *writer) run() {
	defer close(w.done)
	// The writer's statements are not bound to any caller's context: once a
	// request is in a batch it completes (see DB.write).
	ctx := context.Background()
	batch := make([]*request, 0, w.maxBatch)
	for {
		var r *request
		var ok bool
		select {
		case r, ok = <-w.reqs:
		case resume := <-w.pause:
			<-resume // the checkpointer's last round
			continue
		}
		if !ok {
			return
		}
		batch = append(batch[:0], r)
	fill:
		for len(batch) < w.maxBatch {
			select {
			case r, ok := <-w.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.runBatch(ctx, batch)
		clear(batch) // drop references to answered requests
	}
}

// runBatch runs every request of batch that its caller has not withdrawn in
// one transaction, each in a savepoint, commits, and answers each caller.
//
// A request that fails with a domain error or a constraint violation is
// rolled back to its savepoint; the others go on. Any other SQLite error
// (disk full, I/O error, ...) may have rolled back the whole transaction, so
// the batch is abandoned and its requests are run again one by one, each in
// its own transaction: the failure then reaches only the requests it affects.
func (w *writer) runBatch(ctx context.Context, batch []*request) {
	live := batch[:0:0]
	now := time.Now()
	for _, r := range batch {
		if r.state.CompareAndSwap(queued, started) {
			live = append(live, r)
			w.met.wait.Observe(seconds(now.Sub(r.queued)))
		}
	}
	if len(live) == 0 {
		return
	}
	start := time.Now()
	defer func() {
		d := time.Since(start)
		w.met.batch.Observe(seconds(d))
		w.met.writes.Observe(float64(len(live)))
		if d >= slowBatch {
			w.log.Debug("sqlite: slow batch", "took", d, "writes", len(live))
		}
	}()
	if len(live) == 1 {
		// Alone in its batch (most batches below a few thousand writes a
		// second): its own transaction does what the savepoint would, two
		// statements fewer.
		err := w.runAlone(ctx, live[0])
		if err == nil {
			w.commits.Add(1)
			w.batched.Add(1)
		}
		live[0].done <- err
		return
	}
	if err := w.exec1(ctx, "BEGIN IMMEDIATE"); err != nil {
		err = fmt.Errorf("begin: %w", err)
		w.log.Error("sqlite: cannot begin a write transaction", "err", err, "writes", len(live))
		for _, r := range live {
			r.done <- err
		}
		return
	}
	errs := make([]error, len(live))
	for i, r := range live {
		if err := w.exec1(ctx, "SAVEPOINT req"); err != nil {
			w.abandon(ctx, live, err)
			return
		}
		err := w.call(ctx, r)
		if err != nil && txFatal(err) {
			w.abandon(ctx, live, err)
			return
		}
		if err != nil {
			errs[i] = err
			w.forget()
			if err := w.exec1(ctx, "ROLLBACK TO req"); err != nil {
				w.abandon(ctx, live, err)
				return
			}
		}
		if err := w.exec1(ctx, "RELEASE req"); err != nil {
			w.abandon(ctx, live, err)
			return
		}
	}
	if err := w.commit(ctx); err != nil {
		w.rollback(ctx)
		err = fmt.Errorf("commit: %w", err)
		w.log.Error("sqlite: commit failed; no write of the batch was stored", "err", err, "writes", len(live))
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	} else {
		w.commits.Add(1)
		w.batched.Add(int64(len(live)))
	}
	for i, r := range live {
		r.done <- errs[i]
	}
}

// abandon rolls back a batch whose transaction an error may have ended and
// runs its requests again one by one.
func (w *writer) abandon(ctx context.Context, live []*request, cause error) {
	w.rollback(ctx)
	if len(live) == 1 {
		live[0].done <- cause
		return
	}
	w.log.Warn("sqlite: batch failed; retrying its writes one by one", "err", cause, "writes", len(live))
	w.oneByOne(ctx, live)
}

// oneByOne runs each request in its own transaction and answers it.
func (w *writer) oneByOne(ctx context.Context, live []*request) {
	for _, r := range live {
		r.done <- w.runAlone(ctx, r)
	}
}

func (w *writer) runAlone(ctx context.Context, r *request) error {
	if err := w.exec1(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := w.call(ctx, r); err != nil {
		w.rollback(ctx)
		return err
	}
	if err := w.commit(ctx); err != nil {
		w.rollback(ctx)
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// slowBatch is the batch time above which the writer logs the batch (at
// debug level), to line up slow batches with what else happened.
const slowBatch = 20 * time.Millisecond

// commit commits the transaction and times it.
func (w *writer) commit(ctx context.Context) error {
	start := time.Now()
	err := w.exec1(ctx, "COMMIT")
	w.met.commit.Observe(seconds(time.Since(start)))
	return err
}

// call runs r's work. A panic (a bug) fails that request and, through
// txFatal, makes its batch start over without it, instead of killing the
// writer and with it every other caller.
func (w *writer) call(ctx context.Context, r *request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("sqlite: panic in a write", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", errPanicked, p)
		}
	}()
	return r.fn(ctx, w)
}

// rollback ends the transaction, if SQLite has not already done so.
func (w *writer) rollback(ctx context.Context) {
	w.forget()
	if _, err := w.conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		// "no transaction is active" after SQLite rolled back by itself.
		w.log.Debug("sqlite: rollback", "err", err)
	}
}

// stmt returns the prepared statement for query, preparing it on first use.
func (w *writer) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := w.stmts[query]; ok {
		return s, nil
	}
	s, err := w.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	w.stmts[query] = s
	return s, nil
}

// exec runs a statement on the write connection.
func (w *writer) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := w.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// exec1 runs a statement whose result does not matter.
func (w *writer) exec1(ctx context.Context, query string, args ...any) error {
	_, err := w.exec(ctx, query, args...)
	return err
}

// queryRow runs a query that returns at most one row on the write connection.
// Preparation errors surface from Scan.
func (w *writer) queryRow(ctx context.Context, query string, args ...any) *row {
	s, err := w.stmt(ctx, query)
	if err != nil {
		return &row{err: err}
	}
	return &row{row: s.QueryRowContext(ctx, args...)}
}

// row is a *sql.Row that may carry a preparation error instead.
type row struct {
	row *sql.Row
	err error
}

// Scan is sql.Row.Scan, or the preparation error.
func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.row.Scan(dest...)
}

// close releases the prepared statements and the connection. Call it only
// after run has returned.
func (w *writer) close() error {
	var errs []error
	for _, s := range w.stmts {
		errs = append(errs, s.Close())
	}
	errs = append(errs, w.conn.Close())
	return errors.Join(errs...)
}
