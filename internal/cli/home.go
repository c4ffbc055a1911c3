package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/natterim/natter"
)

// The home folder ($NATTER_HOME, --home, or natter under the user's config
// folder) is one device of one user on one server. It is created with mode
// 0700 and every file in it with 0600, since it holds a bearer token:
//
//	device         the device ID, made once (natter.NewDeviceID)
//	session.json   server address, user, device, session token, expiry
//	server.pin     SHA-256 of the server's certificate (trust on first use)
//	keys-USER.json the device's end-to-end keys and contacts' pinned
//	               identity keys (see keys.go and docs/security.md)
//	keys-USER.json.lock
//	               held while a process reads, merges and writes them
//	history-USER.sqlite
//	               every message USER received or sent on this device,
//	               with a full-text index (SQLite, with its -wal and -shm
//	               files; see history.go and package history)
//	archive-USER.json
//	               how far natter archive fetch got (archive.go)
//	archive-spool-USER/
//	               archive records a command could not put before it
//	               exited, put by the next one (client.Options.ArchiveSpool)
//	presence.json  the last natter status, applied by listen and chat
//	unread.jsonl   messages and receipts received but not yet shown
//	busy.lock      shared lock of commands while connected (see lock.go)
//	online.lock    exclusive lock of listen and chat
//	agent.sock     the socket where listen or chat takes the other
//	               commands of the home while it is online (agent.go)
//
// Files are replaced atomically (temporary file, sync, rename), except
// unread.jsonl, which is appended to with one write per command, and the
// history, which SQLite writes in transactions.
const (
	deviceFile  = "device"       // this installation's device ID, made once
	sessionFile = "session.json" // the login session: token, user, server
	pinFile     = "server.pin"   // the pinned server certificate's fingerprint
)

// errNotLoggedIn is returned when the home holds no session.
var errNotLoggedIn = errors.New("not logged in: run natter login USER (or natter signup USER)")

// home is the folder where natter keeps its state between runs: the device
// ID, the session token and the pinned server certificate.
type home struct {
	dir string
}

// defaultHomeDir returns where the home is when neither --home nor
// NATTER_HOME says: natter under the user's configuration folder.
func defaultHomeDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find a home folder: %w (use --home DIR or NATTER_HOME)", err)
	}
	return filepath.Join(d, "natter"), nil
}

func (h home) path(name string) string { return filepath.Join(h.dir, name) }

// ensure creates the home folder if it is missing.
func (h home) ensure() error {
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		return fmt.Errorf("create home folder: %w", err)
	}
	return nil
}

// deviceID returns this home's device ID, making and saving one the first
// time. The server keeps a delivery cursor per device, so the ID must stay
// the same from run to run.
func (h home) deviceID() (natter.DeviceID, error) {
	b, err := os.ReadFile(h.path(deviceFile))
	switch {
	case err == nil:
		id := strings.TrimSpace(string(b))
		if err := natter.ValidateDeviceID(id); err != nil {
			return "", fmt.Errorf("%s is damaged (%v): delete it and log in again", h.path(deviceFile), err)
		}
		return natter.DeviceID(id), nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read device ID: %w", err)
	}
	id := natter.NewDeviceID()
	if err := h.writeFile(deviceFile, []byte(string(id)+"\n")); err != nil {
		return "", fmt.Errorf("save device ID: %w", err)
	}
	return id, nil
}

// storedSession is the session file's content. Its field names are a file
// format: change them only compatibly.
type storedSession struct {
	Server  string          `json:"server"`
	User    natter.UserID   `json:"user"`
	Device  natter.DeviceID `json:"device"`
	Token   string          `json:"token"`
	Expires time.Time       `json:"expires,omitzero"`
}

// session returns the stored session, or errNotLoggedIn.
func (h home) session() (storedSession, error) {
	b, err := os.ReadFile(h.path(sessionFile))
	if errors.Is(err, fs.ErrNotExist) {
		return storedSession{}, errNotLoggedIn
	}
	if err != nil {
		return storedSession{}, fmt.Errorf("read session: %w", err)
	}
	var s storedSession
	if err := json.Unmarshal(b, &s); err != nil || s.Token == "" {
		return storedSession{}, fmt.Errorf("%s is damaged: delete it and run natter login USER", h.path(sessionFile))
	}
	return s, nil
}

// saveSession stores s (mode 0600), replacing any earlier session.
func (h home) saveSession(s storedSession) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	if err := h.writeFile(sessionFile, append(b, '\n')); err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	return nil
}

// deleteSession forgets the stored session. A missing session is not an
// error.
func (h home) deleteSession() error {
	err := os.Remove(h.path(sessionFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// writeFile replaces the named file atomically (write a temporary file,
// sync, rename) with mode 0600, so that a crash never leaves half a token.
func (h home) writeFile(name string, data []byte) error {
	if err := h.ensure(); err != nil {
		return err
	}
	f, err := os.CreateTemp(h.dir, "."+name+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this fails harmlessly
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, h.path(name))
}
