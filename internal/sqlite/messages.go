package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/natterim/natter"
)

// pair orders two users as the conversations table stores them (a < b).
func pair(x, y natter.UserID) (a, b natter.UserID) {
	if x < y {
		return x, y
	}
	return y, x
}

// AppendMessage stores m, assigns its conversation sequence number and
// appends it to the inboxes of m.To and m.From, all in one transaction. A
// message whose (From, ID) is already stored is not stored again: the first
// copy is returned with Duplicate set.
//
// Both users must exist (natter.ErrNoSuchUser), and From must differ from To
// (natter.ErrSelf): a message to oneself would land twice in one inbox.
// m.Chunks are recorded in the same transaction (see recordMessageChunks).
func (db *DB) AppendMessage(ctx context.Context, m natter.Message) (natter.Appended, error) {
	op := fmt.Sprintf("append message %s→%s %s", m.From, m.To, m.ID)
	if m.From == m.To {
		return natter.Appended{}, fmt.Errorf("sqlite: %s: %w", op, natter.ErrSelf)
	}
	var res natter.Appended
	err := db.write(ctx, op, func(ctx context.Context, w *writer) error {
		res = natter.Appended{}
		if dup, err := findMessage(ctx, w, m.From, m.ID, &res); err != nil || dup {
			res.Duplicate = dup
			return err
		}
		// The inbox counters first: they also check that both users exist.
		toSeq, err := nextInboxSeq(ctx, w, m.To)
		if err != nil {
			return err
		}
		fromSeq, err := nextInboxSeq(ctx, w, m.From)
		if err != nil {
			return err
		}
		conv, convSeq, err := nextConvSeq(ctx, w, m.From, m.To)
		if err != nil {
			return err
		}
		var pk int64
		err = w.queryRow(ctx,
			`INSERT INTO messages (sender, id, recipient, sender_device, body, conv, conv_seq, sent_at, to_seq, from_seq)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			 RETURNING pk`,
			string(m.From), string(m.ID), string(m.To), string(m.FromDevice), nonNil(m.Body),
			conv, convSeq, dbTime(m.SentAt), toSeq, fromSeq).Scan(&pk)
		if err != nil {
			return fmt.Errorf("insert message: %w", err)
		}
		if err := recordMessageChunks(ctx, w, pk, m); err != nil {
			return err
		}
		err = w.exec1(ctx,
			`INSERT INTO inbox (user, seq, message) VALUES (?, ?, ?), (?, ?, ?)`,
			string(m.To), toSeq, pk, string(m.From), fromSeq, pk)
		if err != nil {
			return fmt.Errorf("insert inbox entries: %w", err)
		}
		res.Message = m
		res.Message.ConvSeq = uint64(convSeq)
		res.Message.SentAt = storedTime(m.SentAt)
		res.ToSeq, res.FromSeq = uint64(toSeq), uint64(fromSeq)
		return nil
	})
	if err != nil {
		return natter.Appended{}, err
	}
	return res, nil
}

// findMessage loads the message (sender, id) into res, if it is stored.
func findMessage(ctx context.Context, w *writer, sender natter.UserID, id natter.MessageID, res *natter.Appended) (bool, error) {
	var (
		m                       natter.Message
		from, device, to, mid   string
		sentAt                  sql.NullInt64
		convSeq, toSeq, fromSeq int64
		trimmed                 bool
	)
	err := w.queryRow(ctx,
		`SELECT id, sender, sender_device, recipient, body, conv_seq, sent_at, to_seq, from_seq, trimmed
		 FROM messages WHERE sender = ? AND id = ?`,
		string(sender), string(id)).Scan(&mid, &from, &device, &to, &m.Body, &convSeq, &sentAt, &toSeq, &fromSeq, &trimmed)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for a first copy: %w", err)
	}
	m.ID, m.From, m.FromDevice, m.To = natter.MessageID(mid), natter.UserID(from), natter.DeviceID(device), natter.UserID(to)
	m.ConvSeq, m.SentAt = uint64(convSeq), goTime(sentAt)
	if trimmed {
		m.Body = nil
	}
	res.Message, res.ToSeq, res.FromSeq, res.Trimmed = m, uint64(toSeq), uint64(fromSeq), trimmed
	return true, nil
}

// AppendReceipt stores r, its ID included (NULL for none), and appends it to
// the inboxes of r.To and r.From.
// Both users must exist (natter.ErrNoSuchUser) and differ (natter.ErrSelf);
// r.State must be ReceiptDelivered or ReceiptRead (natter.ErrBadRequest).
func (db *DB) AppendReceipt(ctx context.Context, r natter.Receipt) (toSeq, fromSeq uint64, err error) {
	op := fmt.Sprintf("append %s receipt %s→%s up to %d", r.State, r.From, r.To, r.Upto)
	switch {
	case r.From == r.To:
		return 0, 0, fmt.Errorf("sqlite: %s: %w", op, natter.ErrSelf)
	case r.State != natter.ReceiptDelivered && r.State != natter.ReceiptRead:
		return 0, 0, fmt.Errorf("sqlite: %s: %w: unknown receipt state %q", op, natter.ErrBadRequest, r.State)
	}
	upto, err := dbSeq("receipt upto", r.Upto)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var ts, fs int64
	err = db.write(ctx, op, func(ctx context.Context, w *writer) error {
		var err error
		if ts, err = nextInboxSeq(ctx, w, r.To); err != nil {
			return err
		}
		if fs, err = nextInboxSeq(ctx, w, r.From); err != nil {
			return err
		}
		var pk int64
		err = w.queryRow(ctx,
			`INSERT INTO receipts (sender, recipient, upto, id, state, at, to_seq, from_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING pk`,
			string(r.From), string(r.To), upto, dbMessageID(r.ID), string(r.State), dbTime(r.At), ts, fs).Scan(&pk)
		if err != nil {
			return fmt.Errorf("insert receipt: %w", err)
		}
		err = w.exec1(ctx,
			`INSERT INTO inbox (user, seq, receipt) VALUES (?, ?, ?), (?, ?, ?)`,
			string(r.To), ts, pk, string(r.From), fs, pk)
		if err != nil {
			return fmt.Errorf("insert inbox entries: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return uint64(ts), uint64(fs), nil
}

// dbMessageID is a receipt's message ID as stored: NULL for none.
func dbMessageID(id natter.MessageID) any {
	if id == "" {
		return nil
	}
	return string(id)
}

// AppendCopy stores m in owner's inbox only, as a copy of a message that went
// peer to peer, and returns its inbox sequence number. A copy has no
// conversation: m.ConvSeq is ignored, and the copy reads back with ConvSeq 0.
// A copy whose (owner, From, ID) is already stored is not stored again: the
// first copy's sequence number is returned with dup set. Copies are kept
// apart from messages, so neither's idempotency key sees the other.
//
// owner must be m.From or m.To (natter.ErrBadRequest); m.From must differ
// from m.To (natter.ErrSelf), as for AppendMessage. Both users must exist
// (natter.ErrNoSuchUser): the store keeps no message that names a user it
// does not know.
func (db *DB) AppendCopy(ctx context.Context, owner natter.UserID, m natter.Message) (seq uint64, dup bool, err error) {
	op := fmt.Sprintf("append %s's copy of %s→%s %s", owner, m.From, m.To, m.ID)
	switch {
	case owner != m.From && owner != m.To:
		return 0, false, fmt.Errorf("sqlite: %s: %w: %s is neither the sender nor the recipient", op, natter.ErrBadRequest, owner)
	case m.From == m.To:
		return 0, false, fmt.Errorf("sqlite: %s: %w", op, natter.ErrSelf)
	}
	peer := m.To
	if owner == m.To {
		peer = m.From
	}
	var s int64
	err = db.write(ctx, op, func(ctx context.Context, w *writer) error {
		dup = false
		err := w.queryRow(ctx,
			`SELECT seq FROM copies WHERE owner = ? AND sender = ? AND id = ?`,
			string(owner), string(m.From), string(m.ID)).Scan(&s)
		if err == nil {
			dup = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look for a first copy: %w", err)
		}
		// The counter first: it also checks that owner exists.
		if s, err = nextInboxSeq(ctx, w, owner); err != nil {
			return err
		}
		if err := mustExist(ctx, w, peer); err != nil {
			return err
		}
		var pk int64
		err = w.queryRow(ctx,
			`INSERT INTO copies (owner, sender, id, recipient, sender_device, body, sent_at, seq)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			 RETURNING pk`,
			string(owner), string(m.From), string(m.ID), string(m.To), string(m.FromDevice), nonNil(m.Body),
			dbTime(m.SentAt), s).Scan(&pk)
		if err != nil {
			return fmt.Errorf("insert copy: %w", err)
		}
		if err := w.exec1(ctx, `INSERT INTO inbox (user, seq, copy) VALUES (?, ?, ?)`, string(owner), s, pk); err != nil {
			return fmt.Errorf("insert inbox entry: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return uint64(s), dup, nil
}

// Inbox returns up to limit entries of user's inbox after sequence number
// after, in order. A limit of zero or less returns nothing.
func (db *DB) Inbox(ctx context.Context, user natter.UserID, after uint64, limit int) ([]natter.InboxEntry, error) {
	op := fmt.Sprintf("read inbox of %s after %d", user, after)
	if err := db.reading(op); err != nil {
		return nil, err
	}
	if limit <= 0 || after >= math.MaxInt64 {
		return nil, nil
	}
	rows, err := db.rdb.QueryContext(ctx,
		`SELECT i.seq,
		        m.id, m.sender, m.sender_device, m.recipient, m.body, m.conv_seq, m.sent_at,
		        r.sender, r.recipient, r.upto, r.id, r.state, r.at,
		        c.id, c.sender, c.sender_device, c.recipient, c.body, c.sent_at
		 FROM inbox i
		 LEFT JOIN messages m ON m.pk = i.message
		 LEFT JOIN receipts r ON r.pk = i.receipt
		 LEFT JOIN copies c ON c.pk = i.copy
		 WHERE i.user = ? AND i.seq > ?
		 ORDER BY i.seq
		 LIMIT ?`,
		string(user), int64(after), limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var entries []natter.InboxEntry
	for rows.Next() {
		var (
			seq                      int64
			mid, mFrom, mDevice, mTo sql.NullString
			body                     []byte
			convSeq                  sql.NullInt64
			sentAt                   sql.NullInt64
			rFrom, rTo, rID, rState  sql.NullString
			rUpto                    sql.NullInt64
			rAt                      sql.NullInt64
			cid, cFrom, cDevice, cTo sql.NullString
			cBody                    []byte
			cSentAt                  sql.NullInt64
		)
		if err := rows.Scan(&seq, &mid, &mFrom, &mDevice, &mTo, &body, &convSeq, &sentAt,
			&rFrom, &rTo, &rUpto, &rID, &rState, &rAt,
			&cid, &cFrom, &cDevice, &cTo, &cBody, &cSentAt); err != nil {
			return nil, wrap(op, err)
		}
		e := natter.InboxEntry{Seq: uint64(seq)}
		switch {
		case cid.Valid:
			e.Copy = true
			e.Message = &natter.Message{
				ID:         natter.MessageID(cid.String),
				From:       natter.UserID(cFrom.String),
				FromDevice: natter.DeviceID(cDevice.String),
				To:         natter.UserID(cTo.String),
				Body:       cBody,
				SentAt:     goTime(cSentAt),
			}
		case mid.Valid:
			e.Message = &natter.Message{
				ID:         natter.MessageID(mid.String),
				From:       natter.UserID(mFrom.String),
				FromDevice: natter.DeviceID(mDevice.String),
				To:         natter.UserID(mTo.String),
				Body:       body,
				ConvSeq:    uint64(convSeq.Int64),
				SentAt:     goTime(sentAt),
			}
		default:
			e.Receipt = &natter.Receipt{
				From:  natter.UserID(rFrom.String),
				To:    natter.UserID(rTo.String),
				Upto:  uint64(rUpto.Int64),
				ID:    natter.MessageID(rID.String), // NULL: none
				State: natter.ReceiptState(rState.String),
				At:    goTime(rAt),
			}
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return entries, nil
}

// Conversation returns up to limit messages between a and b with
// conversation sequence numbers above after, in order. A limit of zero or
// less returns nothing.
func (db *DB) Conversation(ctx context.Context, a, b natter.UserID, after uint64, limit int) ([]natter.Message, error) {
	op := fmt.Sprintf("read conversation %s–%s after %d", a, b, after)
	if err := db.reading(op); err != nil {
		return nil, err
	}
	if limit <= 0 || after >= math.MaxInt64 {
		return nil, nil
	}
	a, b = pair(a, b)
	rows, err := db.rdb.QueryContext(ctx,
		`SELECT m.id, m.sender, m.sender_device, m.recipient, m.body, m.conv_seq, m.sent_at
		 FROM conversations c JOIN messages m ON m.conv = c.id
		 WHERE c.a = ? AND c.b = ? AND m.conv_seq > ? AND m.trimmed = 0
		 ORDER BY m.conv_seq
		 LIMIT ?`,
		string(a), string(b), int64(after), limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var msgs []natter.Message
	for rows.Next() {
		var (
			m                     natter.Message
			mid, from, device, to string
			convSeq               int64
			sentAt                sql.NullInt64
		)
		if err := rows.Scan(&mid, &from, &device, &to, &m.Body, &convSeq, &sentAt); err != nil {
			return nil, wrap(op, err)
		}
		m.ID, m.From, m.FromDevice, m.To = natter.MessageID(mid), natter.UserID(from), natter.DeviceID(device), natter.UserID(to)
		m.ConvSeq, m.SentAt = uint64(convSeq), goTime(sentAt)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return msgs, nil
}
