package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/natterim/natter"
)

// Contacts returns owner's contact rows, ordered by peer. ContactNone is the
// absence of a row, so it never appears.
func (db *DB) Contacts(ctx context.Context, owner natter.UserID) ([]natter.Contact, error) {
	op := "list contacts of " + string(owner)
	if err := db.reading(op); err != nil {
		return nil, err
	}
	rows, err := db.rdb.QueryContext(ctx,
		`SELECT peer, state FROM contacts WHERE owner = ? ORDER BY peer`, string(owner))
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var cs []natter.Contact
	for rows.Next() {
		var peer, state string
		if err := rows.Scan(&peer, &state); err != nil {
			return nil, wrap(op, err)
		}
		cs = append(cs, natter.Contact{User: natter.UserID(peer), State: natter.ContactState(state)})
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return cs, nil
}

// ContactState returns owner's row for peer, ContactNone if there is none.
//
// The hub asks it before every message and receipt, so answers are cached
// (see contactCache): a read of SQLite through database/sql cost about 50 µs
// of CPU, an eighth of a message's whole cost on the server.
func (db *DB) ContactState(ctx context.Context, owner, peer natter.UserID) (natter.ContactState, error) {
	if err := db.reading("contact state"); err != nil {
		return natter.ContactNone, err
	}
	k := contactKey{owner, peer}
	st, gen, ok := db.contacts.get(k)
	if ok {
		return st, nil
	}
	var state string
	err := db.rdb.QueryRowContext(ctx,
		`SELECT state FROM contacts WHERE owner = ? AND peer = ?`, string(owner), string(peer)).Scan(&state)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		st = natter.ContactNone
	case err != nil:
		return natter.ContactNone, wrap(fmt.Sprintf("contact state %s→%s", owner, peer), err)
	default:
		st = natter.ContactState(state)
	}
	db.contacts.put(k, st, gen)
	return st, nil
}

// maxCachedContacts bounds contactCache; past it the cache starts over.
const maxCachedContacts = 1 << 18

// contactKey is a contacts row's key, (owner, peer).
type contactKey struct{ owner, peer natter.UserID }

// contactCache holds contact states read from the database. The store is
// the database's only writer (one natterd per file), and UpdateContact, the
// only write of contacts, invalidates the two rows it may have changed once
// its outcome is final (committed or not written). A read that raced with
// such a write does not fill the cache: put stores only if no invalidation
// happened since its get (gen).
type contactCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[contactKey]natter.ContactState
}

// get returns the cached state of k, if any, and the generation to pass to
// put.
func (c *contactCache) get(k contactKey) (natter.ContactState, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.m[k]
	return st, c.gen, ok
}

// put caches st for k, read after get returned gen.
func (c *contactCache) put(k contactKey, st natter.ContactState, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedContacts {
		c.m = make(map[contactKey]natter.ContactState)
	}
	c.m[k] = st
}

// invalidate drops the cached states of keys.
func (c *contactCache) invalidate(keys ...contactKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, k := range keys {
		delete(c.m, k)
	}
}

// UpdateContact applies natter.ApplyContactOp to the rows actor→peer and
// peer→actor in one transaction and returns their new states. On an error
// it returns the states as they are (unchanged).
func (db *DB) UpdateContact(ctx context.Context, actor, peer natter.UserID, op natter.ContactOp) (mine, theirs natter.ContactState, err error) {
	name := fmt.Sprintf("%s contact %s→%s", op, actor, peer)
	if actor == peer {
		return natter.ContactNone, natter.ContactNone, fmt.Errorf("sqlite: %s: %w", name, natter.ErrSelf)
	}
	err = db.write(ctx, name, func(ctx context.Context, w *writer) error {
		mine, theirs = natter.ContactNone, natter.ContactNone
		if err := mustExist(ctx, w, peer); err != nil {
			return err
		}
		if err := mustExist(ctx, w, actor); err != nil {
			return err
		}
		var err error
		if mine, err = contactState(ctx, w, actor, peer); err != nil {
			return err
		}
		if theirs, err = contactState(ctx, w, peer, actor); err != nil {
			return err
		}
		newMine, newTheirs, err := natter.ApplyContactOp(op, mine, theirs)
		if err != nil {
			return err
		}
		if err := setContact(ctx, w, actor, peer, mine, newMine); err != nil {
			return err
		}
		if err := setContact(ctx, w, peer, actor, theirs, newTheirs); err != nil {
			return err
		}
		mine, theirs = newMine, newTheirs
		return nil
	})
	db.contacts.invalidate(contactKey{actor, peer}, contactKey{peer, actor})
	return mine, theirs, err
}

// contactState is ContactState inside a write.
func contactState(ctx context.Context, w *writer, owner, peer natter.UserID) (natter.ContactState, error) {
	var state string
	err := w.queryRow(ctx, `SELECT state FROM contacts WHERE owner = ? AND peer = ?`, string(owner), string(peer)).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return natter.ContactNone, nil
	}
	return natter.ContactState(state), err
}

// setContact changes the row owner→peer from old to state; ContactNone
// deletes it.
func setContact(ctx context.Context, w *writer, owner, peer natter.UserID, old, state natter.ContactState) error {
	switch {
	case state == old:
		return nil
	case state == natter.ContactNone:
		return w.exec1(ctx, `DELETE FROM contacts WHERE owner = ? AND peer = ?`, string(owner), string(peer))
	default:
		return w.exec1(ctx,
			`INSERT INTO contacts (owner, peer, state) VALUES (?, ?, ?)
			 ON CONFLICT (owner, peer) DO UPDATE SET state = excluded.state`,
			string(owner), string(peer), string(state))
	}
}
