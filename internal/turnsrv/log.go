package turnsrv

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/logging"
)

// pionLogs sends pion's logs to slog. pion logs per packet at debug and
// info level (including for datagrams from peers without permission, which
// anyone can send), so trace, debug and info all become slog debug; its
// warnings and errors become slog warnings, rate-limited.
type pionLogs struct {
	log *slog.Logger
	lim *limiter
}

func newPionLogs(log *slog.Logger) pionLogs { return pionLogs{log: log, lim: newLimiter(time.Now)} }

// NewLogger implements logging.LoggerFactory.
func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return &pionLogger{log: f.log.With("pion", scope), lim: f.lim}
}

type pionLogger struct {
	log *slog.Logger
	lim *limiter
}

// levelTrace is below slog's debug level: pion's trace output is only for
// someone chasing a bug in pion.
const levelTrace = slog.LevelDebug - 4

func (l *pionLogger) logf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) { // before Sprintf: pion logs on every relayed packet
		l.emit(level, fmt.Sprintf(format, args...))
	}
}

func (l *pionLogger) print(level slog.Level, msg string) {
	if l.log.Enabled(context.Background(), level) {
		l.emit(level, msg)
	}
}

func (l *pionLogger) emit(level slog.Level, msg string) {
	ctx := context.Background()
	if level < slog.LevelWarn {
		l.log.Log(ctx, level, msg)
		return
	}
	if ok, dropped := l.lim.allow(); ok {
		if dropped > 0 {
			l.log.Log(ctx, level, msg, "suppressed", dropped)
		} else {
			l.log.Log(ctx, level, msg)
		}
	}
}

func (l *pionLogger) Trace(msg string)                  { l.print(levelTrace, msg) }
func (l *pionLogger) Tracef(format string, args ...any) { l.logf(levelTrace, format, args...) }
func (l *pionLogger) Debug(msg string)                  { l.print(slog.LevelDebug, msg) }
func (l *pionLogger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l *pionLogger) Info(msg string)                   { l.print(slog.LevelDebug, msg) }
func (l *pionLogger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l *pionLogger) Warn(msg string)                   { l.print(slog.LevelWarn, msg) }
func (l *pionLogger) Warnf(format string, args ...any)  { l.logf(slog.LevelWarn, format, args...) }
func (l *pionLogger) Error(msg string)                  { l.print(slog.LevelWarn, msg) }
func (l *pionLogger) Errorf(format string, args ...any) { l.logf(slog.LevelWarn, format, args...) }

// limiter lets through at most limitBurst log lines per limitWindow and
// counts the ones it holds back, so that the next line can say how many.
type limiter struct {
	now     func() time.Time
	mu      sync.Mutex
	start   time.Time
	n       int
	dropped int
}

const (
	limitBurst  = 10
	limitWindow = 10 * time.Second
)

func newLimiter(now func() time.Time) *limiter { return &limiter{now: now} }

// allow reports whether a line may be logged now and, if so, how many were
// held back since the last one.
func (l *limiter) allow() (ok bool, dropped int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= limitWindow {
		l.start, l.n = now, 0
	}
	if l.n >= limitBurst {
		l.dropped++
		return false, 0
	}
	l.n++
	dropped, l.dropped = l.dropped, 0
	return true, dropped
}
