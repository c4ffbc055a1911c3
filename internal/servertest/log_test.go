package servertest

import (
	"slices"
	"strings"
	"testing"
)

func TestLogLevels(t *testing.T) {
	for _, tt := range []struct {
		line, want string
	}{
		{`time=2026-01-02T03:04:05.678Z level=ERROR msg="request failed" err=x`, "ERROR"},
		{`time=2026-01-02T03:04:05.678Z level=ERROR+2 msg=worse`, "ERROR"},
		{`time=2026-01-02T03:04:05.678Z level=WARN msg="level=ERROR in a message"`, "WARN"},
		{`time=2026-01-02T03:04:05.678Z level=INFO msg=x`, "INFO"},
		{`time=2026-01-02T03:04:05.678Z level=DEBUG-4 msg=x`, "DEBUG"},
		{`not a log line`, ""},
	} {
		if got := lineLevel(tt.line); got != tt.want {
			t.Errorf("lineLevel(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

// TestLogUnexpectedErrors: ERROR lines are unexpected until a test Expects
// them by an excerpt; other levels never are. (The check at the end of
// this test passes because every ERROR line is expected by then.)
func TestLogUnexpectedErrors(t *testing.T) {
	l := NewLog(t)
	log := l.Logger().With("component", "store")
	log.Info("logged in", "user", "alice")
	log.Warn("oversized frame", "err", "level=ERROR is only text here")
	log.Error("commit failed", "err", "disk is full")
	log.Error("request failed", "err", "store unavailable")

	steps := []struct {
		expect []string
		want   []string // messages of the unexpected lines
	}{
		{nil, []string{"commit failed", "request failed"}},
		{[]string{"disk is full"}, []string{"request failed"}},
		{[]string{"no such excerpt"}, []string{"request failed"}},
		{[]string{`msg="request failed"`}, nil},
	}
	for _, st := range steps {
		l.Expect(st.expect...)
		var got []string
		for _, line := range l.Unexpected() {
			for _, m := range []string{"commit failed", "request failed"} {
				if strings.Contains(line, `msg="`+m+`"`) {
					got = append(got, m)
				}
			}
		}
		if !slices.Equal(got, st.want) {
			t.Errorf("after Expect(%q): unexpected %q, want %q", st.expect, got, st.want)
		}
	}
	if n := len(l.Lines()); n != 4 {
		t.Errorf("%d lines kept, want 4 (Info and above)", n)
	}
	l.Logger().Debug("not kept")
	if n := len(l.Lines()); n != 4 && !l.debug {
		t.Errorf("a Debug line was kept without NATTER_TEST_LOG=debug")
	}
}
