//go:build js

package webapp

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// pump reads c's events until it is closed, keeps what they carry, and
// hands them to the page.
func (a *App) pump(c *client.Client) {
	for ev := range c.Events() {
		a.mu.Lock()
		current := a.c == c
		a.mu.Unlock()
		if !current {
			continue
		}
		a.handle(c, ev)
	}
}

func ms(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMilli())
}

func (a *App) handle(c *client.Client, ev client.Event) {
	switch e := ev.(type) {
	case client.ContactsEvent:
		a.mu.Lock()
		a.contacts = map[natter.UserID]*contact{}
		for _, ct := range e.Contacts {
			a.contacts[ct.User] = &contact{Contact: ct}
		}
		a.mu.Unlock()
		for _, ct := range e.Contacts {
			a.countUnread(ct.User, false)
		}
		a.saveContacts()
		a.send("contacts", map[string]any{"contacts": a.contactsJS()})
	case client.ContactEvent:
		a.mu.Lock()
		ct, ok := a.contacts[e.User]
		if !ok {
			ct = &contact{}
			a.contacts[e.User] = ct
		}
		unread := ct.unread
		ct.Contact = e.Contact
		if e.State == natter.ContactNone {
			delete(a.contacts, e.User)
		}
		a.mu.Unlock()
		a.saveContacts()
		a.send("contact", map[string]any{"contact": contactJS(&contact{Contact: e.Contact, unread: unread})})
	case client.PresenceEvent:
		a.mu.Lock()
		if ct, ok := a.contacts[e.User]; ok {
			ct.Status, ct.Text, ct.LastSeen = e.Status, e.Text, e.LastSeen
		}
		a.mu.Unlock()
		a.send("presence", map[string]any{"name": string(e.User), "presence": presence(e.Status),
			"text": e.Text, "lastSeen": ms(e.LastSeen)})
	case client.MessageEvent:
		r := a.recordOf(e.Message, e.Path, e.OpenErr, e.File)
		peer := a.peerOf(e.Message)
		if err := a.keep(peer, r); err != nil {
			a.log.Warn("keep a message", "err", err)
		}
		a.send("message", map[string]any{"message": recordJS(r), "offline": e.Offline})
		if r.From == string(peer) {
			a.countUnread(peer, true)
		}
	case client.InboxEvent:
		var groups []any
		touched := map[natter.UserID]bool{}
		for _, g := range e.Groups {
			var msgs []any
			for _, m := range g.Messages {
				path := client.PathServer
				if m.Direct {
					path = client.PathDirect
				}
				var file *client.FileInfo
				if f, ok := client.FileOf(m.Body); ok {
					file = f
				}
				r := a.recordOf(m.Message, path, e.OpenErrs[m.ID], file)
				peer := a.peerOf(m.Message)
				if err := a.keep(peer, r); err != nil {
					a.log.Warn("keep a message", "err", err)
				}
				touched[peer] = true
				msgs = append(msgs, recordJS(r))
			}
			for _, rc := range g.Receipts {
				a.receipt(client.ReceiptEvent{Rcpt: rc})
			}
			if len(msgs) > 0 {
				groups = append(groups, map[string]any{"from": string(g.From), "messages": msgs})
			}
		}
		for peer := range touched {
			a.countUnread(peer, true)
		}
		a.send("inbox", map[string]any{"groups": orEmpty(groups), "done": e.Done})
	case client.ReceiptEvent:
		a.receipt(e)
	case client.TypingEvent:
		a.send("typing", map[string]any{"from": string(e.From)})
	case client.PathEvent:
		a.send("path", map[string]any{"peer": string(e.Peer), "path": e.Path, "rtt": float64(e.RTT.Microseconds()) / 1000})
	case client.KeysEvent:
		a.mu.Lock()
		self := a.user
		a.mu.Unlock()
		if e.User == self {
			go a.checkApproval(c)
			return
		}
		msg := ""
		if e.Err != nil {
			msg = e.Err.Error()
		}
		a.send("keys", map[string]any{"user": string(e.User), "changed": e.Changed, "verified": e.Verified, "error": msg})
	case client.ConnEvent:
		a.mu.Lock()
		a.online = e.Up
		a.mu.Unlock()
		msg := ""
		if e.Err != nil {
			msg = e.Err.Error()
		}
		if e.Final {
			a.forget()
		}
		a.send("conn", map[string]any{"up": e.Up, "final": e.Final, "error": msg})
	}
}

// saveContacts keeps the contact list, so that the page shows it while
// natterd cannot be reached (with everyone offline).
func (a *App) saveContacts() {
	a.mu.Lock()
	list := make([]wire.Contact, 0, len(a.contacts))
	for _, ct := range a.contacts {
		c := ct.Contact
		c.Status = natter.StatusOffline
		list = append(list, c)
	}
	user := a.user
	a.mu.Unlock()
	b, err := json.Marshal(list)
	if err == nil {
		err = a.s.put("kv", string(b), "contacts/"+string(user))
	}
	if err != nil {
		a.log.Warn("keep the contact list", "err", err)
	}
}

// loadContacts reads the contact list kept by saveContacts.
func (a *App) loadContacts(user natter.UserID) map[natter.UserID]*contact {
	out := map[natter.UserID]*contact{}
	v, ok, err := a.s.get("kv", "contacts/"+string(user))
	if err != nil || !ok {
		return out
	}
	var list []wire.Contact
	if json.Unmarshal([]byte(v), &list) != nil {
		return out
	}
	for _, c := range list {
		out[c.User] = &contact{Contact: c}
	}
	return out
}

// receipt moves the user's messages a contact's receipt covers.
func (a *App) receipt(e client.ReceiptEvent) {
	a.mu.Lock()
	self := a.user
	a.mu.Unlock()
	if e.From == self || e.To != self {
		return // the user's own receipt, from another device
	}
	a.mu.Lock()
	if a.receipts[e.From] == nil {
		a.receipts[e.From] = map[natter.ReceiptState]client.ReceiptEvent{}
	}
	a.receipts[e.From][e.State] = e
	a.mu.Unlock()
	a.applyReceipt(e)
}

// applyReceipt moves the user's messages in the history that e covers,
// and tells the page.
func (a *App) applyReceipt(e client.ReceiptEvent) {
	a.mu.Lock()
	h := a.hist
	a.mu.Unlock()
	state := string(e.State)
	moved, err := h.advance(string(e.From), e, state)
	if err != nil {
		a.log.Warn("receipt", "err", err)
		return
	}
	if len(moved) > 0 {
		a.send("state", map[string]any{"peer": string(e.From), "ids": strs(moved), "state": state})
	}
}

// peerOf is the other side of a message's conversation.
func (a *App) peerOf(m wire.Message) natter.UserID {
	a.mu.Lock()
	defer a.mu.Unlock()
	if m.From == a.user {
		return m.To
	}
	return m.From
}

// recordOf makes the history's record of a message.
func (a *App) recordOf(m wire.Message, path string, openErr error, file *client.FileInfo) record {
	a.mu.Lock()
	self := a.user
	a.mu.Unlock()
	r := record{ID: string(m.ID), From: string(m.From), To: string(m.To), At: int64(ms(m.SentAt)),
		Path: path, Seq: m.ConvSeq, File: file, State: "received"}
	if m.From == self {
		r.State = "sent"
	}
	switch {
	case openErr != nil:
		r.Text = "⚠ this message could not be opened: " + openErr.Error()
	case file == nil:
		r.Text = string(m.Body)
	}
	if r.At == 0 {
		r.At = time.Now().UnixMilli()
	}
	return r
}

// keep adds r to the history, keeping the state it already reached.
func (a *App) keep(peer natter.UserID, r record) error {
	a.mu.Lock()
	h := a.hist
	a.mu.Unlock()
	if old, err := h.get(string(peer), r.ID); err == nil && old != nil && stateRank[old.State] > stateRank[r.State] {
		r.State = old.State
	}
	if err := h.add(string(peer), r); err != nil {
		return err
	}
	if r.File != nil {
		return a.s.put("kv", string(peer), "file/"+h.owner+"/"+r.ID)
	}
	return nil
}

// countUnread recounts peer's unread messages and, if tell, tells the page.
func (a *App) countUnread(peer natter.UserID, tell bool) {
	a.mu.Lock()
	h := a.hist
	a.mu.Unlock()
	last, _, _ := a.s.get("kv", "read/"+h.owner+"/"+string(peer))
	n, _, err := h.unread(string(peer), last)
	if err != nil {
		a.log.Warn("unread", "err", err)
		return
	}
	a.mu.Lock()
	if ct, ok := a.contacts[peer]; ok {
		ct.unread = n
	}
	a.mu.Unlock()
	if tell {
		a.send("unread", map[string]any{"peer": string(peer), "unread": n})
	}
}

func presence(s natter.Status) string {
	switch s {
	case natter.StatusOnline, natter.StatusAway, natter.StatusBusy:
		return string(s)
	}
	return string(natter.StatusOffline)
}

func contactJS(c *contact) map[string]any {
	return map[string]any{"name": string(c.User), "state": string(c.State), "presence": presence(c.Status),
		"text": c.Text, "lastSeen": ms(c.LastSeen), "unread": c.unread}
}

func (a *App) contactsJS() []any {
	a.mu.Lock()
	defer a.mu.Unlock()
	names := make([]natter.UserID, 0, len(a.contacts))
	for n := range a.contacts {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]any, 0, len(names))
	for _, n := range names {
		out = append(out, contactJS(a.contacts[n]))
	}
	return out
}

func recordJS(r record) map[string]any {
	var file any
	if r.File != nil {
		file = map[string]any{"name": r.File.Name, "size": float64(r.File.Size), "type": r.File.Type}
	}
	return map[string]any{"id": r.ID, "from": r.From, "to": r.To, "text": r.Text, "at": float64(r.At),
		"state": r.State, "path": r.Path, "file": file}
}

func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func orEmpty(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}
