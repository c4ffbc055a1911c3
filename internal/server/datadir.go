package server

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// dbFile is the database's name in the data folder.
const dbFile = "natter.db"

// prepareDataDir makes the data folder private to natterd's user whatever
// the umask: the folder (created if need be) and the folders in it 0700,
// the files in it 0600 (or less). It holds password hashes, the contact
// graph, the certificate's key, and who wrote to whom when.
//
// natterd creates everything private itself: folders 0700, files 0600, and
// the database is created here, empty and 0600, before SQLite opens it,
// because SQLite would create it 0644 less the umask and gives its -wal and
// -shm files the database's mode. What it finds open to other users, left
// by an older version (whose natter.db, -wal and -shm were 0644) or made
// by hand, it closes by taking the group and other bits away, and says so
// in one log line.
//
// A folder found open is walked whole (it was not made by natterd, so
// nothing in it can be trusted); in a folder found closed, only its own
// entries are checked. So a start does not walk the blob store, which can
// hold millions of files, unless the blob folder or the data folder was
// open. A folder is closed after what is in it, so an interrupted walk is
// done again at the next start.
func prepareDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	fi, err := os.Stat(dir) // the folder may be a symbolic link: its target is what matters
	if err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	f := modeFixer{root: dir}
	perm := fi.Mode().Perm()
	open := perm&0o077 != 0
	if err := f.folder(dir, open); err != nil {
		return fmt.Errorf("data folder %s: make it private: %w", dir, err)
	}
	if open {
		if err := os.Chmod(dir, perm&^0o077); err != nil {
			return fmt.Errorf("data folder %s: make it private: %w", dir, err)
		}
		f.top = append([]string{fmt.Sprintf(". %#o", perm)}, f.top...)
	}
	if len(f.top)+f.deep > 0 {
		list := slices.Concat(f.top, f.sample)
		more := ""
		if n := f.deep - len(f.sample); n > 0 {
			more = fmt.Sprintf(" and %d more", n)
		}
		log.Warn("data folder was readable by other users: took their access away (folders 0700, files 0600)",
			"dir", dir, "fixed", strings.Join(list, ", ")+more)
	}

	db, err := os.OpenFile(filepath.Join(dir, dbFile), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("data folder: create database: %w", err)
	}
	return db.Close()
}

// modeFixer takes group and other access away from what is under root,
// noting what it changed: every entry of root, and a few of those deeper
// down with a count of the rest.
type modeFixer struct {
	root   string
	top    []string // root's entries fixed, with their old mode
	sample []string // the first few deeper entries fixed
	deep   int      // deeper entries fixed
}

// folder checks the entries of the folder p, and walks its subfolders if
// all is set or they are open.
func (f *modeFixer) folder(p string, all bool) error {
	entries, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := f.entry(filepath.Join(p, e.Name()), e, all); err != nil {
			return err
		}
	}
	return nil
}

// entry closes one file or folder if it is open, a folder after what is in
// it. Symbolic links, sockets and devices are left alone.
func (f *modeFixer) entry(p string, d fs.DirEntry, all bool) error {
	if d.Type()&^fs.ModeDir != 0 {
		return nil
	}
	info, err := d.Info()
	if err != nil {
		return err
	}
	perm := info.Mode().Perm()
	open := perm&0o077 != 0
	if d.IsDir() && (open || all) {
		if err := f.folder(p, true); err != nil {
			return err
		}
	}
	if !open {
		return nil
	}
	if err := os.Chmod(p, perm&^0o077); err != nil {
		return err
	}
	rel, _ := filepath.Rel(f.root, p)
	what := fmt.Sprintf("%s %#o", rel, perm)
	if filepath.Dir(rel) == "." {
		f.top = append(f.top, what)
	} else if f.deep++; len(f.sample) < 5 {
		f.sample = append(f.sample, what)
	}
	return nil
}
