package wire

import "github.com/natterim/natter"

// RemoveDevice removes one of the user's own devices, this one included:
// the server forgets its delivery cursor, key bundle, certificate, one-time
// prekeys and wrapped archive key, and ends its login sessions. Its
// connections are closed (Bye device_removed), and the user's other devices
// and approved contacts are told (KeysChanged for the device). It is
// answered OK, also when the device was not there (the outcome is the
// same). The device may log in again later with the password: it is then a
// new device, which the user's other devices must approve again.
type RemoveDevice struct {
	Ref    uint64          `json:"ref"`
	Device natter.DeviceID `json:"device"`
}

// Codes of the device directory's bounds.
const (
	// CodeTooManyDevices refuses a login of a new device to a user who has
	// as many as the server allows (natterd --max-devices); the message
	// names the way out (remove one from another device).
	CodeTooManyDevices Code = "too_many_devices"
	// CodeDeviceRemoved is the Bye of a connection whose device was
	// removed (RemoveDevice) or retired after a long absence.
	CodeDeviceRemoved Code = "device_removed"
)
