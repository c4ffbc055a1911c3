package test

import (
	"os"
	"testing"

	"github.com/natterim/natter/internal/testenv"
)

// TestMain says which tests skipped for want of setup (the NAT lab without
// root and iptables, the real full disks without a tmpfs), even without
// go test -v.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
