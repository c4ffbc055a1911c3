package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natterim/natter"
)

// pair orders two users as the conversations table stores them (a < b).
func pair(x, y natter.UserID) (a, b natter.UserID) {
	if x < y {
		return x, y
	}
	return y, x
}

// AppendReceipt stores r, its ID included (NULL for none), and appends it to
// the inboxes of r.To and r.From.
// Both users must exist (natter.ErrNoSuchUser) and differ (natter.ErrSelf);
// r.State must be ReceiptDelivered or ReceiptRead (natter.ErrBadRequest).
func (s *Store) AppendReceipt(ctx context.Context, r natter.Receipt) (toSeq, fromSeq uint64, err error) {
	op := fmt.Sprintf("append %s receipt %s→%s up to %d", r.State, r.From, r.To, r.Upto)
	switch {
	case r.From == r.To:
		return 0, 0, fmt.Errorf("pgstore: %s: %w", op, natter.ErrSelf)
	case r.State != natter.ReceiptDelivered && r.State != natter.ReceiptRead:
		return 0, 0, fmt.Errorf("pgstore: %s: %w: unknown receipt state %q", op, natter.ErrBadRequest, r.State)
	}
	if _, err := dbSeq("receipt upto", r.Upto); err != nil {
		return 0, 0, fmt.Errorf("pgstore: %s: %w", op, err)
	}
	a, err := s.queue(ctx, op, &appendReq{ctx: ctx, rc: &r, done: make(chan struct{})})
	if err != nil {
		return 0, 0, err
	}
	return a.ToSeq, a.FromSeq, nil
}

// AppendCopy stores m in owner's inbox only, as a copy of a message that went
// peer to peer, and returns its inbox sequence number; see natter.Store. A
// copy whose (owner, From, ID) is already stored is not stored again: the
// first copy's sequence number is returned with dup set.
func (s *Store) AppendCopy(ctx context.Context, owner natter.UserID, m natter.Message) (seq uint64, dup bool, err error) {
	op := fmt.Sprintf("append %s's copy of %s→%s %s", owner, m.From, m.To, m.ID)
	switch {
	case owner != m.From && owner != m.To:
		return 0, false, fmt.Errorf("pgstore: %s: %w: %s is neither the sender nor the recipient", op, natter.ErrBadRequest, owner)
	case m.From == m.To:
		return 0, false, fmt.Errorf("pgstore: %s: %w", op, natter.ErrSelf)
	}
	peer := m.To
	if owner == m.To {
		peer = m.From
	}
	var n int64
	err = s.write(ctx, op, func(ctx context.Context, q querier) error {
		dup = false
		seqs, err := lockUsers(ctx, q, owner)
		if err != nil {
			return err
		}
		err = q.QueryRow(ctx, `SELECT seq FROM copies WHERE owner = $1 AND sender = $2 AND id = $3`,
			string(owner), string(m.From), string(m.ID)).Scan(&n)
		if err == nil {
			dup = true
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("look for a first copy: %w", err)
		}
		n = seqs[owner] + 1
		tag, err := q.Exec(ctx, `
			WITH c AS (
			    INSERT INTO copies (owner, sender, id, recipient, sender_device, body, sent_at, seq)
			    SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM users WHERE name = $9)
			    RETURNING pk),
			i AS (
			    INSERT INTO inbox (username, seq, copy) SELECT $1, $8, pk FROM c)
			UPDATE users SET inbox_seq = $8 WHERE name = $1 AND EXISTS (SELECT 1 FROM c)`,
			string(owner), string(m.From), string(m.ID), string(m.To), string(m.FromDevice), nonNil(m.Body),
			dbTime(m.SentAt), n, string(peer))
		if err != nil {
			return fmt.Errorf("insert copy: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, peer)
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return uint64(n), dup, nil
}

// Inbox returns up to limit entries of user's inbox after sequence number
// after, in order. A limit of zero or less returns nothing.
func (s *Store) Inbox(ctx context.Context, user natter.UserID, after uint64, limit int) ([]natter.InboxEntry, error) {
	var entries []natter.InboxEntry
	err := s.read(ctx, fmt.Sprintf("read inbox of %s after %d", user, after), func(ctx context.Context, q querier) error {
		entries = nil
		if limit <= 0 || after >= math.MaxInt64 {
			return nil
		}
		rows, err := q.Query(ctx,
			`SELECT i.seq,
			        m.id, m.sender, m.sender_device, m.recipient, m.body, m.conv_seq, m.sent_at,
			        r.sender, r.recipient, r.upto, r.id, r.state, r.at,
			        c.id, c.sender, c.sender_device, c.recipient, c.body, c.sent_at
			 FROM inbox i
			 LEFT JOIN messages m ON m.pk = i.message
			 LEFT JOIN receipts r ON r.pk = i.receipt
			 LEFT JOIN copies c ON c.pk = i.copy
			 WHERE i.username = $1 AND i.seq > $2
			 ORDER BY i.seq
			 LIMIT $3`,
			string(user), int64(after), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				seq                      int64
				mid, mFrom, mDevice, mTo *string
				body                     []byte
				convSeq                  *int64
				sentAt                   *time.Time
				rFrom, rTo, rID, rState  *string
				rUpto                    *int64
				rAt                      *time.Time
				cid, cFrom, cDevice, cTo *string
				cBody                    []byte
				cSentAt                  *time.Time
			)
			if err := rows.Scan(&seq, &mid, &mFrom, &mDevice, &mTo, &body, &convSeq, &sentAt,
				&rFrom, &rTo, &rUpto, &rID, &rState, &rAt,
				&cid, &cFrom, &cDevice, &cTo, &cBody, &cSentAt); err != nil {
				return err
			}
			e := natter.InboxEntry{Seq: uint64(seq)}
			switch {
			case cid != nil:
				e.Copy = true
				e.Message = &natter.Message{
					ID:         natter.MessageID(*cid),
					From:       natter.UserID(*cFrom),
					FromDevice: natter.DeviceID(*cDevice),
					To:         natter.UserID(*cTo),
					Body:       cBody,
					SentAt:     goTime(cSentAt),
				}
			case mid != nil:
				e.Message = &natter.Message{
					ID:         natter.MessageID(*mid),
					From:       natter.UserID(*mFrom),
					FromDevice: natter.DeviceID(*mDevice),
					To:         natter.UserID(*mTo),
					Body:       body,
					ConvSeq:    uint64(*convSeq),
					SentAt:     goTime(sentAt),
				}
			case rFrom != nil:
				e.Receipt = &natter.Receipt{
					From:  natter.UserID(*rFrom),
					To:    natter.UserID(*rTo),
					Upto:  uint64(*rUpto),
					State: natter.ReceiptState(*rState),
					At:    goTime(rAt),
				}
				if rID != nil {
					e.Receipt.ID = natter.MessageID(*rID)
				}
			default:
				return fmt.Errorf("inbox entry %d refers to nothing", seq)
			}
			entries = append(entries, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// Conversation returns up to limit messages between a and b with
// conversation sequence numbers above after, in order. A limit of zero or
// less returns nothing.
func (s *Store) Conversation(ctx context.Context, a, b natter.UserID, after uint64, limit int) ([]natter.Message, error) {
	var msgs []natter.Message
	a, b = pair(a, b)
	err := s.read(ctx, fmt.Sprintf("read conversation %s–%s after %d", a, b, after), func(ctx context.Context, q querier) error {
		msgs = nil
		if limit <= 0 || after >= math.MaxInt64 {
			return nil
		}
		rows, err := q.Query(ctx,
			`SELECT m.id, m.sender, m.sender_device, m.recipient, m.body, m.conv_seq, m.sent_at
			 FROM conversations c JOIN messages m ON m.conv = c.id
			 WHERE c.a = $1 AND c.b = $2 AND m.conv_seq > $3 AND NOT m.trimmed
			 ORDER BY m.conv_seq
			 LIMIT $4`,
			string(a), string(b), int64(after), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				m                     natter.Message
				mid, from, device, to string
				convSeq               int64
				sentAt                *time.Time
			)
			if err := rows.Scan(&mid, &from, &device, &to, &m.Body, &convSeq, &sentAt); err != nil {
				return err
			}
			m.ID, m.From, m.FromDevice, m.To = natter.MessageID(mid), natter.UserID(from), natter.DeviceID(device), natter.UserID(to)
			m.ConvSeq, m.SentAt = uint64(convSeq), goTime(sentAt)
			msgs = append(msgs, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return msgs, nil
}
