package hub

import (
	"context"
	"fmt"
	"net"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// approved returns user's approved contacts.
func (h *Hub) approved(ctx context.Context, user natter.UserID) ([]natter.UserID, error) {
	cs, err := h.cfg.Store.Contacts(ctx, user)
	if err != nil {
		return nil, err
	}
	var out []natter.UserID
	for _, c := range cs {
		if c.State == natter.ContactApproved {
			out = append(out, c.User)
		}
	}
	return out, nil
}

// presence computes user's presence from the registry (and, when offline,
// the stored last-seen time and status text).
func (h *Hub) presence(ctx context.Context, user natter.UserID) (natter.Presence, []natter.LiveSession, error) {
	ss, err := h.cfg.Registry.Sessions(ctx, user)
	if err != nil {
		return natter.Presence{}, nil, err
	}
	p := natter.PresenceOf(user, ss, timeZero)
	if p.Status == natter.StatusOffline {
		ls, err := h.cfg.Store.LastSeen(ctx, []natter.UserID{user})
		if err != nil {
			return p, ss, err
		}
		p.LastSeen, p.Text = ls[user].At, ls[user].Text
	}
	return p, ss, nil
}

// announce recomputes user's presence and pushes it to every approved
// contact. When the user has just gone offline (no session but quiet ones
// left) it records last seen first, and sends it with the status text the
// user last set (which the Store keeps: the live sessions that carried it
// are gone). Only the start and end of real (not quiet) sessions, and
// their SetPresence, call it.
func (h *Hub) announce(ctx context.Context, user natter.UserID) {
	ss, err := h.cfg.Registry.Sessions(ctx, user)
	if err != nil {
		h.log.Error("presence", "user", user, "err", err)
		return
	}
	p := natter.PresenceOf(user, ss, timeZero)
	if p.Status == natter.StatusOffline {
		p.LastSeen = h.now()
		if err := h.cfg.Store.SetLastSeen(ctx, user, p.LastSeen); err != nil {
			h.log.Error("set last seen", "user", user, "err", err)
		}
		if ls, err := h.cfg.Store.LastSeen(ctx, []natter.UserID{user}); err != nil {
			h.log.Error("read status text", "user", user, "err", err)
		} else {
			p.Text = ls[user].Text
		}
	}
	if len(ss) == 0 {
		h.revoke(user)
	}
	h.publishPresence(ctx, p)
}

// revoke ends user's relay allocations: they end with the user's last
// session, quiet ones included.
func (h *Hub) revoke(user natter.UserID) {
	if r, ok := h.cfg.ICE.(interface{ Revoke(natter.UserID) int }); ok {
		r.Revoke(user)
	}
}

// revokeIfGone ends user's relay allocations if no session of theirs is
// left.
func (h *Hub) revokeIfGone(ctx context.Context, user natter.UserID) {
	ss, err := h.cfg.Registry.Sessions(ctx, user)
	if err != nil {
		h.log.Error("sessions", "user", user, "err", err)
		return
	}
	if len(ss) == 0 {
		h.revoke(user)
	}
}

// samePresence reports whether contacts would see a and b alike.
func samePresence(a, b natter.Presence) bool {
	return a.Status == b.Status && a.Text == b.Text && a.LastSeen.Equal(b.LastSeen)
}

// publishPresence pushes p to every approved contact of p.User.
func (h *Hub) publishPresence(ctx context.Context, p natter.Presence) {
	user := p.User
	contacts, err := h.approved(ctx, user)
	if err != nil {
		h.log.Error("presence contacts", "user", user, "err", err)
		return
	}
	if len(contacts) == 0 {
		return
	}
	b, _ := wire.Encode(presenceFrame(p))
	for _, to := range contacts {
		h.publish(ctx, to, event{kind: evFrame, frame: b})
	}
	h.met.presencePushes.Add(float64(len(contacts)))
}

func presenceFrame(p natter.Presence) wire.Presence {
	return wire.Presence{User: p.User, Status: p.Status, Text: p.Text, LastSeen: p.LastSeen}
}

// sendContacts sends the user's whole contact list, with presence for
// approved contacts, answering ref (0: pushed after login).
func (c *client) sendContacts(ctx context.Context, ref uint64) error {
	h := c.h
	cs, err := h.cfg.Store.Contacts(ctx, c.user)
	if err != nil {
		return err
	}
	out := wire.Contacts{Ref: ref, Contacts: make([]wire.Contact, 0, len(cs))}
	var offline []natter.UserID
	for _, k := range cs {
		wc := wire.Contact{User: k.User, State: k.State}
		if k.State == natter.ContactApproved {
			ss, err := h.cfg.Registry.Sessions(ctx, k.User)
			if err != nil {
				return err
			}
			p := natter.PresenceOf(k.User, ss, timeZero)
			wc.Status, wc.Text = p.Status, p.Text
			if p.Status == natter.StatusOffline {
				offline = append(offline, k.User)
			}
		}
		out.Contacts = append(out.Contacts, wc)
	}
	if len(offline) > 0 {
		ls, err := h.cfg.Store.LastSeen(ctx, offline)
		if err != nil {
			return err
		}
		for i := range out.Contacts {
			if s, ok := ls[out.Contacts[i].User]; ok && out.Contacts[i].Status == natter.StatusOffline {
				out.Contacts[i].LastSeen, out.Contacts[i].Text = s.At, s.Text
			}
		}
	}
	c.push(out)
	return nil
}

// sendContactsReach sends the connection info of every online approved
// contact's devices.
func (c *client) sendContactsReach(ctx context.Context) {
	contacts, err := c.h.approved(ctx, c.user)
	if err != nil {
		c.log.Error("reach contacts", "err", err)
		return
	}
	for _, u := range contacts {
		c.sendReachOf(ctx, u)
	}
}

// sendReachOf sends the connection info of user's devices to this client.
func (c *client) sendReachOf(ctx context.Context, user natter.UserID) {
	for _, b := range c.h.reachFrames(ctx, user) {
		c.pushFrame(b)
	}
}

// reachFrames returns encoded Reach frames for every device of user that
// registered connection info.
func (h *Hub) reachFrames(ctx context.Context, user natter.UserID) [][]byte {
	ss, err := h.cfg.Registry.Sessions(ctx, user)
	if err != nil {
		h.log.Error("reach", "user", user, "err", err)
		return nil
	}
	var out [][]byte
	for _, s := range ss {
		if len(s.Reach) > 0 {
			b, _ := wire.Encode(wire.Reach{User: s.User, Device: s.Device, Candidates: s.Reach})
			out = append(out, b)
		}
	}
	return out
}

// publishReach tells user's approved contacts how device can be reached
// (nil: no longer).
func (h *Hub) publishReach(ctx context.Context, user natter.UserID, device natter.DeviceID, cands []natter.Candidate) {
	contacts, err := h.approved(ctx, user)
	if err != nil {
		h.log.Error("reach contacts", "user", user, "err", err)
		return
	}
	if cands == nil {
		cands = []natter.Candidate{}
	}
	b, _ := wire.Encode(wire.Reach{User: user, Device: device, Candidates: cands})
	for _, to := range contacts {
		h.publish(ctx, to, event{kind: evFrame, frame: b})
	}
}

// setPresence sets the connection's status and status text.
//
// On a quiet connection the text is kept as on any other (it is the user's
// status text, shown while they are offline), and both are recorded in the
// live session, but the status shows nowhere (presence leaves quiet
// sessions out). Contacts hear only of what they see change: the kept text
// of a user who has no real session online.
func (c *client) setPresence(ctx context.Context, m *wire.SetPresence) {
	if !m.Status.Valid() {
		c.fail(m.Ref, fmt.Errorf("%w: status must be online, away or busy", natter.ErrBadRequest))
		return
	}
	if len(m.Text) > natter.MaxStatusText {
		c.fail(m.Ref, fmt.Errorf("%w: status text over %d bytes", natter.ErrBadRequest, natter.MaxStatusText))
		return
	}
	var before natter.Presence
	if c.quiet {
		var err error
		if before, _, err = c.h.presence(ctx, c.user); err != nil {
			c.fail(m.Ref, err)
			return
		}
	}
	// The text is kept for when the user is offline: stored before the
	// answer, so that an OK means it is kept. Most SetPresence frames
	// (the SDK's after every reconnect) repeat the stored text, and cost a
	// read, not a write.
	if err := c.h.keepStatusText(ctx, c.user, m.Text); err != nil {
		c.fail(m.Ref, err)
		return
	}
	c.status, c.text = m.Status, m.Text
	if err := c.h.cfg.Registry.Put(ctx, c.liveSession()); err != nil {
		c.fail(m.Ref, err)
		return
	}
	c.push(wire.OK{Ref: m.Ref})
	if !c.quiet {
		c.h.announce(ctx, c.user)
		return
	}
	after, _, err := c.h.presence(ctx, c.user)
	if err != nil {
		c.log.Error("presence", "err", err)
		return
	}
	if !samePresence(before, after) {
		c.h.publishPresence(ctx, after)
	}
}

// keepStatusText stores text as the status text user last set, unless the
// Store holds it already.
func (h *Hub) keepStatusText(ctx context.Context, user natter.UserID, text string) error {
	ls, err := h.cfg.Store.LastSeen(ctx, []natter.UserID{user})
	if err != nil {
		return fmt.Errorf("read status text: %w", err)
	}
	if ls[user].Text == text {
		return nil
	}
	if err := h.cfg.Store.SetStatusText(ctx, user, text); err != nil {
		return fmt.Errorf("keep status text: %w", err)
	}
	return nil
}

// Limits on connection info.
const (
	maxCandidates = 32
	maxAddrLen    = 300
)

func (c *client) setReach(ctx context.Context, m *wire.SetReach) {
	if c.quiet {
		// Contacts are never to dial a device that is offline to them.
		c.fail(m.Ref, fmt.Errorf("%w: a quiet session takes no connection info", natter.ErrBadRequest))
		return
	}
	if len(m.Candidates) > maxCandidates {
		c.fail(m.Ref, fmt.Errorf("%w: at most %d candidates", natter.ErrBadRequest, maxCandidates))
		return
	}
	for _, k := range m.Candidates {
		if len(k.Addr) > maxAddrLen || len(k.Type) > 16 || len(k.Proto) > 16 {
			c.fail(m.Ref, fmt.Errorf("%w: candidate fields too long", natter.ErrBadRequest))
			return
		}
		if _, _, err := net.SplitHostPort(k.Addr); err != nil {
			c.fail(m.Ref, fmt.Errorf("%w: candidate address %q is not host:port", natter.ErrBadRequest, k.Addr))
			return
		}
	}
	c.reach = append([]natter.Candidate(nil), m.Candidates...)
	if err := c.h.cfg.Registry.Put(ctx, c.liveSession()); err != nil {
		c.fail(m.Ref, err)
		return
	}
	c.push(wire.OK{Ref: m.Ref})
	c.h.publishReach(ctx, c.user, c.device, c.reach)
}
