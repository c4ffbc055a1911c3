package tui

import (
	"context"
	"errors"
	"fmt"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/seal"
)

// sentMsg is the result of sending a message.
type sentMsg struct {
	gen  int
	peer natter.UserID
	id   natter.MessageID
	res  client.SendResult
	err  error
}

// send shows text at once as "sending" and sends it in a Cmd, under a
// message ID chosen here (so that a retry could keep exactly-once).
func (a *App) send(c *conv, text string) tea.Cmd {
	if c.keyChanged {
		a.input.SetValue(text)
		a.setNotice(true, "%s's identity key changed: compare safety numbers with /verify, then /verify confirm", c.peer)
		return nil
	}
	now := a.now()
	id := natter.NewMessageID(now)
	me := a.sess.User
	c.add(&entry{id: id, from: me, out: true, text: clean(text, true), at: now, state: stateSending})
	c.toBottom()
	b, local, gen, peer := a.sess.Backend, a.sess.Local, a.gen, c.peer
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		res, err := b.SendID(ctx, id, peer, []byte(text))
		if err == nil && local != nil {
			local.RecordSent(context.WithoutCancel(ctx), peer, text, res)
		}
		return sentMsg{gen: gen, peer: peer, id: id, res: res, err: err}
	}
}

// sent applies the result of a send to the message on screen.
func (a *App) sent(m sentMsg) tea.Cmd {
	if m.gen != a.gen {
		return nil
	}
	c := a.conv(m.peer)
	e, ok := c.byKey[msgKey{a.sess.User, m.id}]
	if !ok {
		return nil
	}
	e.lines = nil // the time may change
	if m.err != nil {
		e.state, e.err = stateFailed, sendErr(m.err, m.peer)
		if errors.Is(m.err, seal.ErrKeyChanged) {
			c.keyChanged, c.verified = true, false
		}
		return nil
	}
	e.state, e.convSeq, e.path = stateSent, m.res.ConvSeq, m.res.Path
	if !m.res.SentAt.IsZero() {
		e.at = m.res.SentAt
	}
	if m.res.Path == client.PathDirect || m.res.Path == client.PathRelayed {
		e.state = stateDelivered // the peer's device acknowledged it on the channel
	}
	return nil
}

// sendErr explains why a message was not sent.
func sendErr(err error, peer natter.UserID) string {
	switch {
	case errors.Is(err, seal.ErrKeyChanged):
		return fmt.Sprintf("%s's key changed: /verify", peer)
	case errors.Is(err, client.ErrDeviceNotApproved):
		return "this device is not approved yet: approve it from another of your devices (/devices)"
	case errors.Is(err, client.ErrNoKeys):
		return fmt.Sprintf("%s has no end-to-end keys yet", peer)
	case errors.Is(err, client.ErrConnLost):
		return "the connection dropped"
	}
	return err.Error()
}
