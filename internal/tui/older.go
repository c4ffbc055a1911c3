package tui

import (
	"context"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/history"
)

// pageMsg is a page of the local history (or several), older than what a
// conversation shows.
type pageMsg struct {
	gen     int
	peer    natter.UserID
	entries []history.Entry
	cursor  history.Cursor
	err     error
}

// checkOlder reads an older page of the conversation on screen when its
// top is near: the user scrolls back through the history without waiting.
func (a *App) checkOlder() tea.Cmd {
	c := a.activeConv()
	if c == nil || a.pane != paneChat || !c.more || c.loading || a.sess.Local == nil {
		return nil
	}
	w, h := a.dialogSize()
	if c.loaded {
		if _, top := c.view(w, h, &a.lk); top > h {
			return nil
		}
	}
	return a.readPages(c, "")
}

// readPages reads the page before what c has; with target, it goes on
// until that message is read (or the history ends).
func (a *App) readPages(c *conv, target natter.MessageID) tea.Cmd {
	c.loading, c.loaded = true, true
	local, gen, peer, cursor := a.sess.Local, a.gen, c.peer, c.cursor
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		var all []history.Entry
		for {
			page, next, err := local.Page(ctx, peer, cursor, pageSize)
			if err != nil {
				return pageMsg{gen: gen, peer: peer, entries: all, cursor: cursor, err: err}
			}
			all = append(page, all...)
			cursor = next
			if target == "" || next == "" || containsID(page, target) {
				return pageMsg{gen: gen, peer: peer, entries: all, cursor: next}
			}
		}
	}
}

func containsID(es []history.Entry, id natter.MessageID) bool {
	for _, e := range es {
		if e.ID == id {
			return true
		}
	}
	return false
}

// page puts an older page before the conversation.
func (a *App) page(m pageMsg) tea.Cmd {
	if m.gen != a.gen {
		return nil
	}
	c := a.conv(m.peer)
	c.loading = false
	if m.err != nil {
		a.setNotice(true, "read the history with %s: %v", m.peer, m.err)
		c.more = false
		return nil
	}
	c.cursor = m.cursor
	c.more = m.cursor != ""
	c.prepend(m.entries)
	if c.want != "" {
		if c.index(c.want) >= 0 || !c.more {
			a.jump(c, c.want)
			c.want = ""
			return nil
		}
		return a.readPages(c, c.want)
	}
	return a.checkOlder()
}

// jump scrolls c to a message and highlights it.
func (a *App) jump(c *conv, id natter.MessageID) {
	i := c.index(id)
	if i < 0 {
		a.setNotice(true, "that message is not in the history with %s any more", c.peer)
		return
	}
	c.mark = id
	w, h := a.dialogSize()
	c.scrollTo(i, w, h, &a.lk)
}
