package server_test

import (
	"os"
	"testing"

	"github.com/natterim/natter/internal/testenv"
)

// TestMain says which tests skipped for want of setup (TestACMEPebble
// without Pebble), even without go test -v.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
