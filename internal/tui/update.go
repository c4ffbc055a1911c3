package tui

import (
	"fmt"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
)

// Update handles one message. It never does I/O: what needs the network or
// the disk is returned as a tea.Cmd.
func (a *App) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := a.update(msg)
	a.layout()
	return a, cmd
}

func (a *App) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		a.w, a.h = max(msg.Width, 20), max(msg.Height, 8)
		return a.checkOlder()
	case tea.InterruptMsg:
		return a.quit()
	case tea.KeyPressMsg:
		if msg.String() == "ctrl+c" {
			return a.quit()
		}
		if a.login != nil {
			return a.login.key(msg, a.cfg.Login)
		}
		return a.key(msg)
	case tea.PasteMsg:
		if a.login != nil {
			return a.login.paste(msg)
		}
		if a.inputActive() {
			a.input.InsertString(msg.Content)
		}
		return nil
	case tea.MouseClickMsg:
		if a.login == nil {
			return a.click(msg.Mouse())
		}
	case tea.MouseWheelMsg:
		if a.login == nil {
			return a.wheel(msg.Mouse())
		}
	case loginMsg:
		if a.login == nil {
			return nil
		}
		s, cmd := a.login.result(msg)
		if s != nil {
			return a.start(s)
		}
		return cmd
	}
	if a.sess == nil {
		return nil
	}
	return a.sessionMsg(msg)
}

// quit ends the program; Run then ends the session.
func (a *App) quit() tea.Cmd {
	a.quitting = true
	return tea.Quit
}

// key handles a key press in the main screens.
func (a *App) key(k tea.KeyPressMsg) tea.Cmd {
	a.comp.reset(k)
	a.notice, a.bad = "", false // a notice stays until the next key
	s := k.String()
	switch s {
	case "alt+1", "alt+2", "alt+3", "alt+4", "alt+5", "alt+6", "alt+7", "alt+8", "alt+9":
		if n := int(s[4] - '1'); n < len(a.tabs) {
			return a.switchTo(n)
		}
		return nil
	case "ctrl+n", "ctrl+p":
		if len(a.tabs) == 0 {
			return nil
		}
		d := 1
		if s == "ctrl+p" {
			d = len(a.tabs) - 1
		}
		return a.switchTo((max(a.active, 0) + d) % len(a.tabs))
	case "ctrl+w": // with text in the input, it deletes a word, as readline does
		if !a.inputActive() || a.input.Value() == "" {
			return a.closeTab()
		}
	case "esc":
		return a.escape()
	}
	if a.cmdMode || (a.focus == focusMain && (a.pane == paneChat || a.pane == paneNone)) {
		return a.inputKey(k)
	}
	if k.Text == "/" {
		a.cmdMode = true
		a.input.SetValue("/")
		return nil
	}
	if a.focus == focusList {
		return a.listKey(k)
	}
	switch a.pane {
	case paneInbox:
		return a.inboxKey(k)
	case panePanel:
		return a.panelKey(k)
	}
	return nil
}

// escape backs out one level: a command being typed, a panel, the chat.
func (a *App) escape() tea.Cmd {
	switch {
	case a.cmdMode:
		a.cmdMode = false
		a.input.Reset()
	case a.focus == focusMain && (a.pane == panePanel || a.pane == paneInbox):
		a.panel = nil
		a.pane = paneNone
		if a.activeConv() != nil {
			a.pane = paneChat
			return a.scheduleReceipts()
		}
		a.focus = focusList
	case a.focus == focusMain:
		a.focus = focusList
		if c := a.activeConv(); c != nil {
			c.draft = a.input.Value()
			a.contacts.sel = c.peer
		}
		a.input.Reset()
	}
	return nil
}

// listKey handles keys in the contact list.
func (a *App) listKey(k tea.KeyPressMsg) tea.Cmd {
	l := &a.contacts
	switch k.String() {
	case "up", "k":
		l.move(-1)
	case "down", "j":
		l.move(1)
	case "pgup":
		l.move(-(a.h - 4))
	case "pgdown":
		l.move(a.h - 4)
	case "home", "g":
		l.move(-len(l.rows))
	case "end", "G":
		l.move(len(l.rows))
	case "enter", "l", "right":
		if c := l.selected(); c != nil && c.State == natter.ContactApproved {
			return a.open(c.User)
		}
	case "tab":
		return a.focusMain()
	case "i":
		if len(a.inbox.groups) > 0 {
			a.pane, a.focus = paneInbox, focusMain
		}
	case "a", "x", "u":
		return a.listAction(k.String())
	}
	return nil
}

// focusMain gives the keys to the main area (and the conversation's draft
// back to the input).
func (a *App) focusMain() tea.Cmd {
	if a.pane == paneNone || a.focus == focusMain {
		return nil
	}
	a.focus, a.cmdMode = focusMain, false
	if c := a.activeConv(); c != nil && a.pane == paneChat {
		a.input.SetValue(c.draft)
	}
	return a.scheduleReceipts()
}

// listAction acts on the selected contact's request or block.
func (a *App) listAction(key string) tea.Cmd {
	c := a.contacts.selected()
	if c == nil {
		return nil
	}
	var op string
	switch {
	case key == "a" && c.State == natter.ContactPendingIn:
		op = "accept"
	case key == "x" && c.State == natter.ContactPendingIn:
		op = "refuse"
	case key == "x" && c.State == natter.ContactPendingOut:
		op = "remove"
	case key == "u" && c.State == natter.ContactBlocked:
		op = "unblock"
	default:
		return nil
	}
	return a.contactOp(op, c.User)
}

// inputKey handles keys while the input line has them.
func (a *App) inputKey(k tea.KeyPressMsg) tea.Cmd {
	c := a.activeConv()
	if a.pane != paneChat {
		c = nil
	}
	switch k.String() {
	case "enter":
		text := a.input.Value()
		a.input.Reset()
		wasCmd := a.cmdMode
		a.cmdMode = false
		if strings.HasPrefix(text, "/") && !strings.HasPrefix(text, "//") {
			return a.command(text)
		}
		if wasCmd {
			return nil
		}
		text = strings.TrimPrefix(text, "/") // "//" sends a line that starts with "/"
		if strings.TrimSpace(text) == "" {
			return nil
		}
		if c == nil {
			a.setNotice(true, "open a conversation first (enter on a contact), or type a /command")
			return nil
		}
		return a.send(c, text)
	case "tab":
		a.complete()
		return nil
	case "pgup", "pgdown", "ctrl+home", "ctrl+end":
		if c != nil {
			return a.scrollKey(c, k.String())
		}
		return nil
	}
	before := a.input.Value()
	var cmd tea.Cmd
	a.input, cmd = a.input.Update(k)
	if a.cmdMode && a.input.Value() == "" {
		a.cmdMode = false
	}
	if c != nil && a.input.Value() != before && !strings.HasPrefix(a.input.Value(), "/") && a.input.Value() != "" {
		return tea.Batch(cmd, a.typing(c.peer))
	}
	return cmd
}

// scrollKey scrolls a conversation by pages, or to either end.
func (a *App) scrollKey(c *conv, key string) tea.Cmd {
	w, h := a.dialogSize()
	switch key {
	case "pgup":
		c.scrollUp(max(h-2, 1), w, h, &a.lk)
	case "pgdown":
		c.scrollDown(max(h-2, 1), w, &a.lk)
	case "ctrl+home":
		c.scrollUp(1<<30, w, h, &a.lk)
	case "ctrl+end":
		c.toBottom()
	}
	return a.checkOlder()
}

// open opens (or switches to) the conversation with peer.
func (a *App) open(peer natter.UserID) tea.Cmd {
	i := slices.Index(a.tabs, peer)
	if i < 0 {
		a.tabs = append(a.tabs, peer)
		i = len(a.tabs) - 1
	}
	return a.switchTo(i)
}

// switchTo shows the conversation of tab i.
func (a *App) switchTo(i int) tea.Cmd {
	if c := a.activeConv(); c != nil && a.pane == paneChat && !a.cmdMode {
		c.draft = a.input.Value()
	}
	a.active = i
	c := a.conv(a.tabs[i])
	a.pane, a.focus, a.cmdMode, a.panel = paneChat, focusMain, false, nil
	a.contacts.sel = c.peer
	a.input.SetValue(c.draft)
	a.input.Placeholder = fmt.Sprintf("message %s · / for commands", c.peer)
	c.unread = 0
	cmds := []tea.Cmd{a.scheduleReceipts(), a.checkOlder()}
	if !c.pathAsked {
		c.pathAsked = true
		cmds = append(cmds, a.openDirect(c.peer), a.safety(c.peer, false))
	}
	return tea.Batch(cmds...)
}

// closeTab closes the conversation on screen.
func (a *App) closeTab() tea.Cmd {
	if a.pane != paneChat || a.activeConv() == nil {
		return nil
	}
	a.tabs = slices.Delete(a.tabs, a.active, a.active+1)
	if len(a.tabs) == 0 {
		a.active, a.pane, a.focus = -1, paneNone, focusList
		a.input.Reset()
		return nil
	}
	return a.switchTo(min(a.active, len(a.tabs)-1))
}

// setNotice shows a line in the status bar.
func (a *App) setNotice(bad bool, format string, args ...any) {
	a.notice, a.bad = clean(fmt.Sprintf(format, args...), false), bad
}
