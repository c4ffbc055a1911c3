// Package blobs is natterd's content-addressed file store for file chunks:
// each blob is a file named by the lowercase hex SHA-256 of its content,
// under DIR/ab/cd/<hash> (ab and cd are the hash's first two bytes, so that
// no directory grows beyond a few thousand entries). Equal content is one
// file, however many users upload it.
//
// # Durability
//
// Put writes the data to a new file in DIR/tmp, fsyncs it, renames it to its
// place, and fsyncs the directory it now lives in (and any directory it had
// to create): once Put returns, the blob survives a crash of the process or
// the machine, and at no time is a partial blob visible under its name. A
// crash leaves at most temporary files in DIR/tmp, which Open deletes. (The
// temporary files live in one directory rather than next to their blob so
// that this clean-up is one ReadDir, not a walk of the whole tree; a rename
// within one file system is atomic either way.)
//
// # Errors
//
// A write the disk refuses (full, quota, read-only, I/O error) returns an
// error wrapping natter.ErrStoreUnavailable, and leaves nothing behind.
package blobs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/natterim/natter"
)

// Store is a directory of blobs. Its methods are safe for concurrent use;
// two Puts of the same hash both succeed and leave one file.
type Store struct {
	dir string
}

// Open opens (creating it if need be) the blob store in dir and deletes the
// temporary files a crash may have left.
func Open(dir string) (*Store, error) {
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, diskErr(fmt.Sprintf("blobs: open %s", dir), err)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil, diskErr(fmt.Sprintf("blobs: open %s", dir), err)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(tmp, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, diskErr(fmt.Sprintf("blobs: remove leftover %s", e.Name()), err)
		}
	}
	return &Store{dir: dir}, nil
}

// ValidHash reports whether h is a lowercase hex SHA-256 (64 characters of
// 0-9 a-f), the only names the store accepts.
func ValidHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Sum returns the hash the store names data by.
func Sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// path returns the blob's file name, or ErrInvalidHash.
func (s *Store) path(hash string) (string, error) {
	if !ValidHash(hash) {
		return "", fmt.Errorf("blobs: %q: %w", hash, ErrInvalidHash)
	}
	return filepath.Join(s.dir, hash[0:2], hash[2:4], hash), nil
}

// Put stores data under hash, which must be its SHA-256 (ErrInvalidHash,
// ErrHashMismatch). It returns once the blob is durable; a blob already
// present is left as it is.
func (s *Store) Put(ctx context.Context, hash string, data []byte) error {
	p, err := s.path(hash)
	if err != nil {
		return err
	}
	if Sum(data) != hash {
		return fmt.Errorf("blobs: put %s: %w", hash, ErrHashMismatch)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blobs: put %s: %w", hash, err)
	}
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	op := "blobs: put " + hash
	dir := filepath.Dir(p)
	if err := s.mkdirs(dir); err != nil {
		return diskErr(op, err)
	}
	tmp, err := s.writeTemp(hash, data)
	if err != nil {
		return diskErr(op, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return diskErr(op, err)
	}
	if err := syncDir(dir); err != nil {
		// The rename may not be durable: take the blob back so that
		// nothing is reported present that a crash could lose.
		os.Remove(p)
		return diskErr(op, err)
	}
	return nil
}

// writeTemp writes data to a new file in DIR/tmp, fsyncs and closes it, and
// returns its name. On error it leaves no file.
func (s *Store) writeTemp(hash string, data []byte) (_ string, err error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	name := filepath.Join(s.dir, "tmp", hash+"."+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(name)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	return name, f.Close()
}

// mkdirs creates dir (DIR/ab/cd) and DIR/ab if need be, fsyncing the parent
// of each directory it creates so that the new entry is durable.
func (s *Store) mkdirs(dir string) error {
	for _, d := range []string{filepath.Dir(dir), dir} {
		err := os.Mkdir(d, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Has reports whether the store holds a blob of hash.
func (s *Store) Has(hash string) (bool, error) {
	_, err := s.Size(hash)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Size returns the size of the blob of hash, or ErrNotFound.
func (s *Store) Size(hash string) (int64, error) {
	p, err := s.path(hash)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("blobs: %s: %w", hash, ErrNotFound)
	}
	if err != nil {
		return 0, diskErr("blobs: stat "+hash, err)
	}
	return fi.Size(), nil
}

// Get returns the whole blob of hash (chunks are small), or ErrNotFound. It
// checks the content against the hash: a damaged blob is ErrCorrupt, never
// handed out.
func (s *Store) Get(ctx context.Context, hash string) ([]byte, error) {
	p, err := s.path(hash)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blobs: get %s: %w", hash, err)
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blobs: %s: %w", hash, ErrNotFound)
	}
	if err != nil {
		return nil, diskErr("blobs: get "+hash, err)
	}
	if Sum(data) != hash {
		return nil, fmt.Errorf("blobs: get %s: %w", hash, ErrCorrupt)
	}
	return data, nil
}

// Delete removes the blob of hash. Deleting a missing blob is not an error.
// (The directory entry's removal is not fsynced: a crash may bring a deleted
// blob back, which wastes space but breaks nothing.)
func (s *Store) Delete(hash string) error {
	p, err := s.path(hash)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return diskErr("blobs: delete "+hash, err)
	}
	return nil
}

// diskErr wraps err with op, and with natter.ErrStoreUnavailable when it
// means the disk cannot take writes now.
func diskErr(op string, err error) error {
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO, fs.ErrPermission} {
		if errors.Is(err, e) {
			return fmt.Errorf("%s: %w: %w", op, natter.ErrStoreUnavailable, err)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}
