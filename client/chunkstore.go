package client

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

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

// dirChunks is a ChunkStore in a folder: one file per chunk.
type dirChunks struct{ dir string }

func (d dirChunks) Room(size int64) error {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return errors.New("no room for files")
	}
	if free, err := freeSpace(d.dir); err == nil && free < uint64(size)+cacheSpare {
		return errors.New("not enough disk space")
	}
	return nil
}

func (d dirChunks) Has(hash string) bool {
	_, err := os.Stat(filepath.Join(d.dir, hash))
	return err == nil
}

func (d dirChunks) Get(hash string) ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(d.dir, hash))
	return b, err == nil
}

func (d dirChunks) Put(hash string, data []byte) error { return writeDurable(d.dir, hash, data) }
func (d dirChunks) Delete(hash string)                 { os.Remove(filepath.Join(d.dir, hash)) }

// sweep removes chunks unclaimed for cacheRetention and temporary files a
// crash left.
func (d dirChunks) sweep(now time.Time) {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue
		}
		tmp := strings.HasPrefix(e.Name(), ".tmp-")
		if (tmp && now.Sub(info.ModTime()) > time.Hour) || now.Sub(info.ModTime()) > cacheRetention {
			os.Remove(filepath.Join(d.dir, e.Name()))
		}
	}
}
