package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
func (db *DB) ContactState(ctx context.Context, owner, peer natter.UserID) (natter.ContactState, error) {
	op := fmt.Sprintf("contact state %s→%s", owner, peer)
	if err := db.reading(op); err != nil {
		return natter.ContactNone, err
	}
	var state string
	err := db.rdb.QueryRowContext(ctx,
		`SELECT state FROM contacts WHERE owner = ? AND peer = ?`, string(owner), string(peer)).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return natter.ContactNone, nil
	}
	if err != nil {
		return natter.ContactNone, wrap(op, err)
	}
	return natter.ContactState(state), nil
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
