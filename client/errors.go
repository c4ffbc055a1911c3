package client

import "errors"

// Errors returned by the Client. Errors the server reports are *wire.Err
// values (wrapped with context); match them with errors.As.
var (
	// ErrNotLoggedIn is returned by calls that need a session (Send,
	// Contacts, ...) before Signup, Login or Resume succeeded, or after the
	// session ended.
	ErrNotLoggedIn = errors.New("client: not logged in")
	// ErrLoggedIn is returned by Signup, Login and Resume when the Client
	// already has a session: Logout first.
	ErrLoggedIn = errors.New("client: already logged in")
	// ErrClosed is returned by calls on a closed Client, and by calls that
	// were waiting when it was closed.
	ErrClosed = errors.New("client: closed")
	// ErrConnLost is wrapped by the error of a call whose connection dropped
	// while it waited, or that was made while the SDK was reconnecting. The
	// cause is wrapped too.
	ErrConnLost = errors.New("client: connection lost")
	// ErrSessionEnded is wrapped by the error of a Send that was pending when
	// the session ended for good (the resume was refused, the device logged
	// in elsewhere, ...). The server's reason, a *wire.Err, is wrapped too.
	ErrSessionEnded = errors.New("client: session ended")
	// ErrBodyTooLarge is returned by Send for a body over the server's limit
	// (Welcome.MaxBody, or wire.MaxBody).
	ErrBodyTooLarge = errors.New("client: message body too large")
)

// End-to-end errors (see docs/security.md).
var (
	// ErrDeviceNotApproved: this device's keys are not yet certified by the
	// user's identity (approve it from a device that holds the identity:
	// Client.ApproveDevice), so contacts could not trust what it seals.
	ErrDeviceNotApproved = errors.New("client: this device is not approved yet")
	// ErrNoKeys: the contact has published no end-to-end keys, so nothing
	// can be sealed for them.
	ErrNoKeys = errors.New("client: contact has no end-to-end keys")
	// ErrFingerprintMismatch: a peer-to-peer channel's DTLS certificate is
	// not the one the peer device's signed bundle names (someone sits in
	// the middle); the channel is closed and the server path used.
	ErrFingerprintMismatch = errors.New("client: peer-to-peer fingerprint does not match the device's keys")
)
