package tui

import (
	"context"
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"
)

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
