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
	// ErrStoreUnavailable means the store cannot take writes now (disk full,
	// read-only file system, database down). Nothing was acknowledged.
	ErrStoreUnavailable = errors.New("store unavailable")
	ErrClosed           = errors.New("closed")
)
