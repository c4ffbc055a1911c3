// Package sqlite is natter's embedded default Store: one SQLite database file
// (through the pure-Go driver modernc.org/sqlite), in WAL mode with
// synchronous=FULL, so that every acknowledged write survives a crash of the
// process or of the machine.
//
// # Group commit
//
// An fsync per write caps a disk at a few hundred to a few thousand writes a
// second. So every write goes to one writer goroutine, which owns the only
// write connection. It takes every request queued at that moment (up to
// Options.MaxBatch), runs them in one transaction, each inside its own
// SAVEPOINT so that a request that fails leaves the others of its batch
// untouched, commits once and only then answers each caller. Many concurrent
// senders thus share one fsync, and nothing is acknowledged before it is on
// disk. Options.NoGroupCommit turns batching off (one transaction per write),
// which is only useful to measure what batching buys (see bench_test.go).
//
// Reads use a separate pool of read-only connections: WAL lets them run
// concurrently with the writer, and they see every write that has been
// acknowledged.
//
// # Errors
//
// SQLite conditions that mean the store cannot write now (disk full, read-only
// file or file system, I/O error, cannot open, locked by another process
// beyond the busy timeout, corruption) are returned wrapping
// natter.ErrStoreUnavailable. Domain outcomes wrap the natter sentinels
// (ErrUserExists, ErrNoSuchUser, ...). Everything else is wrapped with the
// operation it interrupted.
//
// # Schema
//
// The schema lives in migrations/*.sql, embedded in the binary and applied in
// file-name order by Open; PRAGMA user_version records how many have been
// applied. migrations/0001_init.sql explains the tables and their keys, and
// each later migration what it changes. Migrations are never edited once
// released: a database that has applied one does not apply it again.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/natterim/natter"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// DefaultMaxBatch is the number of queued writes that share one transaction
// when Options.MaxBatch is zero. Larger batches amortise the commit further
// but make every caller of a batch wait for all of it.
const DefaultMaxBatch = 256

// busyTimeoutMillis is how long a connection waits for a lock held by another
// connection or process before giving up with SQLITE_BUSY. natter's own
// connections never wait on each other for writes (there is one writer), so
// this only matters when another process (a backup, sqlite3 shell) holds the
// database.
const busyTimeoutMillis = 5000

// Options tunes a DB. The zero value is the configuration to use in
// production: group commit on, DefaultMaxBatch, logs discarded.
type Options struct {
	// NoGroupCommit makes every write its own transaction with its own
	// commit (and fsync), instead of sharing one commit with every write
	// queued at the same moment. It exists to measure what group commit buys.
	NoGroupCommit bool
	// MaxBatch bounds how many queued writes share one transaction. Zero
	// means DefaultMaxBatch. Ignored with NoGroupCommit.
	MaxBatch int
	// CheckpointInterval is how often the WAL is copied back into the
	// database file (see checkpoint.go). Zero means
	// DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// MaxWALFrames is the WAL size, in frames (pages), above which a
	// checkpoint waits briefly for readers still reading old frames so
	// that the WAL can start over (see checkpoint.go). Zero means
	// DefaultMaxWALFrames.
	MaxWALFrames int
	// Logger receives the store's logs (migrations applied, failed commits).
	// Nil discards them.
	Logger *slog.Logger
	// Metrics, if not nil, registers the store's metrics: the writer's
	// batch and commit times, checkpoint times and the WAL's size
	// (natter_store_*).
	Metrics prometheus.Registerer
}

// DB is a natter.Store in one SQLite database file. Its methods are safe for
// concurrent use. Create it with Open and release it with Close.
type DB struct {
	path string
	log  *slog.Logger
	wdb  *sql.DB // the one write connection, owned by w
	rdb  *sql.DB // read-only connections
	w    *writer
	ckpt *checkpointer

	contacts contactCache // ContactState's answers

	// mu orders Close after every write that is being queued: write holds
	// it shared while it hands a request to the writer, Close holds it
	// exclusively to set closed before it closes the queue.
	mu     sync.RWMutex
	closed atomic.Bool
}

var _ natter.Store = (*DB)(nil)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Open opens (creating it if need be) the database file at path, brings its
// schema up to date and starts the writer. ctx bounds the opening and the
// migrations only. path must name a file: SQLite's in-memory databases cannot
// be shared by the read and write connections.
//
// A database that cannot be opened or written for lack of space, permission
// or a working disk yields an error wrapping natter.ErrStoreUnavailable.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file::memory:") {
		return nil, fmt.Errorf("sqlite: open %q: need a file path, not an in-memory database", path)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxBatch := opts.MaxBatch
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	if opts.NoGroupCommit {
		maxBatch = 1
	}

	if err := create(ctx, path); err != nil {
		return nil, wrap("create "+path, withOSReason(path, err))
	}
	wdb, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, wrap("open "+path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	conn, err := wdb.Conn(ctx)
	if err != nil {
		wdb.Close()
		return nil, wrap("open "+path, withOSReason(path, err))
	}
	fail := func(op string, err error) (*DB, error) {
		conn.Close()
		wdb.Close()
		return nil, wrap(op, err)
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fail("open "+path, withOSReason(path, err))
	}
	if !strings.EqualFold(mode, "wal") {
		return fail("open "+path, fmt.Errorf("journal mode is %q, not WAL (is the file system one that supports WAL?)", mode))
	}
	files, err := migrationList()
	if err != nil {
		return fail("migrate "+path, err)
	}
	if err := migrate(ctx, conn, log, files); err != nil {
		return fail("migrate "+path, err)
	}

	rdb, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return fail("open "+path+" for reading", err)
	}
	readers := max(4, 2*runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(readers)
	rdb.SetMaxIdleConns(readers)
	// Open one reader now, so that a database that cannot be read fails
	// Open rather than the first read.
	if err := rdb.PingContext(ctx); err != nil {
		rdb.Close()
		return fail("open "+path+" for reading", err)
	}

	// The checkpointer's RESTART checkpoints wait for readers at most
	// restartWait (checkpoint.go); its PASSIVE ones never wait.
	cdb, err := sql.Open("sqlite", dsnBusy(path, false, int(restartWait/time.Millisecond)))
	if err != nil {
		rdb.Close()
		return fail("open "+path+" for checkpoints", err)
	}
	cdb.SetMaxOpenConns(1)
	cdb.SetMaxIdleConns(1)
	cdb.SetConnMaxLifetime(0)
	cdb.SetConnMaxIdleTime(0)
	interval := opts.CheckpointInterval
	if interval <= 0 {
		interval = DefaultCheckpointInterval
	}
	maxWAL := opts.MaxWALFrames
	if maxWAL <= 0 {
		maxWAL = DefaultMaxWALFrames
	}
	met := newMetrics(opts.Metrics)
	db := &DB{
		path: path,
		log:  log,
		wdb:  wdb,
		rdb:  rdb,
		w:    newWriter(conn, maxBatch, log, met),
	}
	db.ckpt = &checkpointer{db: cdb, interval: interval, stop: make(chan struct{}), done: make(chan struct{}), pause: db.w.pause, maxWAL: maxWAL, log: log, met: met}
	go db.w.run()
	go db.ckpt.run()
	return db, nil
}

// PageSize is the page size of the databases Open creates. Every commit
// writes each page it changed, whole, to the WAL, and a message changes a few
// pages in random places (its inbox entries in both users' inboxes, its
// conversation's index entry, its idempotency key): with SQLite's default of
// 4,096 bytes that was 25-30 KiB written per message under natter-bench,
// with 1,024 bytes 11 KiB. A database created with another page size keeps
// it (docs/performance.md says how to convert one offline).
const PageSize = 1024

// create makes a new, empty database file at path with PageSize pages in WAL
// mode, unless a file is already there. The page size must be set before
// the file is first written, and the driver applies journal_mode first.
func create(ctx context.Context, path string) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return nil
	}
	db, err := sql.Open("sqlite", "file:"+strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path))
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA page_size = "+strconv.Itoa(PageSize)); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "PRAGMA journal_mode = WAL")
	return err
}

// withOSReason adds the operating system's reason to err when SQLite could
// not open path and says only "unable to open database file": whether the
// file system is read-only, the directory missing, permission denied.
func withOSReason(path string, err error) error {
	if code, ok := primaryCode(err); !ok || code != sqlite3.SQLITE_CANTOPEN && code != sqlite3.SQLITE_READONLY && code != sqlite3.SQLITE_PERM {
		return err
	}
	f, oserr := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(oserr, fs.ErrNotExist) {
		_, oserr = os.Stat(filepath.Dir(path))
	}
	if oserr != nil {
		return fmt.Errorf("%w (%v)", err, oserr)
	}
	f.Close()
	return err
}

// writerCacheKiB is the page cache of the writer's connection, in KiB.
// SQLite's default, 2,000 KiB, holds 2,000 of the 1 KiB pages: fewer than
// the index pages a stream of messages between 1,000 users keeps touching
// (the tails of 1,000 inboxes and of 5,000 conversations' index entries),
// so writes read some pages again from the file system. The price: at the
// end of every transaction SQLite truncates the cache
// (pager_end_transaction → sqlite3PcacheTruncate), under natterd's load a
// scan of the whole hash table, whose size follows the cache's (22 % of the
// store's CPU with 32 MiB, 2 % with 2 MiB, in a reproduction). Under
// natter-bench the default size wrote 17.5 KiB per message instead of
// 12-15 for the same CPU (docs/performance.md, third round), so the cache
// stays at 32 MiB until the truncation's cause is found.
const writerCacheKiB = 32 << 10

// dsn is the modernc.org/sqlite data source name for path. Pragmas are set
// per connection, by the driver, as each connection opens.
func dsn(path string, readOnly bool) string {
	return dsnBusy(path, readOnly, busyTimeoutMillis)
}

// dsnBusy is dsn with a busy timeout of busyMillis.
func dsnBusy(path string, readOnly bool, busyMillis int) string {
	q := []string{
		"_pragma=busy_timeout(" + strconv.Itoa(busyMillis) + ")",
		"_pragma=foreign_keys(1)",
		"_pragma=synchronous(FULL)",
	}
	if readOnly {
		q = append(q, "_pragma=query_only(1)")
	} else {
		// journal_mode is stored in the file; setting it once from the
		// writer is enough, and a read-only connection may not set it.
		// Checkpoints are the checkpointer's (checkpoint.go), not the
		// committing connection's.
		q = append(q, "_pragma=journal_mode(WAL)", "_pragma=wal_autocheckpoint(0)",
			"_pragma=cache_size(-"+strconv.Itoa(writerCacheKiB)+")")
	}
	// A file: URI, so that the path is never confused with the query; '%',
	// '?' and '#' must then be percent-encoded.
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + p + "?" + strings.Join(q, "&")
}

// migrate applies the migrations of files (the first len(files) of
// migrationList: Open passes them all, tests fewer, to build an old database)
// that the database has not seen yet, each in its own transaction together
// with the PRAGMA user_version that records it. A database newer than files
// is refused rather than guessed at.
func migrate(ctx context.Context, conn *sql.Conn, log *slog.Logger, files []string) error {
	for i, name := range files {
		version := i + 1
		done, err := applyMigration(ctx, conn, version, name)
		if err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if done {
			log.Info("applied migration", "file", name, "user_version", version)
		}
	}
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(files) {
		return fmt.Errorf("database schema version %d is newer than this natter knows (%d): upgrade natter", version, len(files))
	}
	return nil
}

// migrationList returns the embedded migration file names in order and checks
// that they are numbered 0001, 0002, ... without gaps.
func migrationList() ([]string, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var names []string
	for i, e := range entries {
		n, _, ok := strings.Cut(e.Name(), "_")
		if v, err := strconv.Atoi(n); !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("migration %s: want a name starting with %04d_", e.Name(), i+1)
		}
		names = append(names, e.Name())
	}
	return names, nil
}

// applyMigration applies migration file name as schema version version unless
// the database already has it. It reads user_version inside the write
// transaction, so two processes opening one new database at once do not both
// apply it.
func applyMigration(ctx context.Context, conn *sql.Conn, version int, name string) (applied bool, err error) {
	body, err := migrationFiles.ReadFile("migrations/" + name)
	if err != nil {
		return false, err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	var have int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have); err != nil {
		return false, err
	}
	if have >= version {
		_, err := conn.ExecContext(ctx, "COMMIT")
		return false, err
	}
	if _, err := conn.ExecContext(ctx, string(body)); err != nil {
		return false, err
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(version)); err != nil {
		return false, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return false, err
	}
	return true, nil
}

// Close stops taking writes, lets every write already queued finish and
// commit, then closes the database. Closing twice is not an error.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed.Load() {
		db.mu.Unlock()
		return nil
	}
	db.closed.Store(true)
	db.mu.Unlock()

	ckptErr := db.ckpt.close()
	close(db.w.reqs)
	<-db.w.done
	return errors.Join(
		ckptErr,
		db.w.close(),
		db.wdb.Close(),
		db.rdb.Close(),
	)
}

// write hands fn to the writer and waits until the transaction it ran in has
// committed (or fn failed). op names the operation in errors.
//
// If ctx ends while the request is still queued, write withdraws it and
// returns ctx's error: nothing is written. Once the writer has taken the
// request into a batch it runs to completion and write waits for it, so that
// the caller never sees an error for a write that was in fact committed.
func (db *DB) write(ctx context.Context, op string, fn writeFunc) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	r := &request{fn: fn, done: make(chan error, 1), queued: time.Now()}

	db.mu.RLock()
	if db.closed.Load() {
		db.mu.RUnlock()
		return fmt.Errorf("sqlite: %s: %w", op, natter.ErrClosed)
	}
	select {
	case db.w.reqs <- r:
	case <-ctx.Done():
		db.mu.RUnlock()
		return fmt.Errorf("sqlite: %s: %w", op, ctx.Err())
	}
	db.mu.RUnlock()

	select {
	case err := <-r.done:
		return wrap(op, err)
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, withdrawn) {
			return fmt.Errorf("sqlite: %s: %w", op, ctx.Err())
		}
		return wrap(op, <-r.done)
	}
}

// reading returns natter.ErrClosed (wrapped) once the store is closed, so
// that reads after Close fail with the same error as writes.
func (db *DB) reading(op string) error {
	if db.closed.Load() {
		return fmt.Errorf("sqlite: %s: %w", op, natter.ErrClosed)
	}
	return nil
}
