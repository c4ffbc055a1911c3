// Package leaktest fails a test binary whose goroutines outlive its tests:
// a Close that returned before its goroutines stopped, or a test that did
// not close what it opened.
package leaktest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs the tests, then, if they passed, waits up to 5 s for every
// goroutine whose stack mentions one of patterns to end, and fails the run
// (printing their stacks) if any is left. Call it from TestMain.
func Main(m *testing.M, patterns ...string) {
	code := m.Run()
	if code == 0 {
		if leaked := Leaked(5*time.Second, patterns...); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines still running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// Leaked waits up to d for the goroutines whose stacks mention one of
// patterns to end, and returns the stacks of those still running ("" if
// none). The test runner's own goroutines are ignored.
func Leaked(d time.Duration, patterns ...string) string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "testing.(*M)") || strings.Contains(g, "TestMain") {
				continue
			}
			for _, p := range patterns {
				if strings.Contains(g, p) {
					leaked = append(leaked, g)
					break
				}
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
