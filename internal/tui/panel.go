package tui

import (
	"context"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/natterim/natter"
)

// panel is what a command shows in the main area: help, search results,
// the safety number, the devices, the files. Some lines are items that
// enter acts on.
type panel struct {
	kind  panelKind
	title string
	lines []string
	items []panelItem
	sel   int
	top   int
}

type panelKind uint8

const (
	panelText panelKind = iota
	panelSearch
	panelDevices
	panelFiles
)

// panelItem is a line enter acts on.
type panelItem struct {
	line   int
	peer   natter.UserID
	id     natter.MessageID
	device natter.DeviceID
}

// panelMsg brings a panel that a Cmd made.
type panelMsg struct {
	gen int
	p   *panel
}

func (a *App) showPanel(m panelMsg) tea.Cmd {
	if a.cmdMode {
		a.cmdMode = false
		a.input.Reset()
	}
	a.panel, a.pane, a.focus = m.p, panePanel, focusMain
	return nil
}

// panelKey handles keys in a panel.
func (a *App) panelKey(k tea.KeyPressMsg) tea.Cmd {
	p := a.panel
	if p == nil {
		return nil
	}
	switch k.String() {
	case "up", "k":
		if len(p.items) > 0 {
			p.sel = max(p.sel-1, 0)
		} else {
			p.top = max(p.top-1, 0)
		}
	case "down", "j":
		if len(p.items) > 0 {
			p.sel = min(p.sel+1, len(p.items)-1)
		} else {
			p.top++
		}
	case "pgup":
		p.top = max(p.top-(a.h-4), 0)
	case "pgdown":
		p.top += a.h - 4
	case "enter":
		if p.sel < len(p.items) {
			return a.panelAction(p.items[p.sel])
		}
	}
	return nil
}

// panelAction acts on an item: opens a search hit, approves a device.
func (a *App) panelAction(it panelItem) tea.Cmd {
	switch a.panel.kind {
	case panelSearch:
		a.panel = nil
		cmd := a.open(it.peer)
		c := a.conv(it.peer)
		if c.index(it.id) >= 0 {
			a.jump(c, it.id)
			return cmd
		}
		c.want = it.id // the page being read, or the next, brings it
		if a.sess.Local == nil || c.loading {
			return cmd
		}
		return tea.Batch(cmd, a.readPages(c, it.id))
	case panelDevices:
		dev := it.device
		return a.call("approved device "+string(dev)+": your contacts now seal messages for it", func(ctx context.Context, b Backend) error {
			return b.ApproveDevice(ctx, dev)
		})
	}
	return nil
}

// view renders the panel in w×h cells.
func (p *panel) view(w, h int, a *App) []string {
	st := a.lk.st
	lines := p.lines
	if p.kind == panelFiles {
		lines = a.filesLines()
	}
	if len(p.items) == 0 { // text: wrap what does not fit
		var wrapped []string
		for _, l := range lines {
			if visibleWidth(l) <= w {
				wrapped = append(wrapped, l)
				continue
			}
			for j, part := range strings.Split(ansi.Wrap(l, max(w-4, 10), " "), "\n") {
				if j > 0 {
					part = "    " + part
				}
				wrapped = append(wrapped, part)
			}
		}
		lines = wrapped
	}
	all := append([]string{st.title.Render(p.title), st.dim.Render(p.hint())}, lines...)
	selLine := -1
	if p.sel < len(p.items) {
		selLine = p.items[p.sel].line + 2
		if selLine < p.top+2 {
			p.top = max(selLine-2, 0)
		}
		if selLine >= p.top+h {
			p.top = selLine - h + 1
		}
	}
	p.top = max(min(p.top, len(all)-h), 0)
	out := make([]string, 0, h)
	for i := p.top; i < len(all) && len(out) < h; i++ {
		l := fit(all[i], w)
		if i == selLine {
			l = st.sel.Render(fit(stripANSI(all[i]), w))
		}
		out = append(out, l)
	}
	for len(out) < h {
		out = append(out, strings.Repeat(" ", w))
	}
	return out
}

func (p *panel) hint() string {
	switch p.kind {
	case panelSearch:
		return "enter opens the conversation at the message · esc closes"
	case panelDevices:
		return "enter approves the selected device · esc closes"
	}
	return "esc closes"
}
