package hub

import (
	"context"
	"log/slog"
	"slices"
)

// lazyAttrs is a slog.Handler that keeps the attributes a connection's
// logger is made With (its ID, address, transport, and at login its user
// and device) and hands them to the handler under it only when a record is
// logged. slog's own handlers format them at With, into a copy of the
// handler: ~0.7 KiB that every connection held for its whole life to log
// two or three lines (docs/performance.md, "Memory per idle connection").
// A record costs the copy instead, once per line logged.
type lazyAttrs struct {
	h     slog.Handler
	attrs []slog.Attr
}

// connLogger returns l with attrs added the lazy way.
func connLogger(l *slog.Logger, attrs ...slog.Attr) *slog.Logger {
	return slog.New(&lazyAttrs{h: l.Handler(), attrs: attrs})
}

// Enabled implements slog.Handler.
func (l *lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

// Handle implements slog.Handler.
func (l *lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	return l.h.WithAttrs(l.attrs).Handle(ctx, r)
}

// WithAttrs implements slog.Handler, staying lazy.
func (l *lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return l
	}
	return &lazyAttrs{h: l.h, attrs: slices.Concat(l.attrs, attrs)}
}

// WithGroup implements slog.Handler: the attributes so far go outside the
// group, as With before WithGroup puts them.
func (l *lazyAttrs) WithGroup(name string) slog.Handler {
	if name == "" {
		return l
	}
	return l.h.WithAttrs(l.attrs).WithGroup(name)
}
