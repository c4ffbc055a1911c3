package hub

import (
	"bytes"
	"log/slog"
	"regexp"
	"testing"
)

// TestLazyAttrsLogsAsWith checks that a connection's lazy logger writes
// the same lines as slog's With would.
func TestLazyAttrsLogsAsWith(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  func(l *slog.Logger)
	}{
		{"attrs", func(l *slog.Logger) { l.Info("connected", "n", 1) }},
		{"more attrs", func(l *slog.Logger) { l.With("user", "alice").With("device", "d1").Warn("x", "err", "e") }},
		{"group", func(l *slog.Logger) { l.WithGroup("g").With("k", 2).Error("in a group", "v", 3) }},
		{"below the level", func(l *slog.Logger) { l.Debug("not shown") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
				func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
				func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
			} {
				var eager, lazy bytes.Buffer
				tc.log(slog.New(newHandler(&eager)).With("conn", "n-1", "remote", "127.0.0.1:5"))
				tc.log(connLogger(slog.New(newHandler(&lazy)), slog.String("conn", "n-1"), slog.String("remote", "127.0.0.1:5")))
				noTime := regexp.MustCompile(`time=\S+ |"time":"[^"]*",`)
				e, l := noTime.ReplaceAllString(eager.String(), ""), noTime.ReplaceAllString(lazy.String(), "")
				if e != l {
					t.Errorf("With:\n%s\nlazy:\n%s", e, l)
				}
			}
		})
	}
}
