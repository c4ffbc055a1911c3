package wire

import "github.com/natterim/natter"

// PublishKeys publishes end-to-end key material (see docs/security.md).
// Every field is optional and opaque to the server, which only stores it
// and hands it out; clients verify every signature themselves. Answered
// with OK.
type PublishKeys struct {
	Ref uint64 `json:"ref"`
	// Identity is the user's identity public key. It is accepted if the
	// user has none yet or has the same one; a different one only with
	// Reset (a key change that contacts are warned of, which also drops
	// every device certificate signed by the old identity).
	Identity []byte `json:"identity,omitempty"`
	Reset    bool   `json:"reset,omitempty"`
	// Bundle is this device's signed key bundle; it replaces the previous
	// one.
	Bundle []byte `json:"bundle,omitempty"`
	// Prekeys are one-time prekeys of this device to add; each is handed
	// out once (see FetchKeys.Claim).
	Prekeys [][]byte `json:"prekeys,omitempty"`
	// Certs are identity signatures over devices of this user: a device
	// holding the identity approves another device of the same user.
	Certs []DeviceCert `json:"certs,omitempty"`
}

// DeviceCert is an identity signature over one device's signing key.
type DeviceCert struct {
	Device natter.DeviceID `json:"device"`
	Cert   []byte          `json:"cert"`
}

// FetchKeys asks for the key material of User (the user themself or an
// approved contact), answered with Keys. Claim lists devices of User to
// claim one one-time prekey of each, which the server then never hands out
// again.
type FetchKeys struct {
	Ref   uint64            `json:"ref"`
	User  natter.UserID     `json:"user"`
	Claim []natter.DeviceID `json:"claim,omitempty"`
}

// Keys answers FetchKeys: User's identity key and every device that
// published a bundle, ordered by device ID.
type Keys struct {
	Ref      uint64        `json:"ref"`
	User     natter.UserID `json:"user"`
	Identity []byte        `json:"identity,omitempty"`
	Devices  []DeviceKeys  `json:"devices"`
}

// DeviceKeys is one device's published key material. Prekey is set if one
// was claimed for this fetch (empty when the device has none left: the
// sender then uses the bundle's last-resort key). PrekeysLeft is given only
// to the user themself.
type DeviceKeys struct {
	Device      natter.DeviceID `json:"device"`
	Bundle      []byte          `json:"bundle"`
	Cert        []byte          `json:"cert,omitempty"`
	Prekey      []byte          `json:"prekey,omitempty"`
	PrekeysLeft int             `json:"prekeys_left,omitempty"`
}

// KeysChanged is pushed when User's identity, a device bundle or a device
// certificate changed (a new device, an approval, a reset), to User's other
// online devices and to User's online approved contacts: fetch the keys
// again. PrekeysLow is pushed to a device alone when its stock of one-time
// prekeys runs low: publish more.
type KeysChanged struct {
	User       natter.UserID   `json:"user"`
	Device     natter.DeviceID `json:"device,omitempty"`
	PrekeysLow bool            `json:"prekeys_low,omitempty"`
}

// ChangePassword changes the user's password. It is answered with Authed
// carrying a new token for this session; every other token of the user stops
// working and the user's other connections are closed (Bye logged_out).
type ChangePassword struct {
	Ref uint64 `json:"ref"`
	Old string `json:"old"`
	New string `json:"new"`
}
