package client

import "github.com/natterim/natter/client/internal/disk"

// ChunkStore keeps the sealed file chunks that contacts send this device
// over a peer-to-peer channel, named by their hash, until FetchFile
// assembles their file (docs/files.md). Options.ChunkCache gives a folder
// on disk; a browser keeps them in its own storage.
type ChunkStore interface {
	// Room returns nil if a file of size more bytes fits, else why not.
	Room(size int64) error
	Has(hash string) bool
	Get(hash string) ([]byte, bool)
	// Put keeps a chunk; it is durable when Put returns, since the
	// sender is then told it need not go through the server.
	Put(hash string, data []byte) error
	Delete(hash string)
}

// The folder of Options.ChunkCache.
var _ ChunkStore = disk.ChunkDir{}
