package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/natterim/natter"
)

// The archive, each user's optional server-side history
// (migrations/0005_archive.sql). Records and wrapped keys are opaque bytes.

// ArchiveOn reports whether user's archive is on; see natter.Store.
func (db *DB) ArchiveOn(ctx context.Context, user natter.UserID) (bool, error) {
	op := "read archive state of " + string(user)
	if err := db.reading(op); err != nil {
		return false, err
	}
	var exists, on bool
	err := db.rdb.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1), EXISTS (SELECT 1 FROM archives WHERE user = ?1)`,
		string(user)).Scan(&exists, &on)
	if err != nil {
		return false, wrap(op, err)
	}
	if !exists {
		return false, fmt.Errorf("sqlite: %s: %w: %s", op, natter.ErrNoSuchUser, user)
	}
	return on, nil
}

// SetArchive turns user's archive on or off; off deletes its records and
// keys in the same write. See natter.Store.
func (db *DB) SetArchive(ctx context.Context, user natter.UserID, on bool) error {
	op := fmt.Sprintf("set archive of %s on=%v", user, on)
	return db.write(ctx, op, func(ctx context.Context, w *writer) error {
		if err := mustExist(ctx, w, user); err != nil {
			return err
		}
		if on {
			return w.exec1(ctx, `INSERT INTO archives (user) VALUES (?) ON CONFLICT (user) DO NOTHING`, string(user))
		}
		for _, q := range []string{
			`DELETE FROM archive_records WHERE user = ?`,
			`DELETE FROM archive_keys WHERE user = ?`,
			`DELETE FROM archives WHERE user = ?`,
		} {
			if err := w.exec1(ctx, q, string(user)); err != nil {
				return err
			}
		}
		return nil
	})
}

// archiveUsage returns the bytes user's archive holds, inside a write:
// natter.ErrArchiveOff if it is off, natter.ErrNoSuchUser if user does not
// exist.
func archiveUsage(ctx context.Context, w *writer, user natter.UserID) (int64, error) {
	var used int64
	err := w.queryRow(ctx, `SELECT bytes FROM archives WHERE user = ?`, string(user)).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		if err := mustExist(ctx, w, user); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("%w: %s's archive", natter.ErrArchiveOff, user)
	}
	if err != nil {
		return 0, fmt.Errorf("read archive usage: %w", err)
	}
	return used, nil
}

// PutArchive adds items to user's archive, skipping keys it holds; see
// natter.Store. The quota check and the records are one write: a batch over
// the quota is rolled back whole (to the request's savepoint), and two
// concurrent puts cannot both slip under the quota.
func (db *DB) PutArchive(ctx context.Context, user natter.UserID, items []natter.ArchiveItem, at time.Time, quota int64) error {
	op := fmt.Sprintf("put %d archive records of %s", len(items), user)
	for i, it := range items {
		if it.Key == "" || len(it.Data) == 0 {
			return fmt.Errorf("sqlite: %s: %w: record %d has an empty key or data", op, natter.ErrBadRequest, i)
		}
	}
	t := at.UnixMicro()
	return db.write(ctx, op, func(ctx context.Context, w *writer) error {
		used, err := archiveUsage(ctx, w, user)
		if err != nil {
			return err
		}
		var added int64
		for _, it := range items {
			res, err := w.exec(ctx,
				`INSERT INTO archive_records (user, key, at, data) VALUES (?, ?, ?, ?)
				 ON CONFLICT (user, key) DO NOTHING`,
				string(user), it.Key, t, it.Data)
			if err != nil {
				return fmt.Errorf("insert record: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				added += int64(len(it.Data))
			}
		}
		if quota >= 0 && used+added > quota {
			return fmt.Errorf("%w: %s's archive holds %d bytes; %d more would pass the quota of %d",
				natter.ErrQuota, user, used, added, quota)
		}
		if added == 0 {
			return nil
		}
		return w.exec1(ctx, `UPDATE archives SET bytes = bytes + ? WHERE user = ?`, added, string(user))
	})
}

// ArchiveRecords returns user's records after the sequence number after;
// see natter.Store. It reads in one read transaction, so that the user
// check and the records agree.
func (db *DB) ArchiveRecords(ctx context.Context, user natter.UserID, after int64, limit, maxBytes int) ([]natter.ArchiveRecord, bool, error) {
	op := fmt.Sprintf("read archive records of %s after %d", user, after)
	if err := db.reading(op); err != nil {
		return nil, false, err
	}
	limit = max(limit, 1)
	tx, err := db.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, false, wrap(op, err)
	}
	defer tx.Rollback()
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE name = ?)`, string(user)).Scan(&exists); err != nil {
		return nil, false, wrap(op, err)
	}
	if !exists {
		return nil, false, fmt.Errorf("sqlite: %s: %w: %s", op, natter.ErrNoSuchUser, user)
	}
	// One row more than the limit tells whether more follow; the loop
	// stops at the first row that does not fit, so at most one record is
	// read beyond what is returned.
	rows, err := tx.QueryContext(ctx,
		`SELECT seq, at, data FROM archive_records WHERE user = ? AND seq > ? ORDER BY seq LIMIT ?`,
		string(user), after, limit+1)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	defer rows.Close()
	var recs []natter.ArchiveRecord
	more, total := false, 0
	for rows.Next() {
		var r natter.ArchiveRecord
		var t int64
		if err := rows.Scan(&r.Seq, &t, &r.Data); err != nil {
			return nil, false, wrap(op, err)
		}
		if len(recs) == limit || len(recs) > 0 && total+len(r.Data) > maxBytes {
			more = true
			break
		}
		r.At = time.UnixMicro(t).UTC()
		recs = append(recs, r)
		total += len(r.Data)
	}
	if err := rows.Err(); err != nil {
		return nil, false, wrap(op, err)
	}
	return recs, more, nil
}

// PutArchiveKey stores the archive key wrapped for user's device, replacing
// the previous one; see natter.Store.
func (db *DB) PutArchiveKey(ctx context.Context, user natter.UserID, device natter.DeviceID, wrapped []byte) error {
	op := fmt.Sprintf("put archive key of %s/%s", user, device)
	if len(wrapped) == 0 {
		return fmt.Errorf("sqlite: %s: %w: empty wrapped key", op, natter.ErrBadRequest)
	}
	return db.write(ctx, op, func(ctx context.Context, w *writer) error {
		if _, err := archiveUsage(ctx, w, user); err != nil {
			return err
		}
		var hasKeys bool
		if err := w.queryRow(ctx,
			`SELECT EXISTS (SELECT 1 FROM device_keys WHERE user = ? AND device = ?)`,
			string(user), string(device)).Scan(&hasKeys); err != nil {
			return err
		}
		if !hasKeys {
			return fmt.Errorf("%w: %s has no device %s with published keys", natter.ErrNoSuchDevice, user, device)
		}
		return w.exec1(ctx,
			`INSERT INTO archive_keys (user, device, wrapped) VALUES (?, ?, ?)
			 ON CONFLICT (user, device) DO UPDATE SET wrapped = excluded.wrapped`,
			string(user), string(device), wrapped)
	})
}

// ArchiveKeys returns the wrapped archive keys of user's devices; see
// natter.Store.
func (db *DB) ArchiveKeys(ctx context.Context, user natter.UserID) (map[natter.DeviceID][]byte, error) {
	op := "read archive keys of " + string(user)
	if err := db.reading(op); err != nil {
		return nil, err
	}
	tx, err := db.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, wrap(op, err)
	}
	defer tx.Rollback()
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE name = ?)`, string(user)).Scan(&exists); err != nil {
		return nil, wrap(op, err)
	}
	if !exists {
		return nil, fmt.Errorf("sqlite: %s: %w: %s", op, natter.ErrNoSuchUser, user)
	}
	rows, err := tx.QueryContext(ctx, `SELECT device, wrapped FROM archive_keys WHERE user = ?`, string(user))
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	keys := make(map[natter.DeviceID][]byte)
	for rows.Next() {
		var device string
		var wrapped []byte
		if err := rows.Scan(&device, &wrapped); err != nil {
			return nil, wrap(op, err)
		}
		keys[natter.DeviceID(device)] = wrapped
	}
	return keys, wrap(op, rows.Err())
}
