package server

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/pgstore"
	"github.com/natterim/natter/internal/pgtest"
	"github.com/natterim/natter/internal/sqlite"
)

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
		{"postgres", func(t *testing.T) string { return pgtest.Schema(t) },
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
