package natsbus

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natterim/natter"
)

// sessionCopy is a node's copy of the registry's user keys, kept current
// by a watch of the bucket, so that Registry.Sessions answers from memory
// (see "The registry's local copy" in the package doc).
//
// Each key's entry carries the revision it reflects. The watch delivers
// the bucket's changes in revision order; this node's own writes are
// applied as well, at once, so that it reads its own writes before the
// watch brings them back. An entry only ever moves to a later state: a
// change older than the entry is ignored, whichever path brings it.
type sessionCopy struct {
	mu    sync.Mutex
	gen   uint64               // incremented by every new watch: entries and revisions start again
	warm  bool                 // the watch of gen delivered its initial values
	seen  uint64               // the latest revision the watch of gen delivered (of any key)
	users map[string]copyEntry // by escaped user (the key without "u.")
	// changed is closed, and replaced, whenever anything above changes:
	// tests await the copy's progress on it.
	changed chan struct{}
}

// copyEntry is one user's sessions in the copy, ordered by device. gone
// marks an entry this node deleted itself: the bucket holds a delete
// marker at some revision after rev, not yet delivered by the watch.
type copyEntry struct {
	rev      uint64
	gone     bool
	sessions []natter.LiveSession
}

// order ranks the state an entry reflects: a delete after rev comes
// after rev itself and before anything later.
func (e copyEntry) order() uint64 {
	o := e.rev * 2
	if e.gone {
		o++
	}
	return o
}

func newSessionCopy() *sessionCopy {
	return &sessionCopy{users: make(map[string]copyEntry), changed: make(chan struct{})}
}

// signal wakes whoever awaits a change; c.mu is held.
func (c *sessionCopy) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// reset empties the copy for a new watch and returns the new watch's
// generation. Until that watch's initial values are in, the copy is cold
// and Sessions reads the bucket.
func (c *sessionCopy) reset() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.warm, c.seen = false, 0
	c.users = make(map[string]copyEntry)
	c.signal()
	return c.gen
}

// generation returns the current watch's generation, for local writes
// (applyLocal).
func (c *sessionCopy) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// sessions returns user's sessions, copied, and whether the copy is warm
// (if not, it returns nothing and the caller reads the bucket).
func (c *sessionCopy) sessions(user natter.UserID) ([]natter.LiveSession, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.warm {
		return nil, false
	}
	e := c.users[escape(string(user))]
	out := make([]natter.LiveSession, len(e.sessions))
	for i, s := range e.sessions {
		s.Reach = slices.Clone(s.Reach)
		out[i] = s
	}
	return out, true
}

// isWarm reports whether the copy is filled and followed.
func (c *sessionCopy) isWarm() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.warm
}

// cool marks the copy of watch gen cold: that watch ended, and the copy
// is not followed any more.
func (c *sessionCopy) cool(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen && c.warm {
		c.warm = false
		c.signal()
	}
}

// ready marks the initial values of watch gen all in.
func (c *sessionCopy) ready(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen && !c.warm {
		c.warm = true
		c.signal()
	}
}

// applyWatch applies one entry the watch of gen delivered.
func (c *sessionCopy) applyWatch(gen uint64, e jetstream.KeyValueEntry) {
	user, ok := strings.CutPrefix(e.Key(), "u.")
	var sessions []natter.LiveSession
	put := e.Operation() == jetstream.KeyValuePut
	if ok && put {
		sessions = decodeRecord(e.Value()) // outside the lock
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // a watch since replaced
	}
	c.seen = max(c.seen, e.Revision())
	defer c.signal()
	if !ok {
		return
	}
	cur, had := c.users[user]
	if had && cur.order() > e.Revision()*2 {
		return // this node wrote a later state already
	}
	if !put || len(sessions) == 0 {
		delete(c.users, user)
		return
	}
	c.users[user] = copyEntry{rev: e.Revision(), sessions: sessions}
}

// applyLocal applies a write this node made to user's key, started while
// the watch of gen was current: sessions written at revision rev, or
// (gone) the key deleted after revision rev. A write from a previous
// generation is dropped: its revision may belong to a bucket that no
// longer exists, and the new watch brings whatever survived.
func (c *sessionCopy) applyLocal(gen uint64, user natter.UserID, rev uint64, gone bool, sessions []natter.LiveSession) {
	key := escape(string(user))
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	e := copyEntry{rev: rev, gone: gone, sessions: sessions}
	if gone {
		e.sessions = nil
	}
	if !gone && rev <= c.seen {
		return // the watch delivered it, or a later state of the key
	}
	if cur, had := c.users[key]; had && cur.order() >= e.order() {
		return
	}
	c.users[key] = e
	c.signal()
}

// await returns a channel closed at the copy's next change, and whether
// ok holds now.
func (c *sessionCopy) await(ok func(c *sessionCopy) bool) (<-chan struct{}, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed, ok(c)
}

// liveSessions turns a record's sessions into what Sessions returns,
// ordered by device.
func liveSessions(user natter.UserID, stored []stored) []natter.LiveSession {
	out := make([]natter.LiveSession, 0, len(stored))
	for _, s := range stored {
		out = append(out, s.live(user))
	}
	slices.SortFunc(out, func(a, b natter.LiveSession) int { return cmp.Compare(a.Device, b.Device) })
	return out
}

// decodeRecord reads a user key's value into sessions; an unreadable
// value (not natsbus's) counts as none.
func decodeRecord(v []byte) []natter.LiveSession {
	var rec record
	if json.Unmarshal(v, &rec) != nil {
		return nil
	}
	return liveSessions(rec.User, rec.Sessions)
}
