package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain runs this package's tests through Main, as the packages that use
// it do: TestUnavailable checks its report.
func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestRequired(t *testing.T) {
	for _, tt := range []struct {
		ci, require string
		want        string
	}{
		{"", "", ""},
		{"true", "", "CI=true"},
		{"1", "", "CI=1"},
		{"false", "", ""},
		{"0", "", ""},
		{"yes please", "", ""}, // not a boolean: not CI
		{"", "1", "NATLAB_REQUIRE=1"},
		{"true", "1", "NATLAB_REQUIRE=1"},
	} {
		t.Setenv(CIEnv, tt.ci)
		t.Setenv(RequireEnv, tt.require)
		if got := Required(); got != tt.want {
			t.Errorf("CI=%q NATLAB_REQUIRE=%q: Required() = %q, want %q", tt.ci, tt.require, got, tt.want)
		}
	}
}

// helperEnv makes this test binary run TestHelperUnavailable for real.
const helperEnv = "TESTENV_HELPER"

// TestHelperUnavailable is run by TestUnavailable in a child process: two
// tests that cannot set themselves up, one of them twice (subtests), and
// one that can.
func TestHelperUnavailable(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		return // only in TestUnavailable's child
	}
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) { Unavailable(t, "no widget: %s", "gone") })
	}
	t.Run("fine", func(t *testing.T) {})
}

func TestHelperUnavailableToo(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		return
	}
	Unavailable(t, "no widget: %s", "gone")
}

// TestUnavailable runs the helper tests in a child test binary: without
// CI they skip, pass, and the report names them in one line (go test -v
// shows it; the package's TestMain writes it); in CI they fail with the
// reason and what required them.
func TestUnavailable(t *testing.T) {
	report := "internal/testenv: skipped TestHelperUnavailable, TestHelperUnavailableToo: no widget: gone"
	for _, tt := range []struct {
		name     string
		env      []string
		wantFail bool
		want     []string // in the output
		notWant  []string
	}{
		{name: "not CI", wantFail: false,
			want:    []string{"--- SKIP: TestHelperUnavailable/a", "--- SKIP: TestHelperUnavailableToo", report},
			notWant: []string{"--- FAIL"}},
		{name: "CI=true", env: []string{"CI=true"}, wantFail: true,
			want:    []string{"--- FAIL: TestHelperUnavailable/a", "--- FAIL: TestHelperUnavailableToo", "no widget: gone; CI=true is set, so this test must run, not skip"},
			notWant: []string{"--- SKIP", "skipped TestHelper"}},
		{name: "NATLAB_REQUIRE", env: []string{"NATLAB_REQUIRE=1"}, wantFail: true,
			want:    []string{"--- FAIL: TestHelperUnavailable/b", "no widget: gone; NATLAB_REQUIRE=1 is set, so this test must run, not skip"},
			notWant: []string{"--- SKIP", "skipped TestHelper"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperUnavailable", "-test.v", "-test.count=1")
			for _, kv := range os.Environ() {
				if k, _, _ := strings.Cut(kv, "="); k != CIEnv && k != RequireEnv {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, append(tt.env, helperEnv+"=1")...)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tt.wantFail {
				t.Errorf("exit: %v, want failure %v; output:\n%s", err, tt.wantFail, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(string(out), w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}
