package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the advisory lock that migrations take,
// combined with the schema's name (see migrate), so that stores of
// different schemas of one database do not wait for each other.
const migrationLock = "natter migrations "

// migrate applies the embedded migrations the schema has not seen yet, in
// one transaction that first takes a transaction-level advisory lock: when
// several nodes start at once on a new database, one applies them and the
// others, once it has committed, find them applied. schema_migrations
// records each one applied. A schema newer than this natter is refused.
func (s *Store) migrate(ctx context.Context) error {
	files, err := migrationList()
	if err != nil {
		return err
	}
	return s.write(ctx, "apply migrations", func(ctx context.Context, q querier) error {
		if _, err := q.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || current_schema(), 0))`, migrationLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := q.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     NOT NULL PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var have int
		if err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if have > len(files) {
			return fmt.Errorf("database schema version %d is newer than this natter knows (%d): upgrade natter", have, len(files))
		}
		for i, name := range files[have:] {
			version := have + i + 1
			body, err := migrationFiles.ReadFile("migrations/" + name)
			if err != nil {
				return err
			}
			// A simple-protocol Exec runs a file of several statements.
			if _, err := q.Exec(ctx, string(body), pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("migration %s: %w", name, err)
			}
			if _, err := q.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, version, name); err != nil {
				return fmt.Errorf("record migration %s: %w", name, err)
			}
			s.log.Info("applied migration", "file", name, "version", version)
		}
		return nil
	})
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
