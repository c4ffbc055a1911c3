package tui

import (
	"context"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
)

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
