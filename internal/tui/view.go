package tui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
)

// View draws the screen: a top bar, the contact list and the main area
// side by side (or one of them when narrow), and a status line.
func (a *App) View() tea.View {
	var v tea.View
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = a.title()
	switch {
	case a.login != nil:
		content, cur := a.login.view(a.w, a.h, a.lk.st)
		v.SetContent(content)
		v.Cursor = cur
	case a.sess != nil:
		content, cur := a.screen()
		v.SetContent(content)
		v.Cursor = cur
	}
	return v
}

// title is the terminal's title: the unread count first, so that it shows
// in a task bar.
func (a *App) title() string {
	t := "natter"
	if a.sess == nil {
		return t
	}
	if n := a.totalUnread(); n > 0 {
		t = fmt.Sprintf("(%d) %s", n, t)
	}
	t += " — " + string(a.sess.User)
	if c := a.activeConv(); c != nil && a.onScreen(c) {
		t += " · " + string(c.peer)
	}
	return t
}

// Layout.
func (a *App) listWidth() int  { return min(max(a.w/4, 24), 34) }
func (a *App) bodyHeight() int { return max(a.h-2, 3) }

func (a *App) mainWidth() int {
	if a.wide() {
		return a.w - a.listWidth() - 1
	}
	return a.w
}

// chrome is how many lines of the chat area are not the dialog.
func (a *App) chrome(c *conv) int {
	n := 1 + 1 + 1 + a.input.Height() // header, typing, rule, input
	if len(a.tabs) > 1 {
		n++
	}
	if c != nil {
		if c.keyChanged {
			n += 2
		}
		n += len(c.transfers)
	}
	return n
}

// dialogSize is the size of the dialog of the conversation on screen.
func (a *App) dialogSize() (int, int) {
	return a.mainWidth(), max(a.bodyHeight()-a.chrome(a.activeConv()), 1)
}

// layout sizes the input line for the current screen: the main area's
// width, or the whole last line for a command typed from elsewhere.
func (a *App) layout() {
	w := a.mainWidth()
	if a.cmdMode {
		w = a.w
	}
	if w = max(w, 10); a.input.Width() != w {
		a.input.SetWidth(w)
	}
}

// inputView is the input line as the chat or welcome area shows it: the
// input itself when it has the keys, else a dim reminder of the draft.
func (a *App) inputView(draft, hint string) []string {
	if !a.cmdMode && a.focus == focusMain {
		return strings.Split(a.input.View(), "\n")
	}
	if draft == "" {
		draft = hint
	}
	return []string{a.lk.st.dim.Render("› " + strings.ReplaceAll(draft, "\n", " "))}
}

// screen renders the main screens.
func (a *App) screen() (string, *tea.Cursor) {
	a.layout()
	st := a.lk.st
	bh := a.bodyHeight()
	var body []string
	var cur *tea.Cursor
	mainX := 0
	switch {
	case a.wide():
		lw := a.listWidth()
		list := a.contacts.view(lw, bh, a.focus == focusList && !a.cmdMode, a.unread, a.now(), &a.lk)
		main, c := a.mainView(a.w-lw-1, bh)
		sep := st.rule.Render("│")
		body = make([]string, bh)
		for i := range body {
			body[i] = list[i] + sep + main[i]
		}
		mainX, cur = lw+1, c
	case a.focus == focusList:
		body = a.contacts.view(a.w, bh, !a.cmdMode, a.unread, a.now(), &a.lk)
	default:
		body, cur = a.mainView(a.w, bh)
	}
	if cur != nil {
		cur.X += mainX
		cur.Y++
	}
	// Every part is exactly as wide as its place: only the bars are fitted.
	lines := make([]string, 0, a.h)
	lines = append(lines, fit(a.topBar(), a.w))
	lines = append(lines, body...)
	if a.cmdMode {
		in := strings.Split(a.input.View(), "\n")
		lines = lines[:len(lines)-len(in)+1]
		for _, l := range in {
			lines = append(lines, fit(l, a.w))
		}
		if c := a.input.Cursor(); c != nil {
			c.Y += len(lines) - len(in)
			cur = c
		}
	} else {
		lines = append(lines, fit(a.statusLine(), a.w))
	}
	return strings.Join(lines, "\n"), cur
}

// topBar shows who the user is, how they appear, and the connection.
func (a *App) topBar() string {
	st := a.lk.st
	me := st.presence(a.myStatus).Render(marker(a.myStatus)+" "+string(a.sess.User)) +
		st.dim.Render(" "+string(a.myStatus))
	if a.myText != "" {
		me += st.dim.Render(" “" + clean(a.myText, false) + "”")
	}
	left := st.title.Render("natter") + "  " + me
	right := ""
	if n := a.totalUnread(); n > 0 {
		right = st.badge.Render(fmt.Sprintf("%d unread", n))
	}
	if a.conn != "" {
		right = st.warn.Render(a.conn) + "  " + right
	}
	gap := a.w - visibleWidth(left) - visibleWidth(right)
	if gap < 1 {
		return cut(left, a.w)
	}
	return left + strings.Repeat(" ", gap) + right
}

// statusLine is the last line: the latest notice, or what the keys do.
func (a *App) statusLine() string {
	st := a.lk.st
	if a.notice != "" {
		if a.bad {
			return st.err.Render(a.notice)
		}
		return st.dim.Render(a.notice)
	}
	if a.focus == focusList {
		return st.dim.Render(a.contacts.hint())
	}
	return st.dim.Render("esc: contacts · alt-1…9: conversations · /help")
}

// mainView renders the main area in w×h cells.
func (a *App) mainView(w, h int) ([]string, *tea.Cursor) {
	switch a.pane {
	case paneChat:
		if c := a.activeConv(); c != nil {
			return a.chatView(c, w, h)
		}
	case paneInbox:
		return a.inbox.view(w, h, a), nil
	case panePanel:
		if a.panel != nil {
			return a.panel.view(w, h, a), nil
		}
	}
	return a.welcome(w, h)
}

// welcome fills the main area when no conversation is open.
func (a *App) welcome(w, h int) ([]string, *tea.Cursor) {
	st := a.lk.st
	out := []string{
		"",
		"  " + st.title.Render("Welcome to natter, "+string(a.sess.User)+"."),
		"",
		"  Choose a contact and press enter to chat,",
		"  or type a command: /add NAME, /status away, /help.",
	}
	if n := a.inbox.count(); n > 0 {
		out = append(out, "", "  "+st.dim.Render(fmt.Sprintf("/inbox shows the %s that arrived while you were away", plural(n, "message"))))
	}
	in := a.inputView("", "/ types a command")
	for len(out) < h-len(in)-1 {
		out = append(out, "")
	}
	out = append(out[:h-len(in)-1], st.rule.Render(strings.Repeat("─", w)))
	var cur *tea.Cursor
	if a.focus == focusMain && !a.cmdMode {
		cur = a.input.Cursor()
		if cur != nil {
			cur.Y += len(out)
		}
	}
	out = append(out, in...)
	for i := range out {
		out[i] = fit(out[i], w)
	}
	return out, cur
}

// chatView renders a conversation: header, tabs, warning, dialog,
// transfers, "is typing", input.
func (a *App) chatView(c *conv, w, h int) ([]string, *tea.Cursor) {
	st := a.lk.st
	out := make([]string, 0, h)
	out = append(out, a.chatHeader(c, w))
	if len(a.tabs) > 1 {
		out = append(out, a.tabBar(w))
	}
	if c.keyChanged {
		out = append(out,
			st.warn.Render(fit(fmt.Sprintf("⚠ %s's identity key changed since you verified it: nothing is sent to them.", c.peer), w)),
			st.warn.Render(fit(fmt.Sprintf("  Compare safety numbers (/verify), then /verify confirm %s.", c.peer), w)))
	}
	for i := range out {
		out[i] = fit(out[i], w)
	}
	dw, dh := a.dialogSize()
	dialog, _ := c.view(dw, dh, &a.lk) // lines of exactly dw cells
	if c.newBelow > 0 && !c.follow {
		dialog[len(dialog)-1] = fit(st.badge.Render(fmt.Sprintf("  ↓ %s below (ctrl-end)", plural(c.newBelow, "new message"))), dw)
	}
	out = append(out, dialog...)
	rest := len(out)
	for _, t := range c.transfers {
		out = append(out, transferLine(t, "sending", w, a))
	}
	typing := ""
	if c.typing {
		typing = st.note.Render(string(c.peer) + " is typing…")
	}
	out = append(out, typing, st.rule.Render(strings.Repeat("─", w)))
	var cur *tea.Cursor
	if a.focus == focusMain && !a.cmdMode {
		if cur = a.input.Cursor(); cur != nil {
			cur.Y += len(out)
		}
	}
	out = append(out, a.inputView(c.draft, "tab comes back to "+string(c.peer))...)
	for len(out) < h {
		out = append(out, "")
	}
	for i := rest; i < len(out); i++ {
		out[i] = fit(out[i], w)
	}
	return out[:h], cur
}

// chatHeader names the peer, their presence, the path and its round trip.
func (a *App) chatHeader(c *conv, w int) string {
	st := a.lk.st
	status := natter.StatusOffline
	text := ""
	if ct := a.contacts.byUser[c.peer]; ct != nil {
		if ct.Status != "" {
			status = ct.Status
		}
		text = ct.Text
		if status == natter.StatusOffline {
			text = lastSeen(ct.LastSeen, ct.Text, a.now(), a.lk.loc)
		}
	}
	h := st.presence(status).Bold(true).Render(marker(status)+" "+string(c.peer)) + st.dim.Render(" "+string(status))
	if text != "" {
		h += st.dim.Render(" · " + text)
	}
	if c.verified {
		h += st.online.Render(" · ✓ verified")
	}
	path := pathLabel(c.path)
	if c.rtt > 0 {
		path += fmt.Sprintf(" %d ms", c.rtt.Milliseconds())
	}
	right := st.dim.Render("path: ") + st.bold.Render(path)
	gap := w - visibleWidth(h) - visibleWidth(right)
	if gap < 2 {
		return cut(h, w)
	}
	return h + strings.Repeat(" ", gap) + right
}

// pathLabel names a path in a word.
func pathLabel(p string) string {
	if p == "" {
		return "server"
	}
	return p
}

// tabBar lists the open conversations: alt-N goes to the Nth.
func (a *App) tabBar(w int) string {
	st := a.lk.st
	var parts []string
	for i, peer := range a.tabs {
		label := fmt.Sprintf(" %d %s", i+1, peer)
		if c := a.convs[peer]; c != nil && c.unread > 0 {
			label += fmt.Sprintf(" (%d)", c.unread)
		}
		label += " "
		if i == a.active {
			parts = append(parts, st.tabActive.Render(label))
		} else {
			parts = append(parts, st.tab.Render(label))
		}
	}
	return cut(strings.Join(parts, st.rule.Render("│")), w)
}
