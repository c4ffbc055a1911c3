package tui

import (
	"context"
	"errors"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
	"github.com/natterim/natter/seal"
)

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
