package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/natterim/natter/wire"
)

// A home is one device, and the server keeps one connection per device: a
// new login replaces the old connection. So a natter listen (or chat) that
// runs while another natter command uses the same home would be cut off.
// The agent (agent.go) prevents that: while listen or chat is online, the
// other commands are handed to it. Two lock files keep the rest in order:
//
//   - online.lock: held exclusively by listen and chat for their whole run,
//     so only one of them runs per home (a second one is refused); its
//     holder serves the agent socket.
//   - busy.lock: held shared by every other command while it is connected
//     itself (no agent answered), and touched when taken. Should listen or
//     chat be replaced all the same (a command that found no agent, such as
//     one of an older natter), it waits until it can take busy.lock
//     exclusively (no command is running any more) and, if a command
//     touched it since the session began, resumes: the command kept
//     whatever it received in the unread file, which listen and chat show.
//     A replacement nobody here explains (the same home copied to another
//     machine) ends the session as before.
//
// On systems without flock the locks are no-ops and listen and chat resume
// after a short pause when busy.lock was touched recently.
const (
	onlineLock = "online.lock"
	busyLock   = "busy.lock"
)

// busy takes the shared busy lock for the rest of this run of natter. It
// is released when the process exits.
func (r *runner) busy() error {
	if r.longLived || r.busyFile != nil {
		return nil
	}
	if err := r.home.ensure(); err != nil {
		return err
	}
	f, err := os.OpenFile(r.home.path(busyLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock home: %w", err)
	}
	if err := lockShared(f); err != nil {
		f.Close()
		return fmt.Errorf("lock home: %w", err)
	}
	now := time.Now()
	os.Chtimes(f.Name(), now, now)
	r.busyFile = f
	return nil
}

// online takes the exclusive online lock for listen and chat.
func (r *runner) online() error {
	r.longLived = true
	if err := r.home.ensure(); err != nil {
		return err
	}
	f, err := os.OpenFile(r.home.path(onlineLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock home: %w", err)
	}
	ok, err := tryLockExclusive(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("lock home: %w", err)
	}
	if !ok {
		f.Close()
		return withCode("busy", "another natter listen or chat is running with the home %s: one device can be online only once (use another --home for a second device)", r.home.dir)
	}
	r.onlineFile = f // released at exit
	return r.startAgent()
}

// releaseLocks closes the lock files (at the end of Run, for in-process
// callers; a process's exit releases them anyway).
func (r *runner) releaseLocks() {
	r.agent.stop() // before online.lock: the socket is the lock holder's
	r.agent = nil
	for _, f := range []*os.File{r.busyFile, r.onlineFile} {
		if f != nil {
			f.Close()
		}
	}
	r.busyFile, r.onlineFile = nil, nil
}

// replacedHere reports whether err, the end of a listen or chat session,
// means another natter command of this home took the device over; if so it
// waits until that command is done and returns true, so the caller can
// resume. since is when the session began.
func (r *runner) replacedHere(ctx context.Context, err error, since time.Time) bool {
	var we *wire.Err
	if !errors.As(err, &we) || we.Code != wire.CodeReplaced {
		return false
	}
	f, ferr := os.OpenFile(r.home.path(busyLock), os.O_RDWR|os.O_CREATE, 0o600)
	if ferr != nil {
		return false
	}
	defer f.Close()
	for {
		ok, lerr := tryLockExclusive(f)
		if lerr != nil {
			return false
		}
		if ok {
			unlock(f)
			break
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	fi, ferr := f.Stat()
	// Slack for file systems with coarse modification times.
	if ferr != nil || fi.ModTime().Before(since.Add(-2*time.Second)) {
		return false
	}
	if !flockWorks {
		select { // the command may still be running: give it time
		case <-ctx.Done():
			return false
		case <-time.After(2 * time.Second):
		}
	}
	return true
}
