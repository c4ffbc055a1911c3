package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
	"github.com/natterim/natter/seal"
)

// command is one IRC-style command of the input line.
type command struct {
	name, args, help string
}

// commands lists the input line's commands, for /help and completion.
func commands() []command {
	return []command{
		{"/accept", "NAME", "accept NAME's contact request"},
		{"/add", "NAME", "ask NAME to be your contact"},
		{"/block", "NAME", "block NAME"},
		{"/close", "", "close the conversation (ctrl-w)"},
		{"/devices", "[approve ID]", "your devices; approve a new one"},
		{"/files", "", "fetch the files that arrived"},
		{"/help", "", "this list"},
		{"/inbox", "", "show what arrived while you were away"},
		{"/logout", "", "end the session on this device"},
		{"/open", "NAME", "open the conversation with NAME"},
		{"/quit", "", "leave natter (ctrl-c)"},
		{"/refuse", "NAME", "refuse NAME's contact request"},
		{"/remove", "NAME", "remove a contact, or cancel a request"},
		{"/search", "TEXT", "search the history on this device"},
		{"/send", "PATH", "send a file to the contact on screen"},
		{"/status", "STATUS [TEXT]", "online, away or busy: what your contacts see"},
		{"/unblock", "NAME", "lift a block"},
		{"/verify", "[confirm] [NAME]", "the safety number; confirm: verified"},
	}
}

// command runs a line that starts with "/".
func (a *App) command(line string) tea.Cmd {
	fields := strings.Fields(line)
	name, args := fields[0], fields[1:]
	rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), name))
	switch name {
	case "/add", "/accept", "/refuse", "/remove", "/block", "/unblock":
		u, ok := a.userArg(args, name)
		if !ok {
			return nil
		}
		return a.contactOp(name[1:], u)
	case "/open", "/msg", "/query":
		u, ok := a.userArg(args, name)
		if !ok {
			return nil
		}
		return a.open(u)
	case "/status":
		return a.setStatus(args, rest)
	case "/send":
		c := a.activeConv()
		if c == nil || a.pane != paneChat {
			a.setNotice(true, "/send sends to the conversation on screen: open one first")
			return nil
		}
		if rest == "" {
			a.setNotice(true, "usage: /send PATH")
			return nil
		}
		return a.sendFile(c, rest)
	case "/files":
		return a.files()
	case "/search":
		return a.search(rest)
	case "/verify":
		return a.verify(args)
	case "/devices":
		return a.devices(args)
	case "/logout":
		return a.logout()
	case "/help":
		return a.help()
	case "/inbox":
		if len(a.inbox.groups) == 0 {
			a.setNotice(false, "nothing arrived while you were away")
			return nil
		}
		a.pane, a.focus = paneInbox, focusMain
		return nil
	case "/close":
		return a.closeTab()
	case "/quit", "/exit":
		return a.quit()
	}
	a.setNotice(true, "%s is not a command: /help lists them", name)
	return nil
}

// userArg is the NAME of a command: given, or the contact on screen or
// selected.
func (a *App) userArg(args []string, cmd string) (natter.UserID, bool) {
	var name string
	switch {
	case len(args) > 0:
		name = args[0]
	case a.pane == paneChat && a.activeConv() != nil && a.focus == focusMain:
		name = string(a.activeConv().peer)
	case a.contacts.selected() != nil:
		name = string(a.contacts.sel)
	}
	if name == "" {
		a.setNotice(true, "usage: %s NAME", cmd)
		return "", false
	}
	if err := natter.ValidateUserID(name); err != nil {
		a.setNotice(true, "%s: %v", cmd, err)
		return "", false
	}
	return natter.UserID(name), true
}

// contactOp acts on a relationship.
func (a *App) contactOp(op string, u natter.UserID) tea.Cmd {
	if u == a.sess.User {
		a.setNotice(true, "that is you")
		return nil
	}
	done := map[string]string{
		"add":     "asked %s to be your contact",
		"accept":  "%s is your contact now",
		"refuse":  "refused %s's request",
		"remove":  "removed %s",
		"block":   "blocked %s",
		"unblock": "unblocked %s",
	}[op]
	return a.call(fmt.Sprintf(done, u), func(ctx context.Context, b Backend) error {
		switch op {
		case "add":
			return b.Add(ctx, u)
		case "accept":
			return b.Accept(ctx, u)
		case "refuse":
			return b.Refuse(ctx, u)
		case "remove":
			return b.Remove(ctx, u)
		case "block":
			return b.Block(ctx, u)
		}
		return b.Unblock(ctx, u)
	})
}

// setStatus is /status online|away|busy [TEXT].
func (a *App) setStatus(args []string, rest string) tea.Cmd {
	if len(args) == 0 || !natter.Status(args[0]).Valid() {
		a.setNotice(true, "usage: /status online|away|busy [TEXT]")
		return nil
	}
	st := natter.Status(args[0])
	text := strings.TrimSpace(strings.TrimPrefix(rest, args[0]))
	if len(text) > natter.MaxStatusText {
		a.setNotice(true, "the status text is %d bytes long; the limit is %d", len(text), natter.MaxStatusText)
		return nil
	}
	a.myStatus, a.myText = st, text
	save := a.sess.SaveStatus
	return a.call("status: "+string(st), func(ctx context.Context, b Backend) error {
		if err := b.SetPresence(ctx, st, text); err != nil {
			return err
		}
		if save != nil {
			return save(st, text)
		}
		return nil
	})
}

// files fetches what arrived and shows the files panel.
func (a *App) files() tea.Cmd {
	var cmds []tea.Cmd
	if a.sess.FilesDir != "" {
		for _, f := range a.arrived {
			if f.path == "" && f.fetch == nil {
				cmds = append(cmds, a.fetch(f))
			}
		}
	}
	a.showPanel(panelMsg{p: &panel{kind: panelFiles, title: "Files (saved in " + a.sess.FilesDir + ")"}})
	return tea.Batch(cmds...)
}

// search is /search TEXT.
func (a *App) search(query string) tea.Cmd {
	local := a.sess.Local
	if local == nil {
		a.setNotice(true, "there is no history on this device to search")
		return nil
	}
	if query == "" {
		a.setNotice(true, "usage: /search TEXT")
		return nil
	}
	gen, now, loc, st := a.gen, a.now(), a.lk.loc, a.lk.st
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		hits, err := local.Search(ctx, query, 100)
		if err != nil {
			return doneMsg{gen: gen, what: "search", err: err}
		}
		p := &panel{kind: panelSearch, title: fmt.Sprintf("Search %q: %s", query, plural(len(hits), "message"))}
		for _, h := range hits {
			who := string(h.From)
			if h.Direction == "out" {
				who = "you → " + string(h.To)
			}
			snippet := strings.Join(strings.Fields(clean(h.Snippet, false)), " ")
			p.items = append(p.items, panelItem{line: len(p.lines), peer: h.Peer(), id: h.ID})
			p.lines = append(p.lines, st.dim.Render(clock(h.SentAt, now, loc))+" "+who+": "+snippet)
		}
		return panelMsg{gen: gen, p: p}
	}
}

// safetyMsg is a safety number (or a confirmed verification).
type safetyMsg struct {
	gen       int
	peer      natter.UserID
	number    string
	verified  bool
	confirmed bool
	show      bool
	err       error
}

// safety asks for the safety number with peer; show opens a panel with it.
func (a *App) safety(peer natter.UserID, show bool) tea.Cmd {
	b, gen := a.sess.Backend, a.gen
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		n, v, err := b.SafetyNumber(ctx, peer)
		return safetyMsg{gen: gen, peer: peer, number: n, verified: v, show: show, err: err}
	}
}

// verify is /verify [confirm] [NAME].
func (a *App) verify(args []string) tea.Cmd {
	confirm := len(args) > 0 && args[0] == "confirm"
	if confirm {
		args = args[1:]
	}
	peer, ok := a.userArg(args, "/verify")
	if !ok {
		return nil
	}
	if !confirm {
		return a.safety(peer, true)
	}
	c := a.conv(peer)
	number := c.safety
	if number == "" {
		a.setNotice(true, "first compare the safety number: /verify %s", peer)
		return nil
	}
	b, gen := a.sess.Backend, a.gen
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		err := b.MarkVerified(ctx, peer, number)
		return safetyMsg{gen: gen, peer: peer, number: number, verified: err == nil, confirmed: true, err: err}
	}
}

// safetyResult applies a safety number.
func (a *App) safetyResult(m safetyMsg) tea.Cmd {
	if m.gen != a.gen {
		return nil
	}
	c := a.conv(m.peer)
	changed := errors.Is(m.err, seal.ErrKeyChanged)
	if m.err != nil && !changed {
		if m.show || m.confirmed {
			a.setNotice(true, "safety number with %s: %v", m.peer, m.err)
		}
		return nil
	}
	c.safety, c.verified = m.number, m.verified
	if changed && !m.confirmed {
		c.keyChanged, c.verified = true, false
	}
	if m.confirmed {
		c.keyChanged = false
		a.setNotice(false, "%s is verified", m.peer)
		return nil
	}
	if !m.show {
		return nil
	}
	st := a.lk.st
	p := &panel{title: "Safety number with " + string(m.peer)}
	p.lines = append(p.lines, "")
	for _, l := range groupDigits(m.number) {
		p.lines = append(p.lines, "    "+st.bold.Render(l))
	}
	p.lines = append(p.lines, "")
	switch {
	case c.keyChanged:
		p.lines = append(p.lines, st.warn.Render(string(m.peer)+"'s identity key changed since you verified it."),
			"Compare the number with "+string(m.peer)+" in person or by phone; if it is the same,",
			"type /verify confirm "+string(m.peer)+" to send to them again.")
	case c.verified:
		p.lines = append(p.lines, st.online.Render(string(m.peer)+" is verified."))
	default:
		p.lines = append(p.lines, "Compare it with "+string(m.peer)+" in person or by phone; if it is the same,",
			"type /verify confirm "+string(m.peer)+".")
	}
	return a.showPanel(panelMsg{p: p})
}

// groupDigits lays a safety number out in lines of up to six groups.
func groupDigits(n string) []string {
	f := strings.Fields(n)
	if len(f) <= 1 {
		return []string{n}
	}
	var out []string
	for i := 0; i < len(f); i += 6 {
		out = append(out, strings.Join(f[i:min(i+6, len(f))], " "))
	}
	return out
}

// devices is /devices [approve ID].
func (a *App) devices(args []string) tea.Cmd {
	if len(args) == 2 && args[0] == "approve" {
		dev := natter.DeviceID(args[1])
		return a.call("approved device "+args[1]+": your contacts now seal messages for it", func(ctx context.Context, b Backend) error {
			return b.ApproveDevice(ctx, dev)
		})
	}
	if len(args) > 0 {
		a.setNotice(true, "usage: /devices, or /devices approve ID")
		return nil
	}
	b, gen, st := a.sess.Backend, a.gen, a.lk.st
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		devs, err := b.Devices(ctx)
		if err != nil {
			return doneMsg{gen: gen, what: "devices", err: err}
		}
		p := &panel{kind: panelDevices, title: "Your devices"}
		for _, d := range devs {
			line := string(d.Device)
			if d.This {
				line += " (this device)"
			}
			if d.Approved {
				line += st.dim.Render(": approved")
			} else {
				p.items = append(p.items, panelItem{line: len(p.lines), device: d.Device})
				line += st.warn.Render(": awaiting approval")
			}
			p.lines = append(p.lines, line)
		}
		return panelMsg{gen: gen, p: p}
	}
}

// help shows the commands and keys.
func (a *App) help() tea.Cmd {
	st := a.lk.st
	p := &panel{title: "natter: commands and keys"}
	for _, c := range commands() {
		p.lines = append(p.lines, st.bold.Render(fit(c.name+" "+c.args, 25))+" "+c.help)
	}
	p.lines = append(p.lines, "", st.bold.Render("keys"))
	for _, k := range [][2]string{
		{"↑ ↓ j k", "move in the list"},
		{"enter, double-click", "open the conversation"},
		{"esc", "back to the list"},
		{"alt-1 … alt-9", "go to a conversation"},
		{"ctrl-n ctrl-p", "next, previous conversation"},
		{"ctrl-w", "close the conversation"},
		{"pgup pgdn, wheel", "scroll the dialog (ctrl-end: the newest)"},
		{"enter, alt-enter", "send; a new line"},
		{"tab", "complete a name or a command"},
		{"//text", "send a line that starts with /"},
		{"a x u", "accept, refuse or cancel, unblock the selected request"},
		{"ctrl-c", "quit; the session stays, the next natter comes straight here"},
	} {
		p.lines = append(p.lines, st.bold.Render(fit(k[0], 25))+" "+k[1])
	}
	return a.showPanel(panelMsg{p: p})
}

// loggedOutMsg is the result of /logout.
type loggedOutMsg struct {
	gen int
	err error
}

// logout ends the session on the server, then lets the app forget it.
func (a *App) logout() tea.Cmd {
	if a.loggingOut {
		return nil
	}
	a.loggingOut = true
	s, gen := a.sess, a.gen
	a.setNotice(false, "logging out…")
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := s.Backend.Logout(ctx); err != nil {
			return loggedOutMsg{gen: gen, err: err}
		}
		if s.End != nil {
			if err := s.End(ctx, true); err != nil {
				return loggedOutMsg{gen: gen, err: err}
			}
		}
		return loggedOutMsg{gen: gen}
	}
}

// loggedOut goes back to the login form once /logout is through.
func (a *App) loggedOut(err error) tea.Cmd {
	a.loggingOut = false
	if err != nil {
		a.setNotice(true, "log out: %v", err)
		return nil
	}
	s := a.sess
	a.sess = nil
	a.gen++
	a.login = newLoginForm(s.Server, s.User)
	a.login.info = "logged out " + string(s.User)
	return a.login.init()
}
