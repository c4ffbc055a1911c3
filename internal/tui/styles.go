package tui

import (
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
}

func newStyles() styles {
	s := lipgloss.NewStyle()
	return styles{
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
