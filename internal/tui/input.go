package tui

import (
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textarea"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/natterim/natter"
)

// inputMaxHeight is how tall the input line grows with its text.
const inputMaxHeight = 5

// newInput makes the input line: Enter sends (the App handles it),
// Alt-Enter starts a new line, and the terminal's own cursor shows where
// typing goes (no blinking virtual cursor to redraw).
func newInput() textarea.Model {
	t := textarea.New()
	t.Prompt = "› "
	t.ShowLineNumbers = false
	t.DynamicHeight = true
	t.MinHeight = 1
	t.MaxHeight = inputMaxHeight
	t.MaxContentHeight = 10000
	t.EndOfBufferCharacter = ' '
	t.KeyMap.InsertNewline = key.NewBinding(key.WithKeys("alt+enter", "ctrl+j"))
	t.SetVirtualCursor(false)
	plain := lipgloss.NewStyle()
	state := textarea.StyleState{Base: plain, Text: plain, CursorLine: plain, EndOfBuffer: plain,
		Placeholder: plain.Faint(true), Prompt: plain.Bold(true)}
	t.SetStyles(textarea.Styles{Focused: state, Blurred: state, Cursor: textarea.CursorStyle{Shape: tea.CursorBar}})
	return t
}

// inputActive reports whether typed keys go to the input line.
func (a *App) inputActive() bool {
	return a.cmdMode || (a.focus == focusMain && (a.pane == paneChat || a.pane == paneNone))
}

// completion cycles through the words that complete the one before the
// cursor, Tab after Tab.
type completion struct {
	active  bool
	base    string // the text before the word
	matches []string
	i       int
}

// reset ends a completion at any key but Tab.
func (c *completion) reset(k tea.KeyPressMsg) {
	if k.String() != "tab" {
		c.active = false
	}
}

// complete completes the last word of the input: a command, a status, or a
// contact's name.
func (a *App) complete() {
	if !a.comp.active {
		v := a.input.Value()
		i := strings.LastIndexAny(v, " \n") + 1
		word := strings.ToLower(v[i:])
		fields := strings.Fields(v[:i])
		var cands []string
		switch {
		case i == 0 && strings.HasPrefix(word, "/"):
			for _, c := range commands() {
				cands = append(cands, c.name)
			}
		case len(fields) == 1 && fields[0] == "/status":
			cands = []string{string(natter.StatusOnline), string(natter.StatusAway), string(natter.StatusBusy)}
		case len(fields) == 1 && fields[0] == "/verify":
			cands = append([]string{"confirm"}, a.contacts.names()...)
		default:
			cands = a.contacts.names()
		}
		var matches []string
		for _, c := range cands {
			if strings.HasPrefix(c, word) {
				matches = append(matches, c)
			}
		}
		if len(matches) == 0 {
			return
		}
		slices.Sort(matches)
		a.comp = completion{active: true, base: v[:i], matches: matches}
	} else {
		a.comp.i = (a.comp.i + 1) % len(a.comp.matches)
	}
	m := a.comp.matches[a.comp.i]
	suffix := " "
	if a.comp.base == "" && !strings.HasPrefix(m, "/") {
		suffix = ": " // a name at the start of a message, as IRC does
	}
	a.input.SetValue(a.comp.base + m + suffix)
	a.input.CursorEnd()
}
