package pgstore

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/natterim/natter/internal/pgtest"
)

// testURL returns the URL of the database the tests use (pgtest.URL:
// this machine's PostgreSQL, or NATTER_TEST_POSTGRES).
func testURL() string { return pgtest.URL() }

// newSchema creates a schema of its own for t (pgtest.NewSchema: dropped,
// with everything in it, when t ends), so that tests run in parallel and
// leave nothing behind. It returns a pool configuration whose connections
// use the schema (search_path) and name themselves after it
// (application_name), for OpenConfig. Without a reachable PostgreSQL the
// test is skipped, or fails under CI (testenv.Unavailable).
func newSchema(t testing.TB) (*pgxpool.Config, string) {
	t.Helper()
	url, schema := pgtest.NewSchema(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["application_name"] = schema
	return cfg, schema
}

// openStore opens a store on cfg (a copy of it), to be closed by the
// caller or, if the test does not, when it ends.
func openStore(t testing.TB, cfg *pgxpool.Config, opts Options) *Store {
	t.Helper()
	s, err := OpenConfig(t.Context(), cfg.Copy(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// t0 is the tests' fixed clock.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535_897_000, time.UTC)

// at returns t0 plus n seconds.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
