package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/pgstore"
	"github.com/natterim/natter/internal/sqlite"
	"github.com/natterim/natter/internal/testenv"
)

// testPostgres is the PostgreSQL of this machine (trust authentication);
// NATTER_TEST_POSTGRES overrides it, as for internal/pgstore's tests.
func testPostgres() string {
	if u := os.Getenv("NATTER_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// pgSchema makes a schema of its own for t, dropped when t ends, and
// returns the --store URL that uses it.
func pgSchema(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	base := testPostgres()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL not reachable: %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "natter_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// TestOpenStore checks that --store picks the store: SQLite in the data
// folder without it, PostgreSQL for a postgres:// URL, and a clear error
// for anything else.
func TestOpenStore(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store func(t *testing.T) string
		check func(natter.Store) bool
		err   string
	}{
		{"default", func(*testing.T) string { return "" },
			func(s natter.Store) bool { _, ok := s.(*sqlite.DB); return ok }, ""},
		{"postgres", pgSchema,
			func(s natter.Store) bool { _, ok := s.(*pgstore.Store); return ok }, ""},
		{"other scheme", func(*testing.T) string { return "mysql://root:secret@db/natter" }, nil, `"mysql://root:xxxxx@db/natter": want a postgres:// URL`},
		{"a path", func(*testing.T) string { return "/var/lib/natter.db" }, nil, "want a postgres:// URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{DataDir: t.TempDir(), Store: tt.store(t)}
			s, err := openStore(t.Context(), cfg, nil, nil)
			if tt.err != "" {
				if err == nil {
					s.Close()
					t.Fatalf("openStore(%q) succeeded, want an error", cfg.Store)
				}
				if !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "secret") {
					t.Fatalf("openStore(%q) = %v, want an error saying %q and no password", cfg.Store, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("openStore(%q): %v", cfg.Store, err)
			}
			defer s.Close()
			if !tt.check(s) {
				t.Fatalf("openStore(%q) opened a %T", cfg.Store, s)
			}
			if err := s.CreateUser(t.Context(), "alice", "hash", time.Now()); err != nil && !errors.Is(err, natter.ErrUserExists) {
				t.Fatalf("CreateUser: %v", err)
			}
		})
	}
}
