package tui

import (
	tea "charm.land/bubbletea/v2"
)

// wheelLines is how far one notch of the mouse wheel scrolls.
const wheelLines = 3

// overList reports whether x is over the contact list.
func (a *App) overList(x int) bool {
	if a.wide() {
		return x < a.listWidth()
	}
	return a.focus == focusList
}

// click selects the contact under the mouse; a double click opens it.
func (a *App) click(m tea.Mouse) tea.Cmd {
	if m.Button != tea.MouseLeft {
		return nil
	}
	if !a.overList(m.X) {
		return a.focusMain()
	}
	i := a.contacts.top + m.Y - 2 // the top bar and the list's title
	if i < 0 || i >= len(a.contacts.rows) || a.contacts.rows[i].user == "" {
		return nil
	}
	u := a.contacts.rows[i].user
	now := a.now()
	double := a.lastClick.user == u && now.Sub(a.lastClick.at) <= doubleClick
	a.lastClick = click{at: now, user: u}
	a.contacts.sel = u
	a.focus, a.cmdMode = focusList, false
	if double {
		a.lastClick = click{}
		if c := a.contacts.selected(); c != nil && c.State == "approved" {
			return a.open(u)
		}
	}
	return nil
}

// wheel scrolls the dialog, or moves the selection in the list.
func (a *App) wheel(m tea.Mouse) tea.Cmd {
	up := m.Button == tea.MouseWheelUp
	if m.Button != tea.MouseWheelUp && m.Button != tea.MouseWheelDown {
		return nil
	}
	if a.overList(m.X) {
		if up {
			a.contacts.move(-1)
		} else {
			a.contacts.move(1)
		}
		return nil
	}
	c := a.activeConv()
	if c == nil || a.pane != paneChat {
		return nil
	}
	w, h := a.dialogSize()
	if up {
		c.scrollUp(wheelLines, w, h, &a.lk)
	} else {
		c.scrollDown(wheelLines, w, &a.lk)
	}
	return a.checkOlder()
}
