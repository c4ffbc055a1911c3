// Package testenv decides what a test does when this machine cannot set it
// up: the NAT lab without root or iptables, a real full disk without a
// tmpfs mount. Such a test calls Unavailable, which skips it where that is
// allowed and fails it where the run must not skip (CI): a broken CI
// machine cannot pass by skipping what it was meant to test.
//
// A skip alone is only visible with go test -v: go test ./... prints a
// passing package's "ok" line and nothing of its output. So the packages
// with such tests run them through Main (from TestMain), which prints one
// line per reason naming the skipped tests, to the test's standard error
// and, when go test would not show that, to the terminal.
package testenv

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/term"
)

// The environment variables that make a run refuse to skip: CI (set to
// true by CI services), and NATLAB_REQUIRE (any value), which .ci/run sets
// when it runs as root, where every such test can run.
const (
	CIEnv      = "CI"
	RequireEnv = "NATLAB_REQUIRE"
)

// Required returns why this run must not skip a test for want of setup
// ("CI=true", "NATLAB_REQUIRE=1"), or "" if it may.
func Required() string {
	if v := os.Getenv(RequireEnv); v != "" {
		return RequireEnv + "=" + v
	}
	if v := os.Getenv(CIEnv); v != "" {
		if ok, err := strconv.ParseBool(v); err == nil && ok {
			return CIEnv + "=" + v
		}
	}
	return ""
}

// skips is the one piece of state in this package: the skips of this test
// binary, which Main reports after the tests ran. A test reaches TestMain
// through nothing else.
var skips struct {
	sync.Mutex
	list []skip
}

type skip struct{ test, reason string }

// Unavailable ends the test t, which cannot set itself up for the reason
// given (a format and its arguments, like t.Skipf's). Where Required says
// the run must not skip, t fails with the reason; otherwise t is skipped
// and the skip is kept for Main's report. The reason should not name
// anything particular to one test (a temporary path), so that the report
// groups the tests that skip for the same reason.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if why := Required(); why != "" {
		t.Fatalf("%s; %s is set, so this test must run, not skip", reason, why)
	}
	skips.Lock()
	skips.list = append(skips.list, skip{test: t.Name(), reason: reason})
	skips.Unlock()
	t.Skip(reason)
}

// Main runs the tests of m, reports what Unavailable skipped (see Report)
// and returns m.Run's exit code, for TestMain to pass to os.Exit.
func Main(m *testing.M) int {
	code := m.Run()
	Report(os.Stderr, code)
	return code
}

// Report writes one line per reason to w, naming the top-level tests that
// Unavailable skipped for it in this test binary, e.g.
//
//	natlab: skipped TestTopologies, TestRouters: NAT lab needs root, iproute2 and iptables: …
//
// When go test would drop w (a passing package, run without -v, as part of
// a list of packages: its output is replaced by the "ok" line) the lines
// also go to the controlling terminal, if there is one. code is the tests'
// exit code.
func Report(w io.Writer, code int) {
	lines := reportLines()
	if len(lines) == 0 {
		return
	}
	text := strings.Join(lines, "\n") + "\n"
	io.WriteString(w, text)
	if code != 0 || testing.Verbose() || isTerminal(w) {
		return // go test shows w, or w is the terminal already
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		io.WriteString(tty, text)
		tty.Close()
	}
}

// reportLines returns Report's lines.
func reportLines() []string {
	skips.Lock()
	defer skips.Unlock()
	var reasons []string
	tests := map[string][]string{}
	for _, s := range skips.list {
		top, _, _ := strings.Cut(s.test, "/")
		if _, ok := tests[s.reason]; !ok {
			reasons = append(reasons, s.reason)
		}
		if !slices.Contains(tests[s.reason], top) {
			tests[s.reason] = append(tests[s.reason], top)
		}
	}
	pkg := packageName()
	var lines []string
	for _, r := range reasons {
		lines = append(lines, fmt.Sprintf("%s: skipped %s: %s", pkg, strings.Join(tests[r], ", "), r))
	}
	return lines
}

// packageName names the package under test by its folder in the module
// (go test runs a test binary in its package's folder), e.g. "natlab" or
// "internal/sqlite".
func packageName() string {
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Base(os.Args[0])
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if rel, err := filepath.Rel(dir, wd); err == nil && rel != "." {
				return filepath.ToSlash(rel)
			}
			return filepath.Base(wd)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return filepath.Base(wd)
		}
		dir = parent
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
