package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natterim/natter"
)

// The archive, each user's optional server-side history. Records and
// wrapped keys are opaque bytes. Writes lock the user's row first.

// ArchiveOn reports whether user's archive is on; see natter.Store.
func (s *Store) ArchiveOn(ctx context.Context, user natter.UserID) (bool, error) {
	var on bool
	err := s.read(ctx, "read archive state of "+string(user), func(ctx context.Context, q querier) error {
		var exists bool
		if err := q.QueryRow(ctx,
			`SELECT EXISTS (SELECT 1 FROM users WHERE name = $1), EXISTS (SELECT 1 FROM archives WHERE username = $1)`,
			string(user)).Scan(&exists, &on); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, user)
		}
		return nil
	})
	return on, err
}

// SetArchive turns user's archive on or off; off deletes its records and
// keys in the same transaction. See natter.Store.
func (s *Store) SetArchive(ctx context.Context, user natter.UserID, on bool) error {
	return s.write(ctx, fmt.Sprintf("set archive of %s on=%v", user, on), func(ctx context.Context, q querier) error {
		if _, err := lockUsers(ctx, q, user); err != nil {
			return err
		}
		if on {
			_, err := q.Exec(ctx, `INSERT INTO archives (username) VALUES ($1) ON CONFLICT (username) DO NOTHING`, string(user))
			return err
		}
		_, err := q.Exec(ctx, `
			WITH r AS (DELETE FROM archive_records WHERE username = $1),
			k AS (DELETE FROM archive_keys WHERE username = $1)
			SELECT 1`, string(user))
		if err != nil {
			return err
		}
		_, err = q.Exec(ctx, `DELETE FROM archives WHERE username = $1`, string(user))
		return err
	})
}

// archiveUsage locks user's row and returns the bytes user's archive holds:
// natter.ErrArchiveOff if it is off, natter.ErrNoSuchUser if user does not
// exist.
func archiveUsage(ctx context.Context, q querier, user natter.UserID) (int64, error) {
	if _, err := lockUsers(ctx, q, user); err != nil {
		return 0, err
	}
	var used int64
	err := q.QueryRow(ctx, `SELECT bytes FROM archives WHERE username = $1`, string(user)).Scan(&used)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%w: %s's archive", natter.ErrArchiveOff, user)
	}
	if err != nil {
		return 0, fmt.Errorf("read archive usage: %w", err)
	}
	return used, nil
}

// PutArchive adds items to user's archive, skipping keys it holds; see
// natter.Store. The quota check and the records are one transaction: a
// batch over the quota is rolled back whole.
func (s *Store) PutArchive(ctx context.Context, user natter.UserID, items []natter.ArchiveItem, at time.Time, quota int64) error {
	op := fmt.Sprintf("put %d archive records of %s", len(items), user)
	keys := make([]string, len(items))
	data := make([][]byte, len(items))
	for i, it := range items {
		if it.Key == "" || len(it.Data) == 0 {
			return fmt.Errorf("pgstore: %s: %w: record %d has an empty key or data", op, natter.ErrBadRequest, i)
		}
		keys[i], data[i] = it.Key, it.Data
	}
	return s.write(ctx, op, func(ctx context.Context, q querier) error {
		used, err := archiveUsage(ctx, q, user)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return nil
		}
		// In the order given; a key repeated within items keeps its first
		// record (ON CONFLICT sees the rows this statement inserted).
		var added int64
		err = q.QueryRow(ctx, `
			WITH ins AS (
			    INSERT INTO archive_records (username, key, at, data)
			    SELECT $1, k, $2, d FROM unnest($3::text[], $4::bytea[]) WITH ORDINALITY AS t (k, d, n)
			    ORDER BY n
			    ON CONFLICT (username, key) DO NOTHING
			    RETURNING length(data) AS n)
			SELECT coalesce(sum(n), 0) FROM ins`,
			string(user), at, keys, data).Scan(&added)
		if err != nil {
			return fmt.Errorf("insert records: %w", err)
		}
		if quota >= 0 && used+added > quota {
			return fmt.Errorf("%w: %s's archive holds %d bytes; %d more would pass the quota of %d",
				natter.ErrQuota, user, used, added, quota)
		}
		if added == 0 {
			return nil
		}
		_, err = q.Exec(ctx, `UPDATE archives SET bytes = bytes + $1 WHERE username = $2`, added, string(user))
		return err
	})
}

// ArchiveRecords returns user's records after the sequence number after;
// see natter.Store.
func (s *Store) ArchiveRecords(ctx context.Context, user natter.UserID, after int64, limit, maxBytes int) ([]natter.ArchiveRecord, bool, error) {
	limit = max(limit, 1)
	var (
		recs []natter.ArchiveRecord
		more bool
	)
	err := s.run(ctx, fmt.Sprintf("read archive records of %s after %d", user, after), &readTx, func(ctx context.Context, q querier) error {
		recs, more = nil, false
		var exists bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)`, string(user)).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, user)
		}
		// One row more than the limit tells whether more follow.
		rows, err := q.Query(ctx,
			`SELECT seq, at, data FROM archive_records WHERE username = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
			string(user), after, limit+1)
		if err != nil {
			return err
		}
		defer rows.Close()
		total := 0
		for rows.Next() {
			var r natter.ArchiveRecord
			if err := rows.Scan(&r.Seq, &r.At, &r.Data); err != nil {
				return err
			}
			if len(recs) == limit || len(recs) > 0 && total+len(r.Data) > maxBytes {
				more = true
				break
			}
			recs = append(recs, r)
			total += len(r.Data)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, false, err
	}
	return recs, more, nil
}

// PutArchiveKey stores the archive key wrapped for user's device, replacing
// the previous one; see natter.Store.
func (s *Store) PutArchiveKey(ctx context.Context, user natter.UserID, device natter.DeviceID, wrapped []byte) error {
	op := fmt.Sprintf("put archive key of %s/%s", user, device)
	if len(wrapped) == 0 {
		return fmt.Errorf("pgstore: %s: %w: empty wrapped key", op, natter.ErrBadRequest)
	}
	return s.write(ctx, op, func(ctx context.Context, q querier) error {
		if _, err := archiveUsage(ctx, q, user); err != nil {
			return err
		}
		tag, err := q.Exec(ctx,
			`INSERT INTO archive_keys (username, device, wrapped)
			 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM device_keys WHERE username = $1 AND device = $2)
			 ON CONFLICT (username, device) DO UPDATE SET wrapped = excluded.wrapped`,
			string(user), string(device), wrapped)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %s has no device %s with published keys", natter.ErrNoSuchDevice, user, device)
		}
		return nil
	})
}

// ArchiveKeys returns the wrapped archive keys of user's devices; see
// natter.Store.
func (s *Store) ArchiveKeys(ctx context.Context, user natter.UserID) (map[natter.DeviceID][]byte, error) {
	var keys map[natter.DeviceID][]byte
	err := s.run(ctx, "read archive keys of "+string(user), &readTx, func(ctx context.Context, q querier) error {
		keys = make(map[natter.DeviceID][]byte)
		var exists bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)`, string(user)).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, user)
		}
		rows, err := q.Query(ctx, `SELECT device, wrapped FROM archive_keys WHERE username = $1`, string(user))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var device string
			var wrapped []byte
			if err := rows.Scan(&device, &wrapped); err != nil {
				return err
			}
			keys[natter.DeviceID(device)] = wrapped
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}
