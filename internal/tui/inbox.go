package tui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

// inboxView shows what arrived while the user was away, grouped by sender:
// each sender once, their messages in order under the name. Enter opens
// the selected sender's conversation.
type inboxView struct {
	groups []*inboxGroup
	sel    int
	top    int // first line on screen
	done   bool

	// The lines, built again only when what they show changes.
	key     inboxKey
	lines   []string
	selLine int
}

type inboxKey struct {
	n, sel, w int
	minute    int64
	contacts  int // a version of the contact list (presence colours)
}

type inboxGroup struct {
	from  natter.UserID
	items []*entry
}

// inboxEvent takes one part of the stored inbox that follows a login.
func (a *App) inboxEvent(ev client.InboxEvent) tea.Cmd {
	me := a.sess.User
	var cmds []tea.Cmd
	for _, g := range ev.Groups {
		for _, m := range g.Messages {
			path := client.PathServer
			if m.Direct {
				path = client.PathDirect
			}
			cmds = append(cmds, a.message(m.Message, path, ev.OpenErrs[m.ID], false))
			if m.From == me {
				continue
			}
			c := a.conv(m.From)
			if e, ok := c.byKey[msgKey{m.From, m.ID}]; ok {
				a.inbox.add(m.From, e)
			}
		}
		for _, r := range g.Receipts {
			a.receipt(client.ReceiptEvent{Rcpt: r})
		}
	}
	if ev.Done && !a.inbox.done {
		a.inbox.done = true
		if len(a.inbox.groups) > 0 && a.pane == paneNone {
			a.pane, a.focus = paneInbox, focusMain
			if a.cfg.Bell {
				cmds = append(cmds, tea.Raw("\a"))
			}
		}
	}
	return tea.Batch(cmds...)
}

// add puts a message under its sender, making the group the first time.
func (v *inboxView) add(from natter.UserID, e *entry) {
	for _, g := range v.groups {
		if g.from == from {
			g.items = append(g.items, e)
			return
		}
	}
	v.groups = append(v.groups, &inboxGroup{from: from, items: []*entry{e}})
}

// count is how many messages the inbox holds.
func (v *inboxView) count() int {
	n := 0
	for _, g := range v.groups {
		n += len(g.items)
	}
	return n
}

// inboxKey handles keys in the inbox view.
func (a *App) inboxKey(k tea.KeyPressMsg) tea.Cmd {
	v := &a.inbox
	switch k.String() {
	case "up", "k":
		v.sel = max(v.sel-1, 0)
	case "down", "j":
		v.sel = min(v.sel+1, len(v.groups)-1)
	case "enter":
		if v.sel < len(v.groups) {
			return a.open(v.groups[v.sel].from)
		}
	}
	return nil
}

// view renders the inbox in w×h cells.
func (v *inboxView) view(w, h int, a *App) []string {
	k := inboxKey{n: v.count(), sel: v.sel, w: w, minute: a.now().Unix() / 60, contacts: a.contacts.version}
	if k != v.key || v.lines == nil {
		v.key = k
		v.lines, v.selLine = v.build(a)
	}
	lines, selLine := v.lines, v.selLine
	if selLine < v.top {
		v.top = max(selLine-1, 0)
	}
	if selLine >= v.top+h {
		v.top = selLine - h + 2
	}
	v.top = max(min(v.top, len(lines)-h), 0)
	out := make([]string, 0, h)
	for i := v.top; i < len(lines) && len(out) < h; i++ {
		out = append(out, fit(lines[i], w))
	}
	for len(out) < h {
		out = append(out, strings.Repeat(" ", w))
	}
	return out
}

// build makes every line of the inbox, and says which is the selected
// sender's.
func (v *inboxView) build(a *App) ([]string, int) {
	st := a.lk.st
	var lines []string
	selLine := 0
	lines = append(lines, st.title.Render(fmt.Sprintf("While you were away: %s from %s", plural(v.count(), "message"), plural(len(v.groups), "contact"))))
	lines = append(lines, st.dim.Render("enter opens the conversation · j/k choose · esc closes"))
	for i, g := range v.groups {
		lines = append(lines, "")
		if i == v.sel {
			selLine = len(lines)
		}
		status := natter.StatusOffline
		if c := a.contacts.byUser[g.from]; c != nil && c.Status != "" {
			status = c.Status
		}
		head := st.presence(status).Bold(true).Render(marker(status)+" "+string(g.from)) + st.dim.Render(fmt.Sprintf(" (%d)", len(g.items)))
		if i == v.sel {
			head = st.sel.Render("›") + " " + head
		} else {
			head = "  " + head
		}
		lines = append(lines, head)
		for _, e := range g.items {
			text := strings.ReplaceAll(e.text, "\n", " ⏎ ")
			lines = append(lines, "    "+st.dim.Render(clock(e.at, a.now(), a.lk.loc))+" "+text)
		}
	}
	return lines, selLine
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
