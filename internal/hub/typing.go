package hub

import (
	"context"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// Typing notifications a user may send per second (per node), in bursts:
// a client sends one every few seconds while its user types, to one
// contact at a time. More are dropped.
const (
	typingPerSecond = 4
	typingBurst     = 8
)

// typing relays an ephemeral "typing" signal to an approved contact's
// online devices, quiet ones excepted. It is never stored and has no
// answer: typing to someone who is not an approved contact, and typing
// over the rate, is dropped without a word (the sender has nothing to do
// about it, and a refusal would tell a blocked user they are blocked).
func (c *client) typing(ctx context.Context, m *wire.Typing) {
	h := c.h
	if ok, _ := h.typingLimit.Allow(c.user, h.now()); !ok {
		h.met.rateLimited.WithLabelValues("typing").Inc()
		return
	}
	if natter.ValidateUserID(string(m.To)) != nil {
		return
	}
	st, err := h.cfg.Store.ContactState(ctx, c.user, m.To)
	if err != nil {
		c.log.Warn("typing: contact state", "to", m.To, "err", err)
		return
	}
	if st != natter.ContactApproved {
		return
	}
	b, _ := wire.Encode(wire.TypingIn{From: c.user})
	h.publish(ctx, m.To, event{kind: evLive, frame: b})
	h.met.typing.Inc()
}
