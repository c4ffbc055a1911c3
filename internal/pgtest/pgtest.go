// Package pgtest gives tests a PostgreSQL schema of their own on this
// machine's PostgreSQL (trust authentication at 127.0.0.1:5432, database
// test; NATTER_TEST_POSTGRES overrides the URL), dropped when the test
// ends, so that tests run in parallel and leave nothing behind. A test that
// cannot reach PostgreSQL ends through internal/testenv.Unavailable (a
// skip, or a failure under CI).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natterim/natter/internal/testenv"
)

// URL is the PostgreSQL the tests use, without a schema.
func URL() string {
	if u := os.Getenv("NATTER_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Schema creates a schema of its own for t, dropped (with everything in
// it) when t ends, and returns the URL that uses it (its search_path).
func Schema(t testing.TB) string {
	t.Helper()
	url, _ := NewSchema(t)
	return url
}

// NewSchema is Schema that also returns the schema's name
// (natter_test_ and random hex).
func NewSchema(t testing.TB) (url, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := URL()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL not reachable at %s: %v", base, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema = "natter_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema, schema
}
