// Package pgstore is natter's Store on PostgreSQL (through pgx), the store
// that several natterd nodes share: every node opens the same database (and
// schema) and sees every other node's writes.
//
// # Durability and group commit
//
// Every write is one transaction, committed before the method returns, on a
// connection with synchronous_commit on: an acknowledged write is on the
// database server's disk. Concurrent writes share WAL flushes in two ways.
// PostgreSQL's own group commit: each write runs on its own pooled
// connection, and a backend that flushes the WAL flushes every commit record
// written before it. That does not help writes of one user, which hold the
// user's row lock until their commit (below) and so commit one after the
// other, a flush each. So AppendMessage, the write every send waits for,
// and AppendReceipt also batch within a node (appender.go): two workers
// each take every append queued at that moment and run them as one
// pipeline, one transaction and one commit (BenchmarkAppendMessage: with 64 senders among
// 16 users, 0.07 WAL flushes per message instead of 0.7). Other writes are
// rarer and run one transaction each.
//
// # Concurrency across nodes
//
// Sequence numbers are counters in rows (users.inbox_seq,
// conversations.last_seq), incremented in the writing transaction under the
// row's lock, so two nodes never hand out the same number and a rolled-back
// write hands out none. A write first locks the rows of the users it
// changes, in name order (locks.go), which also serialises idempotency
// checks and quota checks per user. A deadlock or serialisation failure
// that PostgreSQL reports anyway is retried: the transaction never
// committed.
//
// # Errors
//
// A database that cannot be reached, a connection lost, a server shutting
// down, out of disk or connections, or read-only, yields errors wrapping
// natter.ErrStoreUnavailable (errors.go). The pool (pgxpool) opens new
// connections as needed, so the store works again as soon as the database
// does. A write whose connection was lost before it sent COMMIT is retried
// on another connection (it never committed); one lost during COMMIT is
// reported as unavailable, since it may or may not have committed.
//
// # Schema
//
// The schema lives in migrations/*.sql, embedded and applied by Open in one
// transaction under an advisory lock (migrate.go), so that nodes starting
// at once apply each migration once. Tables go to the first schema of the
// connection's search_path (a search_path parameter in the URL chooses it).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/natterim/natter"
)

// DefaultMaxConns is the pool size when Options.MaxConns is zero: how many
// statements (and commits) one node runs at once. PostgreSQL's
// max_connections (100 by default) is shared by every node.
const DefaultMaxConns = 16

// commitTimeout bounds a COMMIT once sent. It runs without the caller's
// context: a caller that gives up while its COMMIT is in flight must not
// be told the write failed when it may have committed.
const commitTimeout = 30 * time.Second

// maxDeadlockTries bounds how often one write is tried when PostgreSQL
// chose it as a deadlock victim (or it failed to serialise).
const maxDeadlockTries = 4

// Options tunes a Store. The zero value is the configuration to use in
// production.
type Options struct {
	// MaxConns is the pool's size. Zero means the URL's pool_max_conns
	// if it has one, else DefaultMaxConns (Open), or the configuration's
	// MaxConns (OpenConfig).
	MaxConns int
	// Logger receives the store's logs (migrations applied, retries).
	// Nil discards them.
	Logger *slog.Logger
	// Metrics, if not nil, registers the pool's metrics
	// (natter_pg_pool_*).
	Metrics prometheus.Registerer
}

// Store is a natter.Store on PostgreSQL. Its methods are safe for concurrent
// use, and several Stores (on several nodes) may share one database. Create
// it with Open and release it with Close.
type Store struct {
	pool     *pgxpool.Pool
	maxConns int // the pool's size
	log      *slog.Logger

	// mu orders Close after the operations in flight: each holds it
	// shared while it runs, Close exclusively to set closed.
	mu     sync.RWMutex
	closed bool

	appends   chan *appendReq // AppendMessage's queue (appender.go)
	appenders sync.WaitGroup  // its workers
}

var _ natter.Store = (*Store)(nil)

// Open connects to the database named by url (a postgres:// URL or a
// key=value connection string; see pgxpool.ParseConfig), brings its schema
// up to date and returns the store. ctx bounds the opening and the
// migrations only. A database that cannot be reached yields an error
// wrapping natter.ErrStoreUnavailable.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err) // the error names no password: pgconn redacts it
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	return OpenConfig(ctx, cfg, opts)
}

// OpenConfig is Open with a parsed pool configuration, for callers that set
// connection parameters in code (tests set search_path). It sets
// synchronous_commit to on for every connection, whatever the server's
// default, and opts.MaxConns if set.
func OpenConfig(ctx context.Context, cfg *pgxpool.Config, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = int32(opts.MaxConns)
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	// An acknowledged write must be on disk: never trust the server's or
	// the role's default.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "natterd"
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, wrap("open", err)
	}
	s := &Store{pool: pool, maxConns: int(cfg.MaxConns), log: log}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, wrap("migrate", err)
	}
	if opts.Metrics != nil {
		if err := registerMetrics(opts.Metrics, pool); err != nil {
			pool.Close()
			return nil, fmt.Errorf("pgstore: metrics: %w", err)
		}
	}
	s.startAppender()
	return s, nil
}

// Close stops taking operations, waits for those in flight, then closes
// the pool. Closing twice is not an error.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.stopAppender()
	s.pool.Close()
	return nil
}

// querier is what the statements of one operation run on: a transaction,
// or a pooled connection for a read that needs none.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// writeTx and readTx are the transactions of writes and of reads whose
// statements must agree with each other.
var (
	writeTx = pgx.TxOptions{}
	readTx  = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
)

// write runs fn in a read-write transaction and commits it; see run.
func (s *Store) write(ctx context.Context, op string, fn func(ctx context.Context, q querier) error) error {
	return s.run(ctx, op, &writeTx, fn)
}

// read runs fn on a pooled connection, outside any explicit transaction;
// see run.
func (s *Store) read(ctx context.Context, op string, fn func(ctx context.Context, q querier) error) error {
	return s.run(ctx, op, nil, fn)
}

// run runs fn once, in a transaction with options txo (committed if fn
// returns nil) or, with txo nil, on a plain pooled connection. op names
// the operation in errors. fn may run more than once: when the connection
// was lost before COMMIT was sent, or PostgreSQL chose the transaction as a
// deadlock victim (it never committed), run tries again: up to the pool's
// size plus one times for lost connections (every connection of the pool
// may have been cut at once, by a database restart, and each failed try
// discards one), maxDeadlockTries for deadlocks. So fn must set its
// results afresh on every run.
func (s *Store) run(ctx context.Context, op string, txo *pgx.TxOptions, fn func(ctx context.Context, q querier) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("pgstore: %s: %w", op, natter.ErrClosed)
	}
	maxLost := s.maxConns + 1
	var err error
	for lostN, deadlocks := 0, 0; ; {
		var again bool
		again, err = s.attempt(ctx, txo, fn)
		if err == nil || !again || ctx.Err() != nil {
			break
		}
		if errors.Is(err, natter.ErrStoreUnavailable) {
			lostN++
		} else {
			deadlocks++
		}
		if lostN == maxLost || deadlocks == maxDeadlockTries {
			break
		}
		s.log.Debug("trying again", "op", op, "err", err)
	}
	return wrap(op, err)
}

// attempt is one try of run. again reports whether err left nothing
// committed and may pass if tried again. An error that came with the loss
// of the connection wraps natter.ErrStoreUnavailable, whatever pgx made of
// it.
func (s *Store) attempt(ctx context.Context, txo *pgx.TxOptions, fn func(ctx context.Context, q querier) error) (again bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, err // a connection could not be made: nothing to retry on
	}
	defer conn.Release()
	if txo == nil {
		if err := fn(ctx, conn); err != nil {
			return lostWith(conn.Conn(), err)
		}
		return false, nil
	}
	tx, err := conn.BeginTx(ctx, *txo)
	if err != nil {
		return lostWith(conn.Conn(), err)
	}
	if err := fn(ctx, tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		if again, err := lostWith(conn.Conn(), err); again {
			return true, err
		}
		return retryable(err), err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := tx.Commit(cctx); err != nil {
		_, err = lostWith(conn.Conn(), err)
		return false, err // it may have committed: not to be tried again
	}
	return false, nil
}

// lostWith returns err, wrapping natter.ErrStoreUnavailable if conn was
// lost with it (the server ended it, the network failed), and reports
// whether it was: then whatever conn was running before COMMIT did not
// commit.
func lostWith(conn *pgx.Conn, err error) (bool, error) {
	if !conn.IsClosed() || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false, err
	}
	if !errors.Is(err, natter.ErrStoreUnavailable) {
		err = fmt.Errorf("%w: connection lost: %w", natter.ErrStoreUnavailable, err)
	}
	return true, err
}
