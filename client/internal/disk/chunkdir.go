package disk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	// chunkSpare is disk space a device keeps free when taking a file.
	chunkSpare = 64 << 20
	// chunkRetention is how long an unclaimed chunk stays in the folder.
	chunkRetention = 30 * 24 * time.Hour
)

// ChunkDir keeps sealed file chunks in a folder, one file per chunk named
// by its hash (the SDK's Options.ChunkCache). It is the SDK's ChunkStore
// on a disk.
type ChunkDir struct {
	Dir string
}

// Room returns nil if a file of size more bytes fits (leaving 64 MiB
// free), else why not.
func (d ChunkDir) Room(size int64) error {
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return errors.New("no room for files")
	}
	if free, err := freeSpace(d.Dir); err == nil && free < uint64(size)+chunkSpare {
		return errors.New("not enough disk space")
	}
	return nil
}

// Has reports whether the chunk hash is in the folder.
func (d ChunkDir) Has(hash string) bool {
	_, err := os.Stat(filepath.Join(d.Dir, hash))
	return err == nil
}

// Get returns the chunk hash, if the folder has it.
func (d ChunkDir) Get(hash string) ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(d.Dir, hash))
	return b, err == nil
}

// Put keeps a chunk, durably (WriteDurable).
func (d ChunkDir) Put(hash string, data []byte) error { return WriteDurable(d.Dir, hash, data) }

// Delete removes the chunk hash, if the folder has it.
func (d ChunkDir) Delete(hash string) { os.Remove(filepath.Join(d.Dir, hash)) }

// Sweep removes chunks unclaimed for 30 days before now and temporary
// files a crash left more than an hour before now.
func (d ChunkDir) Sweep(now time.Time) {
	ents, err := os.ReadDir(d.Dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue
		}
		tmp := strings.HasPrefix(e.Name(), ".tmp-")
		if (tmp && now.Sub(info.ModTime()) > time.Hour) || now.Sub(info.ModTime()) > chunkRetention {
			os.Remove(filepath.Join(d.Dir, e.Name()))
		}
	}
}
