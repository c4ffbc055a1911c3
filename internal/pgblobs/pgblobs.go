// Package pgblobs keeps file chunks' bytes in PostgreSQL, for natterd
// nodes that share a PostgreSQL store: a chunk uploaded through one node
// can be fetched through any other, and nothing is kept on a node's own
// disk, so a node can die or be replaced without losing files.
//
// Chunks are sealed (natter never sees a file's plaintext), at most
// wire.ChunkSize (256 KiB) each, and stored once per hash in a table of
// their own (chunk_data), next to the store's records of who uploaded and
// may fetch them (natter.Store's AddChunk and friends, which decide what is
// kept). PostgreSQL stores such values out of line (TOAST), compressed
// where it can (sealed bytes do not compress). A deployment with many
// large files could move them to an object store behind the same small
// interface (internal/hub.Blobs); one that runs PostgreSQL already needs
// nothing more this way.
package pgblobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/natterim/natter"
)

// Store keeps chunk bytes in PostgreSQL. Its methods are safe for
// concurrent use, from one node or many.
type Store struct {
	pool *pgxpool.Pool
}

// schema creates the table; it runs under a transaction-scoped advisory
// lock, so that nodes starting together do not race to create it.
const schema = `
CREATE TABLE IF NOT EXISTS chunk_data (
    hash TEXT  NOT NULL PRIMARY KEY,
    data BYTEA NOT NULL
)`

// lockKey is the advisory lock taken while creating the table (any fixed
// number that natter's other locks do not use).
const lockKey = 0x6e617474_6572_0002

// Open connects to the PostgreSQL database url names (the same URL as
// natterd's --store, schema included) with a pool of at most maxConns
// connections, and creates the table if it is not there.
func Open(ctx context.Context, url string, maxConns int32) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgblobs: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	// A chunk is acknowledged once its commit is on the database's disk,
	// whatever the server's default.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgblobs: %w: %w", natter.ErrStoreUnavailable, err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(lockKey)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, wrap("create table", err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Put stores data under hash durably (committed with the database's
// synchronous_commit). Storing a hash that is there already changes
// nothing. The caller has checked data against hash.
func (s *Store) Put(ctx context.Context, hash string, data []byte) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO chunk_data (hash, data) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING", hash, data)
	return wrap("put "+hash, err)
}

// Has reports whether the bytes of hash are stored.
func (s *Store) Has(hash string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var ok bool
	err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM chunk_data WHERE hash = $1)", hash).Scan(&ok)
	return ok, wrap("has "+hash, err)
}

// Get returns the bytes of hash, or an error wrapping natter.ErrNoSuchChunk.
func (s *Store) Get(ctx context.Context, hash string) ([]byte, error) {
	var data []byte
	err := s.pool.QueryRow(ctx, "SELECT data FROM chunk_data WHERE hash = $1", hash).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgblobs: get %s: %w", hash, natter.ErrNoSuchChunk)
	}
	return data, wrap("get "+hash, err)
}

// Delete removes the bytes of hash; a missing hash is not an error.
func (s *Store) Delete(hash string) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err := s.pool.Exec(ctx, "DELETE FROM chunk_data WHERE hash = $1", hash)
	return wrap("delete "+hash, err)
}

// opTimeout bounds the calls that take no context.
const opTimeout = 30 * time.Second

// wrap adds op to err and marks errors that are not the query's own fault
// (the database is down, unreachable, or refusing connections) as
// natter.ErrStoreUnavailable.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code[:2] != "08" && pe.Code[:2] != "53" && pe.Code[:2] != "57" ||
		errors.Is(err, context.Canceled) {
		return fmt.Errorf("pgblobs: %s: %w", op, err)
	}
	return fmt.Errorf("pgblobs: %s: %w: %w", op, natter.ErrStoreUnavailable, err)
}
