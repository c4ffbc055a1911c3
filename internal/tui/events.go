package tui

import (
	"context"
	"fmt"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// eventMsg carries one SDK event (or what Config.Translate made of it).
type eventMsg struct {
	gen int
	ev  client.Event
	msg tea.Msg
}

// eventsClosedMsg says the SDK closed its event channel.
type eventsClosedMsg struct{ gen int }

// pump reads the next event: a Cmd per event, issued again after each, so
// the SDK's channel is read as fast as the UI takes events. The event is
// recorded (history, files) in the Cmd, off the UI's goroutine.
func (a *App) pump() tea.Cmd {
	ch, local, gen, translate := a.sess.Backend.Events(), a.sess.Local, a.gen, a.cfg.Translate
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return eventsClosedMsg{gen}
		}
		if local != nil {
			local.Record(context.Background(), ev)
		}
		if translate != nil {
			if m := translate(ev); m != nil {
				return eventMsg{gen: gen, msg: m}
			}
		}
		return eventMsg{gen: gen, ev: ev}
	}
}

// sessionMsg handles the messages that belong to the live session.
func (a *App) sessionMsg(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case eventMsg:
		if msg.gen != a.gen {
			return nil
		}
		var cmd tea.Cmd
		if msg.msg != nil {
			cmd = a.sessionMsg(msg.msg)
		} else {
			cmd = a.event(msg.ev)
		}
		if a.sess == nil {
			return cmd
		}
		return tea.Batch(cmd, a.pump())
	case eventsClosedMsg:
		if msg.gen == a.gen && !a.quitting {
			a.conn = "disconnected"
		}
	case TypingMsg:
		return a.typingFrom(msg.From)
	case sentElsewhereMsg:
		return a.sentElsewhere(msg)
	case typingOverMsg:
		if c, ok := a.convs[msg.peer]; ok && c.typingGen == msg.gen {
			c.typing = false
		}
	case contactsMsg:
		if msg.gen == a.gen && msg.err == nil {
			a.contacts.set(msg.list)
		}
	case doneMsg:
		if msg.gen != a.gen {
			return nil
		}
		if msg.err != nil {
			a.setNotice(true, "%s: %v", msg.what, msg.err)
		} else if msg.what != "" {
			a.setNotice(false, "%s", msg.what)
		}
	case sentMsg:
		return a.sent(msg)
	case pageMsg:
		return a.page(msg)
	case pathMsg:
		// The SDK's PathEvents are the truth: the answer to OpenDirect
		// counts only if none came meanwhile.
		if c := a.conv(msg.peer); msg.gen == a.gen && c.pathSeq == msg.seq {
			c.path, c.rtt = msg.path, msg.rtt
		}
	case safetyMsg:
		return a.safetyResult(msg)
	case flushMsg:
		if msg.gen == a.gen {
			a.flushPending = false
			return a.flushReceipts()
		}
	case receiptSentMsg:
		a.receiptSent(msg)
	case transferMsg:
		return a.transferUpdate(msg)
	case panelMsg:
		if msg.gen == a.gen {
			return a.showPanel(msg)
		}
	case loggedOutMsg:
		if msg.gen == a.gen {
			return a.loggedOut(msg.err)
		}
	}
	return nil
}

// event applies one SDK event.
func (a *App) event(ev client.Event) tea.Cmd {
	switch ev := ev.(type) {
	case client.MessageEvent:
		return a.message(ev.Message, ev.Path, ev.OpenErr, true)
	case client.InboxEvent:
		return a.inboxEvent(ev)
	case client.ReceiptEvent:
		a.receipt(ev)
	case client.ContactsEvent:
		a.contacts.set(ev.Contacts)
	case client.ContactEvent:
		a.contacts.update(ev.Contact)
		return a.contactNotice(ev.Contact)
	case client.PresenceEvent:
		a.contacts.presence(ev.Presence)
	case client.PathEvent:
		c := a.conv(ev.Peer)
		c.path, c.rtt = ev.Path, ev.RTT
		c.pathSeq++
	case client.KeysEvent:
		a.keys(ev)
	case client.ConnEvent:
		switch {
		case ev.Final:
			why := "the session ended"
			if ev.Err != nil {
				why = fmt.Sprintf("the session ended: %v", ev.Err)
			}
			return a.end(why + ": log in again")
		case ev.Up:
			a.conn = ""
			a.setNotice(false, "connected again")
		default:
			a.conn = "reconnecting…"
		}
	}
	return nil
}

// message shows a message that arrived (live, or in the inbox).
func (a *App) message(m wire.Message, path string, openErr error, live bool) tea.Cmd {
	me := a.sess.User
	peer := peerOf(m, me)
	c := a.conv(peer)
	e := fromWire(m, me, path, openErr)
	if !c.add(e) {
		return nil
	}
	if f, ok := client.FileOf(m.Body); ok && m.From != me && openErr == nil {
		a.arrived = append(a.arrived, &arrivedFile{id: m.ID, from: m.From, at: m.SentAt, file: *f})
	}
	if m.From == me {
		return nil
	}
	c.typing = false
	c.maxIn = max(c.maxIn, m.ConvSeq)
	c.lastIn, c.lastInSeq = m.ID, m.ConvSeq
	c.inCount++
	var cmds []tea.Cmd
	if !a.onScreen(c) {
		c.unread++
		if live && a.cfg.Bell {
			cmds = append(cmds, tea.Raw("\a"))
		}
	}
	return tea.Batch(append(cmds, a.scheduleReceipts())...)
}

// receipt applies a receipt: the peer's moves the user's messages on; the
// user's own (from another device) clears the unread count if it covers
// the peer's newest message.
func (a *App) receipt(r client.ReceiptEvent) {
	me := a.sess.User
	switch {
	case r.To == me && r.From != me:
		a.conv(r.From).receipt(r)
	case r.From == me && r.State == natter.ReceiptRead:
		if c, ok := a.convs[r.To]; ok && (c.lastIn == "" || r.Covers(c.lastIn, c.lastInSeq)) {
			c.unread = 0
		}
	}
}

// contactNotice says what a change to a relationship means.
func (a *App) contactNotice(c wire.Contact) tea.Cmd {
	switch c.State {
	case natter.ContactPendingIn:
		a.setNotice(false, "%s wants to be your contact: /accept %s or /refuse %s", c.User, c.User, c.User)
		if a.cfg.Bell {
			return tea.Raw("\a")
		}
	case natter.ContactApproved:
		a.setNotice(false, "%s is your contact", c.User)
	}
	return nil
}

// keys warns about a change of a contact's keys.
func (a *App) keys(ev client.KeysEvent) {
	now := a.now()
	switch {
	case ev.User == a.sess.User:
		if len(ev.Pending) > 0 {
			a.setNotice(false, "a new device of yours awaits approval: /devices")
		}
	case ev.Err != nil:
		c := a.conv(ev.User)
		c.keyChanged, c.verified = true, false
		c.note(now, fmt.Sprintf("%s's identity key changed since you verified it: nothing is sent until you compare safety numbers again (/verify)", ev.User))
		a.setNotice(true, "%s's identity key changed: /verify %s", ev.User, ev.User)
	case ev.Changed:
		a.conv(ev.User).note(now, fmt.Sprintf("%s's identity key changed (a new phone, or someone in the middle?): /verify compares safety numbers", ev.User))
	}
}

// contactsMsg is the answer to Contacts.
type contactsMsg struct {
	gen  int
	list []wire.Contact
	err  error
}

func (a *App) fetchContacts() tea.Cmd {
	b, gen := a.sess.Backend, a.gen
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		list, err := b.Contacts(ctx)
		return contactsMsg{gen, list, err}
	}
}

// pathMsg is how opening a peer-to-peer channel ended.
type pathMsg struct {
	gen  int
	seq  int // the conversation's pathSeq when it was asked
	peer natter.UserID
	path string
	rtt  time.Duration
	err  error
}

// openDirect tries a peer-to-peer channel to peer (the SDK falls back to
// the server by itself); PathEvents then keep the header current.
func (a *App) openDirect(peer natter.UserID) tea.Cmd {
	b, gen, seq := a.sess.Backend, a.gen, a.conv(peer).pathSeq
	return func() tea.Msg {
		if path, rtt := b.PathTo(peer); path != "" && path != client.PathServer {
			return pathMsg{gen: gen, seq: seq, peer: peer, path: path, rtt: rtt}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		path, rtt, err := b.OpenDirect(ctx, peer)
		if err != nil {
			path = client.PathServer
		}
		return pathMsg{gen: gen, seq: seq, peer: peer, path: path, rtt: rtt, err: err}
	}
}

// typingOverMsg ends a "typing" that was not renewed.
type typingOverMsg struct {
	peer natter.UserID
	gen  int
}

// typingFrom shows that peer is typing, for typingTTL.
func (a *App) typingFrom(peer natter.UserID) tea.Cmd {
	c := a.conv(peer)
	c.typing = true
	c.typingGen++
	g := c.typingGen
	return tea.Tick(typingTTL, func(time.Time) tea.Msg { return typingOverMsg{peer, g} })
}

// typing tells peer the user is typing, at most every typingEvery.
func (a *App) typing(peer natter.UserID) tea.Cmd {
	now := a.now()
	if last, ok := a.typingSent[peer]; ok && now.Sub(last) < typingEvery {
		return nil
	}
	a.typingSent[peer] = now
	b := a.sess.Backend
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		_ = b.SendTyping(ctx, peer) // best effort: a lost one only hides "is typing"
		return nil
	}
}
