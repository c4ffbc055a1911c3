package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/natterim/natter"
)

// The writer hands out inbox and conversation sequence numbers from counters
// it keeps in memory, instead of incrementing users.inbox_seq and
// conversations.last_seq in every write. Those two columns used to be updated
// by every message: three more B-tree pages (the sender's and recipient's
// users rows and the conversation's row), in random places, dirtied, written
// to the WAL at every commit and again to the database file at every
// checkpoint. The rows a message inserts (its inbox entries, its
// (conv, conv_seq) index entry) already record the highest number given, so
// the counter is read back from them when it is not in memory:
//
//	next inbox seq of u       = max(users.inbox_seq, max(inbox.seq of u)) + 1
//	next conv seq of (a, b)   = max(conversations.last_seq, max(messages.conv_seq of it)) + 1
//
// users.inbox_seq and conversations.last_seq are thus floors now: what the
// counters were when this scheme began, and what TrimInbox and
// ForgetTrimmed (trim.go) raise them to before they delete the rows that
// recorded the highest number given, so that a number is never given twice.
//
// Only the writer goroutine touches the maps, and it reads them back from
// the database inside its own transaction, where it sees the uncommitted rows
// of its batch. Whenever a write is rolled back (a request to its savepoint,
// a batch, a failed commit), the maps are dropped (forget): what they held may
// name rows that no longer exist, and reloading is always right.

// maxCounters bounds each map; past it the map is dropped and refilled from
// the database on demand.
const maxCounters = 1 << 18

// convKey is a conversation's pair of users, a < b.
type convKey struct{ a, b natter.UserID }

// convCounter is a conversation's row id and highest sequence number given.
type convCounter struct{ id, last int64 }

// forget drops the cached counters (after a rollback).
func (w *writer) forget() {
	clear(w.inboxSeq)
	clear(w.convs)
}

// nextInboxSeq takes the next sequence number of user's inbox. An unknown
// user is an error wrapping natter.ErrNoSuchUser.
func nextInboxSeq(ctx context.Context, w *writer, user natter.UserID) (int64, error) {
	seq, ok := w.inboxSeq[user]
	if !ok {
		err := w.queryRow(ctx,
			`SELECT max(u.inbox_seq, coalesce((SELECT max(i.seq) FROM inbox i WHERE i.user = u.name), 0))
			 FROM users u WHERE u.name = ?`,
			string(user)).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("%w: %s", natter.ErrNoSuchUser, user)
		}
		if err != nil {
			return 0, fmt.Errorf("next inbox seq of %s: %w", user, err)
		}
		if len(w.inboxSeq) >= maxCounters {
			clear(w.inboxSeq)
		}
	}
	seq++
	w.inboxSeq[user] = seq
	return seq, nil
}

// nextConvSeq returns the conversation of x and y (creating its row if it
// is their first message) and takes its next sequence number. Both users
// must exist (the caller checks).
func nextConvSeq(ctx context.Context, w *writer, x, y natter.UserID) (conv, seq int64, err error) {
	a, b := pair(x, y)
	k := convKey{a, b}
	c, ok := w.convs[k]
	if !ok {
		err := w.queryRow(ctx,
			`SELECT c.id, max(c.last_seq, coalesce((SELECT max(m.conv_seq) FROM messages m WHERE m.conv = c.id), 0))
			 FROM conversations c WHERE c.a = ? AND c.b = ?`,
			string(a), string(b)).Scan(&c.id, &c.last)
		if errors.Is(err, sql.ErrNoRows) {
			// The first message: its row starts with the floor 0 + 1,
			// the sequence number this message takes.
			err = w.queryRow(ctx,
				`INSERT INTO conversations (a, b, last_seq) VALUES (?, ?, 1) RETURNING id`,
				string(a), string(b)).Scan(&c.id)
			c.last = 0
		}
		if err != nil {
			return 0, 0, fmt.Errorf("next conversation seq: %w", err)
		}
		if len(w.convs) >= maxCounters {
			clear(w.convs)
		}
	}
	c.last++
	w.convs[k] = c
	return c.id, c.last, nil
}
