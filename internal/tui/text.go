package tui

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/charmbracelet/x/ansi"

	"github.com/natterim/natter/internal/human"
)

// clean makes text from the network safe to put on the screen: control
// characters (escape sequences above all) are shown as \xNN, tabs become
// spaces, and newlines are kept only if keepNewlines is set.
func clean(s string, keepNewlines bool) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' && keepNewlines:
			b.WriteRune(r)
		case r == '\t':
			b.WriteString("    ")
		case r == '\r':
		case unicode.IsControl(r):
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// clock formats a message time: the time of day if it is today, else the
// date too.
func clock(t, now time.Time, loc *time.Location) string {
	t, now = t.In(loc), now.In(loc)
	if sameDay(t, now) {
		return t.Format("15:04")
	}
	return t.Format("Jan 2 15:04")
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// lastSeen says when an offline contact was last online, and the status
// text they left, if any.
func lastSeen(t time.Time, text string, now time.Time, loc *time.Location) string {
	s := "not seen online yet"
	if !t.IsZero() {
		s = "last seen " + ago(t, now, loc)
	}
	if text != "" {
		s += " · " + text
	}
	return s
}

// ago says how long ago t was, for "last seen".
func ago(t, now time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	case d < 7*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
	}
	return t.In(loc).Format("Jan 2 2006")
}

// sizeText is a byte count for people.
func sizeText(n int64) string { return human.Size(n) }

// fit cuts or pads a (possibly styled) line to exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	n := visibleWidth(s)
	if n > w {
		s = ansi.Truncate(s, w, "…")
		n = ansi.StringWidth(s)
	}
	if n < w {
		s += strings.Repeat(" ", w-n)
	}
	return s
}

// cut shortens a plain or styled line to at most w cells.
func cut(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if visibleWidth(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// wrap word-wraps plain text to w cells a line (long words are broken).
func wrap(s string, w int) []string {
	if w < 1 {
		w = 1
	}
	var out []string
	for _, para := range strings.Split(s, "\n") {
		if visibleWidth(para) <= w {
			out = append(out, para)
			continue
		}
		out = append(out, strings.Split(ansi.Wrap(para, w, ""), "\n")...)
	}
	return out
}

// visibleWidth is how many cells a styled line takes. Lines of ASCII text
// and SGR sequences (most of them) are counted byte by byte; others are
// measured by grapheme, which is much slower.
func visibleWidth(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80:
			return ansi.StringWidth(s)
		case c == 0x1b && i+1 < len(s) && s[i+1] == '[':
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
		case c >= 0x20 && c < 0x7f:
			n++
		default:
			return ansi.StringWidth(s)
		}
	}
	return n
}

// stripANSI removes the styling from a line.
func stripANSI(s string) string { return ansi.Strip(s) }
