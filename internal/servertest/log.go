package servertest

import (
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// Log is natterd's log during one test. Warnings and errors go to the test
// log (everything, with NATTER_TEST_LOG=debug); lines from Info up are kept
// for Lines. An ERROR line fails the test when it ends, unless the test
// said it expects it (Expect): natterd logs ERROR for what an operator
// must look at (a failed store write, a broken invariant), and a test that
// provokes none of those must not pass over one.
type Log struct {
	t     testing.TB
	debug bool

	mu       sync.Mutex
	lines    []string // every line at Info and above (Debug too, with debug)
	expected []string // excerpts of the ERROR lines the test expects
}

// NewLog returns a Log for the test t, which checks it for unexpected ERROR
// lines when t ends (after every cleanup registered later, such as a
// server's Stop).
func NewLog(t testing.TB) *Log {
	l := &Log{t: t, debug: os.Getenv("NATTER_TEST_LOG") == "debug"}
	t.Cleanup(l.check)
	return l
}

// Logger returns a logger that writes to l.
func (l *Log) Logger() *slog.Logger {
	level := slog.LevelInfo
	if l.debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(logWriter{l}, &slog.HandlerOptions{Level: level}))
}

// Expect says that the test provokes ERROR lines containing one of
// excerpts (for example "disk full", or a log message such as
// "request failed"): those do not fail it. Each excerpt should name what
// the test provokes; there is no way to allow every error.
func (l *Log) Expect(excerpts ...string) {
	for _, e := range excerpts {
		if e == "" {
			l.t.Fatal("servertest: Log.Expect needs a non-empty excerpt of the expected ERROR lines")
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expected = append(l.expected, excerpts...)
}

// Lines returns the lines logged so far at Info and above (Debug too with
// NATTER_TEST_LOG=debug), in order, each without its newline.
func (l *Log) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// Unexpected returns the ERROR lines logged so far that Expect did not
// allow.
func (l *Log) Unexpected() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if lineLevel(line) != "ERROR" {
			continue
		}
		expected := false
		for _, e := range l.expected {
			if strings.Contains(line, e) {
				expected = true
				break
			}
		}
		if !expected {
			out = append(out, line)
		}
	}
	return out
}

func (l *Log) check() {
	if bad := l.Unexpected(); len(bad) > 0 {
		l.t.Errorf("natterd logged %d unexpected ERROR line(s); fix the cause, or call Expect if the test provokes them:\n\t%s",
			len(bad), strings.Join(bad, "\n\t"))
	}
}

// logWriter receives the text handler's lines: one Write per record.
type logWriter struct{ l *Log }

func (w logWriter) Write(b []byte) (int, error) {
	line := strings.TrimSuffix(string(b), "\n")
	w.l.mu.Lock()
	w.l.lines = append(w.l.lines, line)
	w.l.mu.Unlock()
	switch lineLevel(line) {
	case "WARN", "ERROR":
		w.l.t.Log(line)
	default:
		if w.l.debug {
			w.l.t.Log(line)
		}
	}
	return len(b), nil
}

// lineLevel returns the level of a text handler line, without any offset
// ("ERROR+2" is "ERROR"). The handler always writes time=… (no spaces)
// and then level=… first.
func lineLevel(line string) string {
	f := strings.SplitN(line, " ", 3)
	if len(f) < 2 || !strings.HasPrefix(f[1], "level=") {
		return ""
	}
	lv := strings.TrimPrefix(f[1], "level=")
	if i := strings.IndexAny(lv, "+-"); i > 0 {
		lv = lv[:i]
	}
	return lv
}
