package seal

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/natterim/natter"
)

// Session acknowledgement.
//
// A sending device attaches a session's signed init (the HPKE
// encapsulation, ~1.2 KB) to every message of the session until it knows the
// receiving device holds the session: before this, a message that arrived
// first could have been lost and the next one would not open without it.
// It learns it from the receiving device, either in a wrap of a message
// sealed back (wrap.Seen), or at once from a SessionAck: when a device
// opens a message that carries an init for it, Open returns the ack to send
// back to the sending device (client sends it as a Signal of kind "ack",
// never stored). The ack is an HMAC under a key both ends export from the
// session's HPKE context, so nobody else (the server included) can forge
// one; an ack that is lost only means the init keeps going until the next
// one arrives.

// ErrBadAck reports a session ack that does not verify: it names a session
// this device opened to that device, but its MAC is wrong.
var ErrBadAck = errors.New("seal: session acknowledgement does not verify")

// SessionAck tells device (User, Device) that the device sending it holds
// session SID, opened by (User, Device): it may stop attaching the session's
// init.
type SessionAck struct {
	User   natter.UserID   // the device that opened the session, to send the ack to
	Device natter.DeviceID //
	SID    []byte
	MAC    []byte
}

// ackSize is a SessionAck's MAC size.
const ackSize = sha256.Size

// ackMAC is the MAC of an ack of session sid from device from to device to,
// under the ack key of that session.
func ackMAC(key []byte, from, to devRef, sid []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(tuple(Suite+" ack", []byte(from.User), []byte(from.Device), []byte(to.User), []byte(to.Device), sid))
	return m.Sum(nil)
}

// ackFor returns the ack of inbound session sid, nil if it has no ack key
// (a session stored by an older version).
func (k *Keyring) ackFor(sid []byte, s *inSession) *SessionAck {
	if len(s.Ack) == 0 {
		return nil
	}
	from := devRef{s.From, s.FromDevice}
	return &SessionAck{User: s.From, Device: s.FromDevice, SID: sid,
		MAC: ackMAC(s.Ack, from, devRef{k.dev.user, k.dev.id}, sid)}
}

// Acknowledged takes a session ack that device (from, dev) sent this
// device. It returns true if it confirmed the session this device is
// sealing to that device with (its init is no longer attached); false,
// with no error, if the ack names another session (an older one, or one
// this process did not open: harmless); ErrBadAck if the MAC is wrong.
func (k *Keyring) Acknowledged(from natter.UserID, dev natter.DeviceID, sid, mac []byte) (bool, error) {
	if len(sid) != sidSize || len(mac) != ackSize {
		return false, fmt.Errorf("%w: %d-byte session ID, %d-byte MAC", ErrBadAck, len(sid), len(mac))
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	to := devRef{from, dev}
	s := k.out[to]
	if s == nil || !hmac.Equal(s.sid, sid) {
		return false, nil
	}
	if !hmac.Equal(ackMAC(s.ack, devRef{k.dev.user, k.dev.id}, to, sid), mac) {
		return false, fmt.Errorf("%w: session %x of %s/%s", ErrBadAck, sid, from, dev)
	}
	s.confirmed = true
	return true, nil
}

// Confirmed reports whether this device's current session to (user, dev)
// is confirmed: messages sealed now carry no init for that device.
func (k *Keyring) Confirmed(user natter.UserID, dev natter.DeviceID) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.out[devRef{user, dev}]
	return s != nil && s.confirmed
}
