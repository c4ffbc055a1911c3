package tui

import (
	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

// SentElsewhere is a message this device sent outside the UI: a natter
// command run beside it, which the natter command hands to the UI's
// connection (the SDK does not emit a Client's own sends). Session.Sent
// delivers them, so the conversation shows them as if typed here.
type SentElsewhere struct {
	To     natter.UserID
	Text   string
	Result client.SendResult
}

// sentElsewhereMsg carries one SentElsewhere to Update.
type sentElsewhereMsg struct {
	gen int
	m   SentElsewhere
}

// pumpSent reads the next message sent elsewhere, like pump for events.
func (a *App) pumpSent() tea.Cmd {
	ch, gen := a.sess.Sent, a.gen
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		m, ok := <-ch
		if !ok {
			return nil
		}
		return sentElsewhereMsg{gen: gen, m: m}
	}
}

// sentElsewhere shows a message sent elsewhere in its conversation, once.
func (a *App) sentElsewhere(msg sentElsewhereMsg) tea.Cmd {
	if msg.gen != a.gen || a.sess == nil {
		return nil
	}
	m := msg.m
	at := m.Result.SentAt
	if at.IsZero() {
		at = a.now()
	}
	e := &entry{id: m.Result.ID, from: a.sess.User, out: true, text: clean(m.Text, true), at: at,
		convSeq: m.Result.ConvSeq, path: m.Result.Path, state: stateSent}
	if m.Result.Path == client.PathDirect || m.Result.Path == client.PathRelayed {
		e.state = stateDelivered // the peer's device acknowledged it on the channel
	}
	a.conv(m.To).add(e)
	return a.pumpSent()
}
