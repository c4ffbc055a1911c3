package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// DefaultMaxDevices is Config.MaxDevices when zero: the devices one user
// may have. A login of a new device beyond it is refused (too_many_devices)
// until one is removed.
const DefaultMaxDevices = 16

// evRemoved is the bus event that closes every connection of a device that
// was removed (its frame is the Bye); see events.go for the others.
const evRemoved eventKind = 5

// removeDevice answers a RemoveDevice: it removes one of the user's own
// devices (this one too) from the store, closes the device's connections
// and tells the user's other devices and approved contacts its keys
// changed. A device that is not there is answered OK all the same.
func (c *client) removeDevice(ctx context.Context, m *wire.RemoveDevice) {
	h := c.h
	if err := natter.ValidateDeviceID(string(m.Device)); err != nil {
		c.fail(m.Ref, err)
		return
	}
	removed, err := h.cfg.Store.RemoveDevice(ctx, c.user, m.Device, time.Time{})
	if err != nil {
		h.met.storeErrors.Inc()
		c.fail(m.Ref, err)
		return
	}
	if !removed {
		c.fail(m.Ref, fmt.Errorf("%w: %s has no device %s", natter.ErrNoSuchDevice, c.user, m.Device))
		return
	}
	c.push(wire.OK{Ref: m.Ref})
	c.log.Info("device removed", "removed", m.Device)
	h.met.ret.devicesRemoved.WithLabelValues("user").Inc()
	h.deviceGone(ctx, c.user, m.Device, "removed by the user from another device")
}

// deviceGone closes the connections of user's device, which the store no
// longer holds, and announces the change of user's keys as PublishKeys
// does (KeysChanged{user, device} to the user's devices and approved
// contacts), so that they stop sealing messages for it.
func (h *Hub) deviceGone(ctx context.Context, user natter.UserID, device natter.DeviceID, why string) {
	bye, _ := wire.Encode(wire.Bye{Code: wire.CodeDeviceRemoved, Message: "this device was " + why + "; log in again to use it as a new device"})
	h.publish(ctx, user, event{kind: evRemoved, device: device, frame: bye})
	b, _ := wire.Encode(wire.KeysChanged{User: user, Device: device})
	h.publish(ctx, user, event{kind: evFrame, frame: b})
	contacts, err := h.approved(ctx, user)
	if err != nil {
		h.log.Error("device gone: contacts", "user", user, "err", err)
		return
	}
	for _, to := range contacts {
		h.publish(ctx, to, event{kind: evFrame, frame: b})
	}
	h.met.keyChanges.Inc()
}

// touchDevice records the login of s's device (TouchDevice with the
// server's cap) and returns its cursor. A new device over the cap is
// refused: the session just issued for it is dropped, and the client is
// told how to make room.
func (c *client) touchDevice(ctx context.Context, s natter.Session, now time.Time) (uint64, error) {
	h := c.h
	cursor, err := h.cfg.Store.TouchDevice(ctx, s.User, s.Device, now, h.cfg.MaxDevices)
	if errors.Is(err, natter.ErrTooManyDevices) {
		h.met.logins.WithLabelValues("too_many_devices").Inc()
		if derr := h.cfg.Store.DeleteSession(ctx, s.TokenHash); derr != nil {
			c.log.Error("drop the session of a refused device", "err", derr)
		}
		c.log.Info("new device refused: too many devices", "user", s.User, "device", s.Device, "max", h.cfg.MaxDevices)
		return 0, fmt.Errorf("%w: %s has %d devices, the most this server allows; remove one from another device (natter devices remove DEVICE) and log in again",
			err, s.User, h.cfg.MaxDevices)
	}
	return cursor, err
}
