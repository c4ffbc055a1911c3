// Package disk provides what the SDK keeps in files on the device: writes
// that are whole or absent after a crash (WriteDurable), the folder of
// file chunks received peer to peer (ChunkDir) and the archive spool's
// folder (Spool). It is separate from package client because it is plain
// file handling that needs none of the Client's state, and because a
// browser has no such disk: there the app gives the SDK its own chunk
// store (internal/webapp) and none of this is used. How much space is free
// differs by platform (freespace_unix.go, freespace_other.go).
package disk

import (
	"os"
	"path/filepath"
)

// WriteDurable writes data to dir/name through a temporary file, fsync
// and rename, so that name is whole or absent after a crash. The
// temporary file's name starts with ".tmp-" (ChunkDir.Sweep removes those
// a crash left).
func WriteDurable(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-"+name+"-")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
