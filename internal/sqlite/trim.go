package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/natterim/natter"
)

// # Trimming
//
// TrimInbox deletes the prefix of each user's inbox that every device of the
// user acknowledged, or that expired. Finding the users with something to
// delete is a read (one query that walks the users table, and for each user
// reads its first inbox entry and its devices' cursors, all by primary key),
// on a reader connection: it never holds the writer. The deleting is one
// write per user and per at most limit entries, queued like any other
// write, so it shares group commits with the messages of the moment and
// holds the writer for the time of a few hundred row deletions at most.
//
// A write deletes the entries with one range DELETE on the inbox's primary
// key, then looks at what they referred to: a message or receipt whose other
// entry is gone too (two primary-key lookups, through to_seq and from_seq)
// and a copy (which has one entry) are deleted, or, if still within the
// retention, trimmed (body dropped, row kept for the idempotency key). The
// sequence counters' floors (counters.go) are raised first when the rows
// that recorded the highest number given are about to go.

// trimCandidate finds the first user at or after from whose inbox starts
// with an entry to delete: one at or below every device's cursor, or one
// older than cutoff (0: none). ok is false if there is none.
func (db *DB) trimCandidate(ctx context.Context, from natter.UserID, cutoff int64) (user natter.UserID, ok bool, err error) {
	var name string
	err = db.rdb.QueryRowContext(ctx,
		`SELECT u.name FROM users u
		 WHERE u.name >= ?1 AND (
		     (SELECT min(i.seq) FROM inbox i WHERE i.user = u.name)
		         <= (SELECT min(d.cursor) FROM devices d WHERE d.user = u.name)
		  OR (SELECT coalesce(m.sent_at, r.at, c.sent_at, 0)
		      FROM inbox i
		      LEFT JOIN messages m ON m.pk = i.message
		      LEFT JOIN receipts r ON r.pk = i.receipt
		      LEFT JOIN copies c ON c.pk = i.copy
		      WHERE i.user = u.name ORDER BY i.seq LIMIT 1) < ?2)
		 ORDER BY u.name LIMIT 1`,
		string(from), cutoff).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return natter.UserID(name), true, nil
}

// TrimInbox deletes acknowledged and expired inbox entries; see
// natter.Store.
func (db *DB) TrimInbox(ctx context.Context, from natter.UserID, olderThan time.Time, limit int) (natter.TrimResult, error) {
	op := fmt.Sprintf("trim inboxes from %q", from)
	if err := db.reading(op); err != nil {
		return natter.TrimResult{}, err
	}
	limit = max(limit, 1)
	var cutoff int64 // entries with a time below it expire; 0: none
	if !olderThan.IsZero() {
		cutoff = olderThan.UnixMicro()
	}
	res := natter.TrimResult{Next: from}
	for limit > 0 {
		user, ok, err := db.trimCandidate(ctx, res.Next, cutoff)
		if err != nil {
			return res, wrap(op, err)
		}
		if !ok {
			res.Done = true
			return res, nil
		}
		t, err := db.trimUser(ctx, user, cutoff, limit)
		if err != nil {
			return res, err
		}
		res.Acked += t.acked
		if t.expired > 0 {
			if res.Expired == nil {
				res.Expired = make(map[natter.UserID]int)
			}
			res.Expired[user] += t.expired
		}
		limit -= t.acked + t.expired
		res.Next = user
		if !t.more {
			// The smallest name after user: the next call starts there.
			res.Next = user + "\x00"
		}
	}
	return res, nil
}

// trimmed is what one trimUser write deleted.
type trimmed struct {
	acked, expired int
	more           bool // it stopped at limit: the user may have more
}

// trimUser deletes, in one write, up to limit entries from the start of
// user's inbox that are acknowledged by every device of user or older than
// cutoff (0: none expire), and what only they referred to.
func (db *DB) trimUser(ctx context.Context, user natter.UserID, cutoff int64, limit int) (trimmed, error) {
	var t trimmed
	err := db.write(ctx, "trim inbox of "+string(user), func(ctx context.Context, w *writer) error {
		t = trimmed{}
		// Read inside the write: a device that logged in (at cursor 0)
		// since the candidate was found holds the entries back.
		var floor sql.NullInt64
		if err := w.queryRow(ctx, `SELECT min(cursor) FROM devices WHERE user = ?`, string(user)).Scan(&floor); err != nil {
			return fmt.Errorf("read cursors: %w", err)
		}
		s, err := w.stmt(ctx,
			`SELECT i.seq, i.message, i.receipt, i.copy, coalesce(m.sent_at, r.at, c.sent_at, 0)
			 FROM inbox i
			 LEFT JOIN messages m ON m.pk = i.message
			 LEFT JOIN receipts r ON r.pk = i.receipt
			 LEFT JOIN copies c ON c.pk = i.copy
			 WHERE i.user = ? ORDER BY i.seq LIMIT ?`)
		if err != nil {
			return err
		}
		rows, err := s.QueryContext(ctx, string(user), limit)
		if err != nil {
			return fmt.Errorf("read inbox: %w", err)
		}
		var (
			last                     int64
			messages, receipts, cops []int64
			n                        int
		)
		for rows.Next() {
			var (
				seq, at        int64
				msg, rcpt, cpy sql.NullInt64
			)
			if err := rows.Scan(&seq, &msg, &rcpt, &cpy, &at); err != nil {
				rows.Close()
				return err
			}
			n++
			acked := floor.Valid && seq <= floor.Int64
			expired := cutoff != 0 && at < cutoff
			if !acked && !expired {
				break
			}
			if acked {
				t.acked++
			} else {
				t.expired++
			}
			last = seq
			switch {
			case msg.Valid:
				messages = append(messages, msg.Int64)
			case rcpt.Valid:
				receipts = append(receipts, rcpt.Int64)
			case cpy.Valid:
				cops = append(cops, cpy.Int64)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read inbox: %w", err)
		}
		t.more = n == limit && t.acked+t.expired == limit
		if last == 0 {
			return nil
		}
		// The inbox's highest number given may be among the entries
		// going: keep it in the floor (counters.go).
		if err := w.exec1(ctx,
			`UPDATE users SET inbox_seq = ?1 WHERE name = ?2 AND inbox_seq < ?1
			 AND NOT EXISTS (SELECT 1 FROM inbox WHERE user = ?2 AND seq > ?1)`,
			last, string(user)); err != nil {
			return fmt.Errorf("raise inbox floor: %w", err)
		}
		if err := w.exec1(ctx, `DELETE FROM inbox WHERE user = ? AND seq <= ?`, string(user), last); err != nil {
			return fmt.Errorf("delete entries: %w", err)
		}
		for _, pk := range messages {
			if err := releaseMessage(ctx, w, pk, cutoff); err != nil {
				return err
			}
		}
		for _, pk := range receipts {
			if err := w.exec1(ctx,
				`DELETE FROM receipts WHERE pk = ?1
				 AND NOT EXISTS (SELECT 1 FROM inbox i, receipts r WHERE r.pk = ?1 AND i.user = r.recipient AND i.seq = r.to_seq)
				 AND NOT EXISTS (SELECT 1 FROM inbox i, receipts r WHERE r.pk = ?1 AND i.user = r.sender AND i.seq = r.from_seq)`,
				pk); err != nil {
				return fmt.Errorf("delete receipt: %w", err)
			}
		}
		for _, pk := range cops {
			if err := releaseCopy(ctx, w, pk, cutoff); err != nil {
				return err
			}
		}
		return nil
	})
	return t, err
}

// releaseMessage deletes message pk, or trims it if it was sent at or after
// cutoff (or cutoff is 0), once neither of its inbox entries is left.
func releaseMessage(ctx context.Context, w *writer, pk, cutoff int64) error {
	var left bool
	var at int64
	err := w.queryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM inbox i WHERE i.user = m.recipient AND i.seq = m.to_seq)
		     OR EXISTS (SELECT 1 FROM inbox i WHERE i.user = m.sender AND i.seq = m.from_seq),
		        coalesce(m.sent_at, 0)
		 FROM messages m WHERE m.pk = ?`, pk).Scan(&left, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // deleted with an earlier entry of this write
	}
	if err != nil {
		return fmt.Errorf("look at message: %w", err)
	}
	switch {
	case left:
		return nil
	case cutoff == 0 || at >= cutoff:
		if err := w.exec1(ctx, `UPDATE messages SET body = x'', trimmed = 1 WHERE pk = ?`, pk); err != nil {
			return fmt.Errorf("trim message: %w", err)
		}
		return nil
	}
	return deleteMessage(ctx, w, pk)
}

// deleteMessage deletes message pk and its chunk references, first raising
// its conversation's floor if it holds the highest number given.
func deleteMessage(ctx context.Context, w *writer, pk int64) error {
	if err := w.exec1(ctx,
		`UPDATE conversations SET last_seq = m.conv_seq
		 FROM messages m
		 WHERE m.pk = ? AND conversations.id = m.conv AND conversations.last_seq < m.conv_seq
		   AND NOT EXISTS (SELECT 1 FROM messages n WHERE n.conv = m.conv AND n.conv_seq > m.conv_seq)`,
		pk); err != nil {
		return fmt.Errorf("raise conversation floor: %w", err)
	}
	if err := w.exec1(ctx, `DELETE FROM message_chunks WHERE message = ?`, pk); err != nil {
		return fmt.Errorf("delete chunk references: %w", err)
	}
	if err := w.exec1(ctx, `DELETE FROM messages WHERE pk = ?`, pk); err != nil {
		return fmt.Errorf("delete message: %w", err)
	}
	return nil
}

// releaseCopy deletes copy pk (whose one entry is gone), or trims it if it
// was sent at or after cutoff (or cutoff is 0).
func releaseCopy(ctx context.Context, w *writer, pk, cutoff int64) error {
	q := `UPDATE copies SET body = x'', trimmed = 1 WHERE pk = ?1 AND (?2 = 0 OR coalesce(sent_at, 0) >= ?2)`
	if err := w.exec1(ctx, q, pk, cutoff); err != nil {
		return fmt.Errorf("trim copy: %w", err)
	}
	if err := w.exec1(ctx, `DELETE FROM copies WHERE pk = ? AND trimmed = 0`, pk); err != nil {
		return fmt.Errorf("delete copy: %w", err)
	}
	return nil
}

// ForgetTrimmed deletes trimmed messages and copies sent before olderThan;
// see natter.Store. Messages are found by a scan in pk order on a reader
// (no index: see migration 0008), which stops at the first message sent at
// or after olderThan; one write then deletes up to limit of them, and the
// trimmed copies the partial index copies_trimmed finds.
func (db *DB) ForgetTrimmed(ctx context.Context, olderThan time.Time, limit int) (int, error) {
	const op = "forget trimmed messages"
	if err := db.reading(op); err != nil {
		return 0, err
	}
	limit = max(limit, 1)
	if olderThan.IsZero() {
		return 0, nil
	}
	cutoff := olderThan.UnixMicro()
	pks, err := db.oldTrimmed(ctx, cutoff, limit)
	if err != nil {
		return 0, wrap(op, err)
	}
	var n int
	err = db.write(ctx, op, func(ctx context.Context, w *writer) error {
		n = 0
		for _, pk := range pks {
			var trimmed bool
			err := w.queryRow(ctx, `SELECT trimmed FROM messages WHERE pk = ?`, pk).Scan(&trimmed)
			if errors.Is(err, sql.ErrNoRows) || err == nil && !trimmed {
				continue // gone, or its pk given again to a new message
			}
			if err != nil {
				return err
			}
			if err := deleteMessage(ctx, w, pk); err != nil {
				return err
			}
			n++
		}
		if n == limit {
			return nil
		}
		res, err := w.exec(ctx,
			`DELETE FROM copies WHERE pk IN
			 (SELECT pk FROM copies WHERE trimmed = 1 AND coalesce(sent_at, 0) < ? LIMIT ?)`,
			cutoff, limit-n)
		if err != nil {
			return fmt.Errorf("delete trimmed copies: %w", err)
		}
		k, err := res.RowsAffected()
		n += int(k)
		return err
	})
	return n, err
}

// oldTrimmed returns up to limit trimmed messages sent before cutoff, in pk
// order, from a scan of messages in pk order that stops at the first one
// sent at or after cutoff. It passes over the old messages that are not
// trimmed (still in an inbox): few, since TrimInbox expires their entries
// with the same cutoff.
func (db *DB) oldTrimmed(ctx context.Context, cutoff int64, limit int) ([]int64, error) {
	rows, err := db.rdb.QueryContext(ctx, `SELECT pk, trimmed, coalesce(sent_at, 0) FROM messages ORDER BY pk`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var pks []int64
	for len(pks) < limit && rows.Next() {
		var (
			pk, at  int64
			trimmed bool
		)
		if err := rows.Scan(&pk, &trimmed, &at); err != nil {
			return nil, err
		}
		if at >= cutoff {
			break
		}
		if trimmed {
			pks = append(pks, pk)
		}
	}
	return pks, rows.Err()
}
