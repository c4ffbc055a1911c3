package client

import (
	"context"
	"fmt"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// SendTyping tells the contact to that the user is typing to them: they get
// a TypingEvent. It goes over the peer-to-peer channel to them if one is up,
// else through natterd to their online devices. It is ephemeral: never
// stored, nothing reaches a contact who is offline, and it is not
// acknowledged; natterd drops it silently if to is not an approved contact
// or the user sends more than a few a second. Call it every few seconds
// while the user types; the receiving app shows it for a few seconds. It
// returns once the notification is on its way, or an error if the Client
// has no session.
func (c *Client) SendTyping(ctx context.Context, to natter.UserID) error {
	if err := natter.ValidateUserID(string(to)); err != nil {
		return fmt.Errorf("typing to %s: %w", to, err)
	}
	if d := c.dr.Load(); d != nil && d.typing(ctx, to) {
		return nil
	}
	cn, err := c.sessionConn()
	if err != nil {
		return fmt.Errorf("typing to %s: %w", to, err)
	}
	frame, err := wire.Encode(&wire.Typing{To: to})
	if err != nil {
		return fmt.Errorf("typing to %s: %w", to, err)
	}
	if err := cn.enqueue(ctx, frame); err != nil {
		return fmt.Errorf("typing to %s: %w", to, err)
	}
	return nil
}
