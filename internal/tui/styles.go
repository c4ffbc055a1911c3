package tui

import (
	"strings"

	"charm.land/lipgloss/v2"

	"github.com/natterim/natter"
)

// styles are the UI's colours and attributes. Colours are the 16 ANSI ones,
// so that the terminal's theme picks the shades and a 16-colour terminal
// shows them as meant; the renderer drops them under NO_COLOR, where the
// presence markers and the reverse-video selection still say everything.
type styles struct {
	online, away, busy, offline lipgloss.Style
	dim, bold, title, sel       lipgloss.Style
	me, peer, note, warn, err   lipgloss.Style
	read, highlight, rule       lipgloss.Style
	tab, tabActive, badge       lipgloss.Style

	// Inks of the dialog's styles.
	iDim, iMe, iPeer, iNote, iRead, iErr, iRule, iHighlight ink
}

func newStyles() styles {
	s := lipgloss.NewStyle()
	st := styles{
		online:    s.Foreground(lipgloss.Green),
		away:      s.Foreground(lipgloss.Yellow),
		busy:      s.Foreground(lipgloss.Red),
		offline:   s.Foreground(lipgloss.BrightBlack),
		dim:       s.Faint(true),
		bold:      s.Bold(true),
		title:     s.Bold(true),
		sel:       s.Reverse(true),
		me:        s.Foreground(lipgloss.Cyan).Bold(true),
		peer:      s.Foreground(lipgloss.Magenta).Bold(true),
		note:      s.Italic(true).Faint(true),
		warn:      s.Foreground(lipgloss.Yellow).Bold(true),
		err:       s.Foreground(lipgloss.Red).Bold(true),
		read:      s.Foreground(lipgloss.Blue),
		highlight: s.Underline(true),
		rule:      s.Foreground(lipgloss.BrightBlack),
		tab:       s.Faint(true),
		tabActive: s.Bold(true).Reverse(true),
		badge:     s.Bold(true),
	}
	st.iDim, st.iMe, st.iPeer, st.iNote = inkOf(st.dim), inkOf(st.me), inkOf(st.peer), inkOf(st.note)
	st.iRead, st.iErr, st.iRule, st.iHighlight = inkOf(st.read), inkOf(st.err), inkOf(st.rule), inkOf(st.highlight)
	return st
}

// ink is a style reduced to the sequences around its text: painting with it
// costs two concatenations, where lipgloss's Render parses the style each
// time. It is for single-line text on the hot paths (the dialog's lines).
type ink struct{ pre, post string }

func inkOf(s lipgloss.Style) ink {
	r := s.Render("x")
	i := strings.Index(r, "x")
	if i < 0 {
		return ink{}
	}
	return ink{pre: r[:i], post: r[i+1:]}
}

// paint styles one line of text.
func (k ink) paint(text string) string {
	if text == "" {
		return ""
	}
	return k.pre + text + k.post
}

// presence returns the style of a status.
func (st styles) presence(s natter.Status) lipgloss.Style {
	switch s {
	case natter.StatusOnline:
		return st.online
	case natter.StatusAway:
		return st.away
	case natter.StatusBusy:
		return st.busy
	}
	return st.offline
}

// marker shows a status without colour, for monochrome terminals.
func marker(s natter.Status) string {
	switch s {
	case natter.StatusOnline:
		return "●"
	case natter.StatusAway:
		return "◐"
	case natter.StatusBusy:
		return "⊘"
	}
	return "○"
}
