// Package natter holds natter's domain types and the contracts that the
// server's parts are built against: the Store (durable state), the Bus (how a
// node reaches a user connected to another node) and the Registry (live
// sessions). Implementations live in packages named after what they depend on
// (internal/sqlite, internal/membus, ...); each passes one shared conformance
// suite (internal/storetest, internal/bustest).
//
// The wire protocol is in package wire, the Go client SDK in package client.
package natter

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// UserID is a user's name. It is what people type to add a contact, so it is
// short, lower-case and unambiguous: see ValidateUserID.
type UserID string

// DeviceID names one of a user's devices. The client chooses it once (a random
// value kept in its home folder) and sends it at every login, so the server can
// keep a delivery cursor per device.
type DeviceID string

// MessageID is chosen by the sending client. IDs are time-ordered (see
// NewMessageID) so that they sort by creation time, and a retry of a send
// reuses the same ID, which makes sends idempotent.
type MessageID string

// ValidateUserID reports why name cannot be a user name, or nil. A user name
// is 3 to 32 characters of a-z, 0-9, '.', '_' or '-', starting with a letter.
func ValidateUserID(name string) error {
	if len(name) < 3 || len(name) > 32 {
		return fmt.Errorf("%w: %q must be 3 to 32 characters long", ErrInvalidName, name)
	}
	if c := name[0]; c < 'a' || c > 'z' {
		return fmt.Errorf("%w: %q must start with a lower-case letter", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: %q may hold only a-z, 0-9, '.', '_' and '-'", ErrInvalidName, name)
		}
	}
	return nil
}

// ValidateDeviceID reports why id cannot be a device ID, or nil: 1 to 64
// characters of [A-Za-z0-9_-].
func ValidateDeviceID(id string) error {
	if !validToken(id, 64) {
		return fmt.Errorf("%w: device id must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'", ErrBadRequest)
	}
	return nil
}

// ValidateMessageID reports why id cannot be a message ID, or nil: 1 to 64
// characters of [A-Za-z0-9_-].
func ValidateMessageID(id string) error {
	if !validToken(id, 64) {
		return fmt.Errorf("%w: message id must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'", ErrBadRequest)
	}
	return nil
}

func validToken(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// NewMessageID returns a new time-ordered message ID: the UUIDv7 layout (48
// bits of Unix milliseconds, then random bits) written as 32 hex digits, so
// IDs made later sort after IDs made earlier.
func NewMessageID(now time.Time) MessageID {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:])
	b[6] = b[6]&0x0f | 0x70 // version 7
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return MessageID(hex.EncodeToString(b[:]))
}

// NewDeviceID returns a random device ID.
func NewDeviceID() DeviceID {
	var b [12]byte
	rand.Read(b[:])
	return DeviceID(hex.EncodeToString(b[:]))
}

// Status is what a user shows to their approved contacts.
type Status string

// The statuses. Offline is never set by a client: it is what a user with no
// live session shows.
const (
	StatusOnline  Status = "online"
	StatusAway    Status = "away"
	StatusBusy    Status = "busy"
	StatusOffline Status = "offline"
)

// Valid reports whether a client may set s.
func (s Status) Valid() bool { return s == StatusOnline || s == StatusAway || s == StatusBusy }

// Presence is what one user's approved contacts see of them.
type Presence struct {
	User     UserID
	Status   Status
	Text     string    // status text, at most MaxStatusText bytes
	LastSeen time.Time // when the user was last online; zero if never
}

// MaxStatusText bounds a status text in bytes.
const MaxStatusText = 256
