package tui

import (
	"context"
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
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
		{"/close", "", "close the conversation"},
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
		{"ctrl-w", "close the conversation (the input empty)"},
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
