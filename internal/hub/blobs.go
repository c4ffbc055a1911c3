package hub

import "context"

// Blobs keeps file chunks' bytes, by hash (a lowercase hex SHA-256 that the
// hub has checked the bytes against). The store's chunk records decide who
// may fetch a chunk and how long it is kept; Blobs only holds the bytes.
// One node keeps them on its disk (internal/blobs); nodes that share a
// PostgreSQL store keep them there (internal/pgblobs), so that any node can
// serve a chunk another node took. Errors that mean the bytes cannot be
// written or read now wrap natter.ErrStoreUnavailable.
type Blobs interface {
	// Put stores data under hash durably; a hash stored already is kept.
	Put(ctx context.Context, hash string, data []byte) error
	// Has reports whether hash's bytes are stored.
	Has(hash string) (bool, error)
	// Get returns hash's bytes, or an error wrapping natter.ErrNoSuchChunk.
	Get(ctx context.Context, hash string) ([]byte, error)
	// Delete removes hash's bytes; a missing hash is not an error.
	Delete(hash string) error
}
