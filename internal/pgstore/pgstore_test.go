package pgstore

import (
	"fmt"
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
		if leaked := leaktest.Leaked(5*time.Second, "jackc/puddle", "jackc/pgx/v5/pgxpool"); leaked != "" {
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
