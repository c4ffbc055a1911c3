package client

import (
	"context"
	"fmt"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// RemoveDevice removes one of the user's devices from the server: its login
// sessions end (its connections are closed, its tokens refused), its keys
// leave the directory (contacts stop sealing for it and are told the user's
// keys changed), and its delivery cursor goes. For a device that is lost or
// sold, and to make room under the server's cap on devices per user
// (wire.CodeTooManyDevices). The device can come back only by logging in
// again with the password, as a new device to approve. Removing this
// Client's own device ends its session, as a logout does.
func (c *Client) RemoveDevice(ctx context.Context, dev natter.DeviceID) error {
	if err := natter.ValidateDeviceID(string(dev)); err != nil {
		return fmt.Errorf("remove device: %w", err)
	}
	_, err := roundTrip[wire.OK](ctx, c, "remove device "+string(dev), func(ref uint64) any {
		return &wire.RemoveDevice{Ref: ref, Device: dev}
	})
	if err != nil {
		return err
	}
	if kr := c.Keyring(); kr != nil && dev != kr.Device() {
		// The directory changed: forget what was cached of it.
		if _, err := c.directory(ctx, kr.User(), true); err != nil {
			c.log.Warn("refresh the key directory after a removal", "err", err)
		}
	}
	return nil
}
