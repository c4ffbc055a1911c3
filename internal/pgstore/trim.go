package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natterim/natter"
)

// # Trimming
//
// TrimInbox deletes the prefix of each user's inbox that every device of the
// user acknowledged, or that expired. Finding the next user with something
// to delete is a read; the deleting is one transaction per user and per at
// most limit entries, with the user's row locked (so no append to that
// inbox runs meanwhile, on any node). It deletes the entries with one range
// DELETE, then looks at what they referred to: a message or receipt whose
// other entry (in the other user's inbox) is gone too, and a copy, are
// deleted, or, if still within the retention, trimmed (body dropped, row
// kept for the idempotency key). Those rows are locked (FOR UPDATE) before
// the look, in a statement of their own: two nodes trimming the two inboxes
// of one message at once then look one after the other, and the second sees
// the first's deletion, so the message is released once, not never.
//
// The counters (users.inbox_seq, conversations.last_seq) are the numbers
// given, not read back from the rows, so nothing needs raising before rows
// go.

// trimCandidate finds the first user at or after from whose inbox starts
// with an entry to delete: one at or below every device's cursor, or one
// older than cutoff (nil: none). ok is false if there is none.
//
// TrimResult.Next is the user after the last one done plus "\x00" (the
// smallest name after it), which PostgreSQL's text cannot hold: a from
// ending in NUL means the names after it.
func trimCandidate(ctx context.Context, q querier, from natter.UserID, cutoff any) (user natter.UserID, ok bool, err error) {
	after, strict := strings.CutSuffix(string(from), "\x00")
	cmp := ">="
	if strict {
		cmp = ">"
	}
	var name string
	err = q.QueryRow(ctx,
		`SELECT u.name FROM users u
		 WHERE u.name `+cmp+` $1 AND (
		     (SELECT min(i.seq) FROM inbox i WHERE i.username = u.name)
		         <= (SELECT min(d.cursor) FROM devices d WHERE d.username = u.name)
		  OR (SELECT coalesce(m.sent_at, r.at, c.sent_at, '-infinity')
		      FROM inbox i
		      LEFT JOIN messages m ON m.pk = i.message
		      LEFT JOIN receipts r ON r.pk = i.receipt
		      LEFT JOIN copies c ON c.pk = i.copy
		      WHERE i.username = u.name ORDER BY i.seq LIMIT 1) < $2::timestamptz)
		 ORDER BY u.name LIMIT 1`,
		after, cutoff).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return natter.UserID(name), true, nil
}

// TrimInbox deletes acknowledged and expired inbox entries; see
// natter.Store.
func (s *Store) TrimInbox(ctx context.Context, from natter.UserID, olderThan time.Time, limit int) (natter.TrimResult, error) {
	op := fmt.Sprintf("trim inboxes from %q", from)
	limit = max(limit, 1)
	cutoff := dbTime(olderThan) // entries with a time below it expire; nil: none
	res := natter.TrimResult{Next: from}
	for limit > 0 {
		var (
			user natter.UserID
			ok   bool
		)
		err := s.read(ctx, op, func(ctx context.Context, q querier) error {
			var err error
			user, ok, err = trimCandidate(ctx, q, res.Next, cutoff)
			return err
		})
		if err != nil {
			return res, err
		}
		if !ok {
			res.Done = true
			return res, nil
		}
		var t trimmed
		err = s.write(ctx, "trim inbox of "+string(user), func(ctx context.Context, q querier) error {
			var err error
			t, err = trimUser(ctx, q, user, cutoff, limit)
			return err
		})
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

// trimmed is what one trimUser transaction deleted.
type trimmed struct {
	acked, expired int
	more           bool // it stopped at limit: the user may have more
}

// trimUser deletes up to limit entries from the start of user's inbox that
// are acknowledged by every device of user or older than cutoff (nil: none
// expire), and what only they referred to.
func trimUser(ctx context.Context, q querier, user natter.UserID, cutoff any, limit int) (trimmed, error) {
	var t trimmed
	// The user's row first: appends to this inbox, and a device logging
	// in (at cursor 0, holding the entries back), wait or are waited for.
	if _, err := lockUsers(ctx, q, user); err != nil {
		return t, err
	}
	var floor *int64
	if err := q.QueryRow(ctx, `SELECT min(cursor) FROM devices WHERE username = $1`, string(user)).Scan(&floor); err != nil {
		return t, fmt.Errorf("read cursors: %w", err)
	}
	rows, err := q.Query(ctx,
		`SELECT i.seq, i.message, i.receipt, i.copy,
		        $3::timestamptz IS NOT NULL AND coalesce(m.sent_at, r.at, c.sent_at, '-infinity') < $3
		 FROM inbox i
		 LEFT JOIN messages m ON m.pk = i.message
		 LEFT JOIN receipts r ON r.pk = i.receipt
		 LEFT JOIN copies c ON c.pk = i.copy
		 WHERE i.username = $1 ORDER BY i.seq LIMIT $2`,
		string(user), limit, cutoff)
	if err != nil {
		return t, fmt.Errorf("read inbox: %w", err)
	}
	var (
		last                       int64
		messages, receipts, copies []int64
		n                          int
	)
	for rows.Next() {
		var (
			seq            int64
			msg, rcpt, cpy *int64
			expired        bool
		)
		if err := rows.Scan(&seq, &msg, &rcpt, &cpy, &expired); err != nil {
			rows.Close()
			return t, err
		}
		n++
		acked := floor != nil && seq <= *floor
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
		case msg != nil:
			messages = append(messages, *msg)
		case rcpt != nil:
			receipts = append(receipts, *rcpt)
		case cpy != nil:
			copies = append(copies, *cpy)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return t, fmt.Errorf("read inbox: %w", err)
	}
	t.more = n == limit && t.acked+t.expired == limit
	if last == 0 {
		return t, nil
	}
	if _, err := q.Exec(ctx, `DELETE FROM inbox WHERE username = $1 AND seq <= $2`, string(user), last); err != nil {
		return t, fmt.Errorf("delete entries: %w", err)
	}
	if err := releaseMessages(ctx, q, messages, cutoff); err != nil {
		return t, err
	}
	if err := releaseReceipts(ctx, q, receipts); err != nil {
		return t, err
	}
	if err := releaseCopies(ctx, q, copies, cutoff); err != nil {
		return t, err
	}
	return t, nil
}

// releaseMessages deletes each message of pks that has neither inbox entry
// left, or trims it if it was sent at or after cutoff (or cutoff is nil).
func releaseMessages(ctx context.Context, q querier, pks []int64, cutoff any) error {
	if len(pks) == 0 {
		return nil
	}
	// Locked in a statement of their own (see the package's trimming
	// note); the look below then sees every committed deletion.
	if _, err := q.Exec(ctx, `SELECT 1 FROM messages WHERE pk = ANY($1) ORDER BY pk FOR UPDATE`, pks); err != nil {
		return fmt.Errorf("lock messages: %w", err)
	}
	rows, err := q.Query(ctx,
		`SELECT pk FROM messages m WHERE pk = ANY($1)
		 AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.username = m.recipient AND i.seq = m.to_seq)
		 AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.username = m.sender AND i.seq = m.from_seq)
		 AND ($2::timestamptz IS NOT NULL AND coalesce(m.sent_at, '-infinity') < $2)`,
		pks, cutoff)
	if err != nil {
		return fmt.Errorf("look at messages: %w", err)
	}
	gone, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("look at messages: %w", err)
	}
	if gone == nil {
		gone = []int64{} // not NULL: pk = ANY(NULL) is no answer
	}
	if _, err := q.Exec(ctx,
		`UPDATE messages m SET body = '', trimmed = true WHERE pk = ANY($1) AND NOT trimmed
		 AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.username = m.recipient AND i.seq = m.to_seq)
		 AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.username = m.sender AND i.seq = m.from_seq)
		 AND NOT (pk = ANY($2))`,
		pks, gone); err != nil {
		return fmt.Errorf("trim messages: %w", err)
	}
	return deleteMessages(ctx, q, gone)
}

// deleteMessages deletes the messages pks and their chunk references.
func deleteMessages(ctx context.Context, q querier, pks []int64) error {
	if len(pks) == 0 {
		return nil
	}
	if _, err := q.Exec(ctx, `DELETE FROM message_chunks WHERE message = ANY($1)`, pks); err != nil {
		return fmt.Errorf("delete chunk references: %w", err)
	}
	if _, err := q.Exec(ctx, `DELETE FROM messages WHERE pk = ANY($1)`, pks); err != nil {
		return fmt.Errorf("delete messages: %w", err)
	}
	return nil
}

// releaseReceipts deletes each receipt of pks that has neither inbox entry
// left.
func releaseReceipts(ctx context.Context, q querier, pks []int64) error {
	if len(pks) == 0 {
		return nil
	}
	if _, err := q.Exec(ctx, `SELECT 1 FROM receipts WHERE pk = ANY($1) ORDER BY pk FOR UPDATE`, pks); err != nil {
		return fmt.Errorf("lock receipts: %w", err)
	}
	if _, err := q.Exec(ctx,
		`DELETE FROM receipts r WHERE pk = ANY($1)
		 AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.username = r.recipient AND i.seq = r.to_seq)
		 AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.username = r.sender AND i.seq = r.from_seq)`,
		pks); err != nil {
		return fmt.Errorf("delete receipts: %w", err)
	}
	return nil
}

// releaseCopies deletes the copies pks (whose one entry each is gone), or
// trims those sent at or after cutoff (all, if cutoff is nil).
func releaseCopies(ctx context.Context, q querier, pks []int64, cutoff any) error {
	if len(pks) == 0 {
		return nil
	}
	if _, err := q.Exec(ctx,
		`UPDATE copies SET body = '', trimmed = true
		 WHERE pk = ANY($1) AND ($2::timestamptz IS NULL OR coalesce(sent_at, '-infinity') >= $2)`,
		pks, cutoff); err != nil {
		return fmt.Errorf("trim copies: %w", err)
	}
	if _, err := q.Exec(ctx, `DELETE FROM copies WHERE pk = ANY($1) AND NOT trimmed`, pks); err != nil {
		return fmt.Errorf("delete copies: %w", err)
	}
	return nil
}

// ForgetTrimmed deletes trimmed messages and copies sent before olderThan;
// see natter.Store.
func (s *Store) ForgetTrimmed(ctx context.Context, olderThan time.Time, limit int) (int, error) {
	limit = max(limit, 1)
	if olderThan.IsZero() {
		return 0, nil
	}
	var n int
	err := s.write(ctx, "forget trimmed messages", func(ctx context.Context, q querier) error {
		n = 0
		rows, err := q.Query(ctx,
			`SELECT pk FROM messages WHERE trimmed AND coalesce(sent_at, '-infinity') < $1 LIMIT $2 FOR UPDATE SKIP LOCKED`,
			olderThan, limit)
		if err != nil {
			return fmt.Errorf("find trimmed messages: %w", err)
		}
		pks, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("find trimmed messages: %w", err)
		}
		if err := deleteMessages(ctx, q, pks); err != nil {
			return err
		}
		n = len(pks)
		if n == limit {
			return nil
		}
		tag, err := q.Exec(ctx,
			`DELETE FROM copies WHERE pk IN (
			     SELECT pk FROM copies WHERE trimmed AND coalesce(sent_at, '-infinity') < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
			olderThan, limit-n)
		if err != nil {
			return fmt.Errorf("delete trimmed copies: %w", err)
		}
		n += int(tag.RowsAffected())
		return nil
	})
	return n, err
}
