package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/natterim/natter/internal/testenv"
)

// URLEnv names the environment variable that points the tests at another
// PostgreSQL than defaultURL (the one on this machine).
const URLEnv = "NATTER_TEST_POSTGRES"

// defaultURL is the test database: the PostgreSQL on this machine, with
// trust authentication.
const defaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// testURL returns the URL of the database the tests use.
func testURL() string {
	if u := os.Getenv(URLEnv); u != "" {
		return u
	}
	return defaultURL
}

// newSchema creates a schema of its own for t (natter_test_ and random
// hex) and drops it, with everything in it, when t ends, so that tests run
// in parallel and leave nothing behind. It returns a pool configuration
// whose connections use the schema (search_path) and name themselves after
// it (application_name), for OpenConfig. Without a reachable PostgreSQL
// the test is skipped, or fails under CI (testenv.Unavailable).
func newSchema(t testing.TB) (*pgxpool.Config, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testURL())
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL not reachable (%s or $%s): %v", defaultURL, URLEnv, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "natter_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, testURL())
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	cfg, err := pgxpool.ParseConfig(testURL())
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
