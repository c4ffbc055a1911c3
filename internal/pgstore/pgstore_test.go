package pgstore

import (
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/leaktest"
	"github.com/natterim/natter/internal/storetest"
	"github.com/natterim/natter/internal/testenv"
)

// TestMain says which tests skipped for want of a PostgreSQL
// (testenv.Main), and fails the run if a pool's goroutines outlive the
// tests: a store that was never closed.
func TestMain(m *testing.M) {
	code := testenv.Main(m)
	if code == 0 {
		if leaked := leaktest.Leaked(5*time.Second, "jackc/puddle", "jackc/pgx/v5/pgxpool", "pgstore.(*Store).appendWorker"); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines still running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// TestStore runs the conformance suite, each subtest on a schema of its
// own.
func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) natter.Store {
		cfg, _ := newSchema(t)
		s, err := OpenConfig(t.Context(), cfg, Options{MaxConns: 8})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// TestOpenURL opens stores from URLs, as natterd --store does: the URL
// chooses the schema (search_path) and the pool's size (pool_max_conns,
// else DefaultMaxConns), and a URL that is not one is a clear error.
func TestOpenURL(t *testing.T) {
	t.Parallel()
	_, schema := newSchema(t)
	for _, tt := range []struct {
		name, query string
		maxConns    int32
		bad         bool
	}{
		{"default pool", "search_path=" + schema, DefaultMaxConns, false},
		{"pool_max_conns", "search_path=" + schema + "&pool_max_conns=3", 3, false},
		{"bad pool_max_conns", "search_path=" + schema + "&pool_max_conns=many", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(testURL())
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query().Encode()
			if q != "" {
				q += "&"
			}
			u.RawQuery = q + tt.query
			s, err := Open(t.Context(), u.String(), Options{})
			if tt.bad {
				if err == nil {
					s.Close()
					t.Fatalf("Open(%s) succeeded, want an error", u)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%s): %v", u, err)
			}
			defer s.Close()
			if got := s.pool.Config().MaxConns; got != tt.maxConns {
				t.Errorf("pool size %d, want %d", got, tt.maxConns)
			}
			if err := s.CreateUser(t.Context(), natter.UserID("u"+tt.name[:3]), "hash", at(0)); err != nil {
				t.Errorf("CreateUser: %v", err)
			}
		})
	}
	if _, err := Open(t.Context(), "postgres://[::1", Options{}); err == nil {
		t.Error("Open of a malformed URL succeeded")
	}
}
