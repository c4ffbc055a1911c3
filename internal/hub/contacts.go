package hub

import (
	"context"
	"fmt"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

func (c *client) contactOp(ctx context.Context, m *wire.ContactOp) {
	h := c.h
	if err := natter.ValidateUserID(string(m.User)); err != nil {
		c.fail(m.Ref, fmt.Errorf("%w: no such user %q", natter.ErrNoSuchUser, m.User))
		return
	}
	if m.Op == natter.OpAdd && c.limited(h.contactLimit, m.Ref, "contact requests") {
		return
	}
	// The old states tell who needs to hear of the change.
	oldTheirs, err := h.cfg.Store.ContactState(ctx, m.User, c.user)
	if err != nil {
		c.fail(m.Ref, err)
		return
	}
	oldMine, err := h.cfg.Store.ContactState(ctx, c.user, m.User)
	if err != nil {
		c.fail(m.Ref, err)
		return
	}
	mine, theirs, err := h.cfg.Store.UpdateContact(ctx, c.user, m.User, m.Op)
	if err != nil {
		c.fail(m.Ref, err)
		return
	}
	c.push(wire.OK{Ref: m.Ref})
	c.log.Info("contact", "op", m.Op, "peer", m.User, "mine", mine, "theirs", theirs)

	if mine != oldMine {
		h.pushContact(ctx, c.user, m.User, mine)
	}
	if theirs != oldTheirs {
		h.pushContact(ctx, m.User, c.user, theirs)
	}
	if mine == natter.ContactApproved && oldMine != natter.ContactApproved {
		// Newly connected: each side learns how to reach the other's devices.
		h.pushReachOf(ctx, c.user, m.User)
		h.pushReachOf(ctx, m.User, c.user)
	}
}

// pushContact tells owner's devices that their row for peer is now state,
// with peer's presence if approved.
func (h *Hub) pushContact(ctx context.Context, owner, peer natter.UserID, state natter.ContactState) {
	u := wire.ContactUpdate{Contact: wire.Contact{User: peer, State: state}}
	if state == natter.ContactApproved {
		p, _, err := h.presence(ctx, peer)
		if err != nil {
			h.log.Error("presence", "user", peer, "err", err)
		}
		u.Status, u.Text, u.LastSeen = p.Status, p.Text, p.LastSeen
	}
	b, _ := wire.Encode(u)
	h.publish(ctx, owner, event{kind: evFrame, frame: b})
}

// pushReachOf sends to's devices the connection info of user's devices.
func (h *Hub) pushReachOf(ctx context.Context, to, user natter.UserID) {
	for _, b := range h.reachFrames(ctx, user) {
		h.publish(ctx, to, event{kind: evFrame, frame: b})
	}
}

// requireContact checks that peer is an approved contact of the user,
// answering request ref with an error if not. Approval is always mutual,
// and a block clears the blocked side's row, so the user's own row decides.
func (c *client) requireContact(ctx context.Context, ref uint64, peer natter.UserID) bool {
	st, err := c.h.cfg.Store.ContactState(ctx, c.user, peer)
	if err != nil {
		c.fail(ref, err)
		return false
	}
	if st != natter.ContactApproved {
		c.push(wire.Error{Ref: ref, Code: wire.CodeNotContact, Message: fmt.Sprintf("%s is not your contact", peer)})
		return false
	}
	return true
}
