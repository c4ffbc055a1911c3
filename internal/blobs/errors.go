package blobs

import "errors"

// Errors of the blob store. A disk that cannot take a write (full,
// read-only, failing) is reported as natter.ErrStoreUnavailable, as the
// database reports it, so that the hub answers unavailable for both.
var (
	// ErrInvalidHash means a name that is not a lowercase hex SHA-256.
	ErrInvalidHash = errors.New("invalid blob hash")
	// ErrHashMismatch means data whose SHA-256 is not the hash given.
	ErrHashMismatch = errors.New("data does not match its hash")
	// ErrNotFound means the store holds no blob of that hash.
	ErrNotFound = errors.New("no such blob")
	// ErrCorrupt means a stored blob no longer matches its hash (a
	// damaged disk, or a file changed behind natterd's back).
	ErrCorrupt = errors.New("stored blob does not match its hash")
)
