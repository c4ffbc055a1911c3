package blobs_test

import (
	"os"
	"testing"

	"github.com/natterim/natter/internal/testenv"
)

// TestMain says which tests skipped for want of setup (the real full-disk
// test without root), even without go test -v.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
