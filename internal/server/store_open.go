package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/pgstore"
	"github.com/natterim/natter/internal/sqlite"
)

// openStore opens the store that cfg.Store names: with "" (the default)
// the SQLite file in cfg.DataDir, the zero-set-up single node; with a
// postgres:// (or postgresql://) URL the PostgreSQL database that several
// nodes share (internal/pgstore), whose schema it brings up to date. The
// store's logs go to log and its metrics to reg. Anything else is refused,
// so that a typo does not start a node on a store of its own.
func openStore(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (natter.Store, error) {
	switch {
	case cfg.Store == "":
		db, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, dbFile), sqlite.Options{NoGroupCommit: cfg.NoGroupCommit,
			CheckpointInterval: cfg.CheckpointInterval, Logger: log, Metrics: reg})
		if err != nil {
			return nil, err
		}
		return db, nil
	case strings.HasPrefix(cfg.Store, "postgres://"), strings.HasPrefix(cfg.Store, "postgresql://"):
		s, err := pgstore.Open(ctx, cfg.Store, pgstore.Options{Logger: log, Metrics: reg})
		if err != nil {
			return nil, fmt.Errorf("--store: %w", err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("--store %q: want a postgres:// URL, or nothing for the SQLite file in --data", redactURL(cfg.Store))
	}
}

// redactURL is u with anything that looks like a password (user:password@)
// replaced, for error messages and logs.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	at := strings.LastIndex(rest, "@")
	colon := strings.Index(rest, ":")
	if at < 0 || colon < 0 || colon > at {
		return u
	}
	return scheme + "://" + rest[:colon] + ":xxxxx" + rest[at:]
}
