package client

import (
	"context"
	"fmt"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// IceConfig asks the server for its STUN/TURN service and short-lived relay
// credentials. Host is empty when the service is on the host the Client
// connected to.
func (c *Client) IceConfig(ctx context.Context) (wire.IceConfig, error) {
	v, err := roundTrip[wire.IceConfig](ctx, c, "ice servers", func(ref uint64) any {
		return &wire.IceServers{Ref: ref}
	})
	if err != nil {
		return wire.IceConfig{}, err
	}
	return *v, nil
}

// Signal sends peer-to-peer signalling to one online device of a contact.
// It implements the signalling half of p2p.Signaler.
func (c *Client) Signal(ctx context.Context, to natter.UserID, device natter.DeviceID, session, kind string, data []byte) error {
	_, err := roundTrip[wire.OK](ctx, c, fmt.Sprintf("%s signal to %s/%s", kind, to, device), func(ref uint64) any {
		return &wire.Signal{Ref: ref, To: to, Device: device, Session: session, Kind: kind, Data: data}
	})
	return err
}

// StoreCopy stores a copy of a message this device sent or received peer to
// peer in the user's own inbox, for the user's other devices and history
// (see docs/p2p.md). The other user is not involved.
func (c *Client) StoreCopy(ctx context.Context, m wire.Message) error {
	_, err := roundTrip[wire.OK](ctx, c, "copy of "+string(m.ID), func(ref uint64) any {
		return &wire.Copy{Ref: ref, Message: m}
	})
	return err
}
