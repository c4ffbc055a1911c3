package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// contactList is the left pane: the contacts in sections (available, offline,
// requests, blocked) with one selected.
type contactList struct {
	byUser map[natter.UserID]*wire.Contact
	rows   []row
	sel    natter.UserID // the selected contact
	top    int           // the first row on screen
	cache  map[natter.UserID]cachedRow
	// version counts changes, for views that show contacts.
	version int
}

// cachedRow is a contact's rendered line and what it was rendered from.
type cachedRow struct {
	key  rowKey
	line string
}

type rowKey struct {
	c        wire.Contact
	w        int
	unread   int
	selected bool
	minute   int64 // "last seen" moves with the clock
}

// row is a line of the list: a section title or a contact.
type row struct {
	title string
	user  natter.UserID
}

// section orders the list.
func section(c *wire.Contact) int {
	switch c.State {
	case natter.ContactApproved:
		if c.Status == "" || c.Status == natter.StatusOffline {
			return 1
		}
		return 0
	case natter.ContactPendingIn, natter.ContactPendingOut:
		return 2
	}
	return 3
}

// sectionTitle names a section of the list (the first has no title).
func sectionTitle(s int) string {
	switch s {
	case 1:
		return "offline"
	case 2:
		return "requests"
	case 3:
		return "blocked"
	}
	return ""
}

// set replaces the whole list (after a login or resume).
func (l *contactList) set(list []wire.Contact) {
	l.byUser = make(map[natter.UserID]*wire.Contact, len(list))
	l.cache = nil
	for i := range list {
		c := list[i]
		c.Text = clean(c.Text, false)
		l.byUser[c.User] = &c
	}
	l.rebuild()
}

// update applies a change to one relationship.
func (l *contactList) update(c wire.Contact) {
	if l.byUser == nil {
		l.byUser = map[natter.UserID]*wire.Contact{}
	}
	if c.State == natter.ContactNone {
		delete(l.byUser, c.User)
	} else {
		old, ok := l.byUser[c.User]
		if ok && c.State == natter.ContactApproved && c.Status == "" {
			c.Status, c.Text, c.LastSeen = old.Status, old.Text, old.LastSeen // keep the presence we know
		}
		c.Text = clean(c.Text, false)
		l.byUser[c.User] = &c
	}
	l.rebuild()
}

// presence applies a contact's new presence.
func (l *contactList) presence(p wire.Presence) {
	c, ok := l.byUser[p.User]
	if !ok {
		return
	}
	c.Status, c.Text, c.LastSeen = p.Status, clean(p.Text, false), p.LastSeen
	l.rebuild()
}

// rebuild sorts the contacts into rows, keeping the selection (or selecting
// the first contact).
func (l *contactList) rebuild() {
	l.version++
	users := make([]*wire.Contact, 0, len(l.byUser))
	for _, c := range l.byUser {
		users = append(users, c)
	}
	slices.SortFunc(users, func(a, b *wire.Contact) int {
		if sa, sb := section(a), section(b); sa != sb {
			return sa - sb
		}
		if a.State != b.State { // requests: incoming first
			return strings.Compare(string(a.State), string(b.State))
		}
		return strings.Compare(string(a.User), string(b.User))
	})
	l.rows = l.rows[:0]
	last := -1
	for _, c := range users {
		if s := section(c); s != last {
			if s > 0 {
				l.rows = append(l.rows, row{title: sectionTitle(s)})
			}
			last = s
		}
		l.rows = append(l.rows, row{user: c.User})
	}
	if _, ok := l.byUser[l.sel]; !ok {
		l.sel = ""
		for _, r := range l.rows {
			if r.user != "" {
				l.sel = r.user
				break
			}
		}
	}
}

// selected returns the selected contact, if any.
func (l *contactList) selected() *wire.Contact {
	return l.byUser[l.sel]
}

// move moves the selection by d contacts.
func (l *contactList) move(d int) {
	i := l.selRow()
	for i+d >= 0 && i+d < len(l.rows) {
		i += d
		if l.rows[i].user != "" {
			l.sel = l.rows[i].user
			return
		}
	}
}

// selRow is the row of the selection (0 if none).
func (l *contactList) selRow() int {
	for i, r := range l.rows {
		if r.user != "" && r.user == l.sel {
			return i
		}
	}
	return 0
}

// names returns every contact's name, sorted (for completion).
func (l *contactList) names() []string {
	out := make([]string, 0, len(l.byUser))
	for u := range l.byUser {
		out = append(out, string(u))
	}
	slices.Sort(out)
	return out
}

// view renders the list in w×h cells.
func (l *contactList) view(w, h int, focused bool, unread func(natter.UserID) int, now time.Time, lk *look) []string {
	st := lk.st
	out := make([]string, 0, h)
	title := st.title.Render("contacts")
	if n := len(l.byUser); n > 0 {
		title += st.dim.Render(fmt.Sprintf(" (%d)", n))
	}
	out = append(out, fit(title, w))
	h--
	if len(l.rows) == 0 {
		out = append(out, fit(st.dim.Render("no contacts yet:"), w), fit(st.dim.Render("/add NAME"), w))
	}
	sel := l.selRow()
	if sel < l.top {
		l.top = sel
	}
	if sel >= l.top+h {
		l.top = sel - h + 1
	}
	l.top = max(min(l.top, len(l.rows)-h), 0)
	for i := l.top; i < len(l.rows) && len(out) < h+1; i++ {
		r := l.rows[i]
		if r.user == "" {
			head := "── " + r.title + " "
			out = append(out, fit(st.dim.Render(head+strings.Repeat("─", max(w-visibleWidth(head), 0))), w))
			continue
		}
		c := l.byUser[r.user]
		k := rowKey{c: *c, w: w, unread: unread(r.user), selected: focused && r.user == l.sel, minute: now.Unix() / 60}
		if cr, ok := l.cache[r.user]; ok && cr.key == k {
			out = append(out, cr.line)
			continue
		}
		line := l.rowText(c, w, k.unread, k.selected, now, lk)
		if l.cache == nil {
			l.cache = map[natter.UserID]cachedRow{}
		}
		l.cache[r.user] = cachedRow{k, line}
		out = append(out, line)
	}
	for len(out) < h+1 {
		out = append(out, strings.Repeat(" ", w))
	}
	return out
}

// rowText is one contact's line: marker, name, unread count and status,
// in reverse video if selected.
func (l *contactList) rowText(c *wire.Contact, w, unread int, selected bool, now time.Time, lk *look) string {
	st := lk.st
	name := string(c.User)
	badge := ""
	if unread > 0 {
		badge = fmt.Sprintf(" (%d)", unread)
	}
	var mark, info string
	style := st.offline
	switch c.State {
	case natter.ContactApproved:
		status := c.Status
		if status == "" {
			status = natter.StatusOffline
		}
		style, mark = st.presence(status), marker(status)
		if status == natter.StatusOffline {
			info = lastSeen(c.LastSeen, c.Text, now, lk.loc)
		} else {
			info = c.Text
			if info == "" && status != natter.StatusOnline {
				info = string(status)
			}
		}
	case natter.ContactPendingIn:
		mark, info, style = "?", "wants to add you", st.warn
	case natter.ContactPendingOut:
		mark, info = "…", "request sent"
	case natter.ContactBlocked:
		mark, info = "✕", "blocked"
	}
	rev := func(s lipgloss.Style) lipgloss.Style { return s.Reverse(selected) }
	s := rev(style).Render(mark+" "+name) + rev(st.badge).Render(badge)
	if info != "" {
		s += rev(style.Faint(true)).Render(" " + info)
	}
	if pad := w - ansi.StringWidth(s); pad > 0 {
		s += rev(lipgloss.NewStyle()).Render(strings.Repeat(" ", pad))
	}
	return fit(s, w)
}

// hint says what the keys do for the selected contact.
func (l *contactList) hint() string {
	c := l.selected()
	if c == nil {
		return "/add NAME asks someone to be your contact · /help"
	}
	switch c.State {
	case natter.ContactPendingIn:
		return "a: accept " + string(c.User) + " · x: refuse"
	case natter.ContactPendingOut:
		return "x: cancel the request to " + string(c.User)
	case natter.ContactBlocked:
		return "u: unblock " + string(c.User)
	}
	return "enter: chat with " + string(c.User) + " · /: command · ctrl-c: quit"
}
