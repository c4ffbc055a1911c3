package natter

import "errors"

// Sentinel errors shared by the server's parts. Stores, the hub and the wire
// layer wrap them with context; internal/hub maps them to wire error codes in
// one place.
var (
	ErrInvalidName    = errors.New("invalid user name")
	ErrUserExists     = errors.New("user name taken")
	ErrNoSuchUser     = errors.New("no such user")
	ErrBadCredentials = errors.New("wrong user name or password")
	ErrNoSession      = errors.New("no such session")
	ErrNotContact     = errors.New("not an approved contact")
	ErrNoRequest      = errors.New("no pending contact request")
	ErrBlocked        = errors.New("contact is blocked")
	ErrSelf           = errors.New("cannot do that to yourself")
	ErrBadRequest     = errors.New("bad request")
	ErrRateLimited    = errors.New("rate limited")
	// ErrKeyConflict means a user's identity key is already set to a
	// different key and the caller did not ask to reset it.
	ErrKeyConflict = errors.New("identity key already set to a different key")
	// ErrNoSuchDevice means the device has published no key bundle, or
	// (AckInbox) has no delivery cursor: it never logged in, or was
	// removed.
	ErrNoSuchDevice = errors.New("no such device")
	// ErrLimit means a request would take a stored quantity over its cap
	// (such as MaxPrekeys); nothing was stored.
	ErrLimit = errors.New("over the limit")
	// ErrTooManyDevices means a user already has as many devices as the
	// server allows; a new one is refused until one is removed.
	ErrTooManyDevices = errors.New("too many devices")
	// ErrQuota means an upload would take the user's stored chunks over
	// their quota, or a message's chunks add up to more than the largest
	// file allowed; nothing was stored.
	ErrQuota = errors.New("over the storage quota")
	// ErrNoSuchChunk means a file chunk the user did not upload (or may
	// not fetch), or one forgotten after its retention.
	ErrNoSuchChunk = errors.New("no such chunk")
	// ErrArchiveOff means a record was put to a user's server-side history
	// (the archive) while it is off.
	ErrArchiveOff = errors.New("archive is off")
	// ErrStoreUnavailable means the store cannot take writes now (disk full,
	// read-only file system, database down). Nothing was acknowledged.
	ErrStoreUnavailable = errors.New("store unavailable")
	ErrClosed           = errors.New("closed")
)
