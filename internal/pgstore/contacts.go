package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/natterim/natter"
)

// Contacts returns owner's contact rows, ordered by peer. ContactNone is the
// absence of a row, so it never appears.
func (s *Store) Contacts(ctx context.Context, owner natter.UserID) ([]natter.Contact, error) {
	var cs []natter.Contact
	err := s.read(ctx, "list contacts of "+string(owner), func(ctx context.Context, q querier) error {
		cs = nil
		rows, err := q.Query(ctx, `SELECT peer, state FROM contacts WHERE owner = $1 ORDER BY peer`, string(owner))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var peer, state string
			if err := rows.Scan(&peer, &state); err != nil {
				return err
			}
			cs = append(cs, natter.Contact{User: natter.UserID(peer), State: natter.ContactState(state)})
		}
		return rows.Err()
	})
	return cs, err
}

// ContactState returns owner's row for peer, ContactNone if there is none.
// Unlike internal/sqlite it keeps no cache: another node may change the row
// at any time.
func (s *Store) ContactState(ctx context.Context, owner, peer natter.UserID) (natter.ContactState, error) {
	st := natter.ContactNone
	err := s.read(ctx, fmt.Sprintf("contact state %s→%s", owner, peer), func(ctx context.Context, q querier) error {
		var err error
		st, err = contactState(ctx, q, owner, peer)
		return err
	})
	return st, err
}

// contactState reads owner's row for peer through q.
func contactState(ctx context.Context, q querier, owner, peer natter.UserID) (natter.ContactState, error) {
	var state string
	err := q.QueryRow(ctx, `SELECT state FROM contacts WHERE owner = $1 AND peer = $2`, string(owner), string(peer)).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return natter.ContactNone, nil
	}
	if err != nil {
		return natter.ContactNone, err
	}
	return natter.ContactState(state), nil
}

// UpdateContact applies natter.ApplyContactOp to the rows actor→peer and
// peer→actor in one transaction, with both users' rows locked, and returns
// their new states. On an error it returns the states as they are.
func (s *Store) UpdateContact(ctx context.Context, actor, peer natter.UserID, op natter.ContactOp) (mine, theirs natter.ContactState, err error) {
	name := fmt.Sprintf("%s contact %s→%s", op, actor, peer)
	if actor == peer {
		return natter.ContactNone, natter.ContactNone, fmt.Errorf("pgstore: %s: %w", name, natter.ErrSelf)
	}
	err = s.write(ctx, name, func(ctx context.Context, q querier) error {
		mine, theirs = natter.ContactNone, natter.ContactNone
		if _, err := lockUsers(ctx, q, peer, actor); err != nil {
			return err
		}
		var err error
		if mine, err = contactState(ctx, q, actor, peer); err != nil {
			return err
		}
		if theirs, err = contactState(ctx, q, peer, actor); err != nil {
			return err
		}
		newMine, newTheirs, err := natter.ApplyContactOp(op, mine, theirs)
		if err != nil {
			return err
		}
		if err := setContact(ctx, q, actor, peer, mine, newMine); err != nil {
			return err
		}
		if err := setContact(ctx, q, peer, actor, theirs, newTheirs); err != nil {
			return err
		}
		mine, theirs = newMine, newTheirs
		return nil
	})
	return mine, theirs, err
}

// setContact changes the row owner→peer from old to state; ContactNone
// deletes it.
func setContact(ctx context.Context, q querier, owner, peer natter.UserID, old, state natter.ContactState) error {
	var err error
	switch {
	case state == old:
	case state == natter.ContactNone:
		_, err = q.Exec(ctx, `DELETE FROM contacts WHERE owner = $1 AND peer = $2`, string(owner), string(peer))
	default:
		_, err = q.Exec(ctx,
			`INSERT INTO contacts (owner, peer, state) VALUES ($1, $2, $3)
			 ON CONFLICT (owner, peer) DO UPDATE SET state = excluded.state`,
			string(owner), string(peer), string(state))
	}
	return err
}
