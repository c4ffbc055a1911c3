package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/natterim/natter"
)

// expireBatch bounds the chunks one ExpireChunks write forgets, so that a
// large expiry does not hold the writer (and every sender behind it) for
// long: ExpireChunks runs as many writes as it needs.
const expireBatch = 1000

// jsonList encodes hashes as a JSON array, which the queries below read
// with json_each: one statement for a list of any length.
func jsonList(hashes []string) string {
	if hashes == nil {
		hashes = []string{}
	}
	b, err := json.Marshal(hashes)
	if err != nil {
		panic(err) // a []string always encodes
	}
	return string(b)
}

// AddChunk records that user uploaded the chunk hash of size bytes; see
// natter.Store. The quota check and the record are one write, so that two
// concurrent uploads cannot both slip under the quota.
func (db *DB) AddChunk(ctx context.Context, user natter.UserID, hash string, size, quota int64, at time.Time) (bool, error) {
	op := fmt.Sprintf("add chunk %s of %s", hash, user)
	if hash == "" || size < 0 {
		return false, fmt.Errorf("sqlite: %s: %w: empty hash or negative size", op, natter.ErrBadRequest)
	}
	t := at.UnixMicro()
	var added bool
	err := db.write(ctx, op, func(ctx context.Context, w *writer) error {
		added = false
		var used int64
		err := w.queryRow(ctx, `SELECT chunk_bytes FROM users WHERE name = ?`, string(user)).Scan(&used)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, user)
		}
		if err != nil {
			return fmt.Errorf("read usage: %w", err)
		}
		// The chunk's row: its stored size wins (a hash names one content).
		var stored int64
		err = w.queryRow(ctx,
			`INSERT INTO chunks (hash, size, last_used) VALUES (?, ?, ?)
			 ON CONFLICT (hash) DO UPDATE SET last_used = max(last_used, excluded.last_used)
			 RETURNING size`,
			hash, size, t).Scan(&stored)
		if err != nil {
			return fmt.Errorf("record chunk: %w", err)
		}
		res, err := w.exec(ctx,
			`UPDATE chunk_uploads SET at = max(at, ?) WHERE user = ? AND hash = ?`, t, string(user), hash)
		if err != nil {
			return fmt.Errorf("touch upload: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err // already uploaded by user: nothing more to count
		}
		if quota >= 0 && used+stored > quota {
			return fmt.Errorf("%w: %s stores %d bytes; %d more would pass the quota of %d",
				natter.ErrQuota, user, used, stored, quota)
		}
		if err := w.exec1(ctx,
			`INSERT INTO chunk_uploads (user, hash, at) VALUES (?, ?, ?)`, string(user), hash, t); err != nil {
			return fmt.Errorf("record upload: %w", err)
		}
		if err := w.exec1(ctx,
			`UPDATE users SET chunk_bytes = chunk_bytes + ? WHERE name = ?`, stored, string(user)); err != nil {
			return fmt.Errorf("count usage: %w", err)
		}
		added = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return added, nil
}

// recordMessageChunks records the chunks of message pk (sent by m.From),
// inside AppendMessage's write: each must be a chunk m.From uploaded
// (natter.ErrNoSuchChunk), and each counts as used at m.SentAt.
func recordMessageChunks(ctx context.Context, w *writer, pk int64, m natter.Message) error {
	if len(m.Chunks) == 0 {
		return nil
	}
	list := jsonList(m.Chunks)
	var missing string
	err := w.queryRow(ctx,
		`SELECT j.value FROM json_each(?) j
		 WHERE NOT EXISTS (SELECT 1 FROM chunk_uploads u WHERE u.user = ? AND u.hash = j.value)
		 LIMIT 1`,
		list, string(m.From)).Scan(&missing)
	if err == nil {
		return fmt.Errorf("%w: %s did not upload chunk %s (or it expired)", natter.ErrNoSuchChunk, m.From, missing)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("check chunks: %w", err)
	}
	if err := w.exec1(ctx,
		`INSERT OR IGNORE INTO message_chunks (hash, message) SELECT value, ? FROM json_each(?)`,
		pk, list); err != nil {
		return fmt.Errorf("record message chunks: %w", err)
	}
	if err := w.exec1(ctx,
		`UPDATE chunks SET last_used = max(last_used, ?) WHERE hash IN (SELECT value FROM json_each(?))`,
		m.SentAt.UnixMicro(), list); err != nil {
		return fmt.Errorf("touch chunks: %w", err)
	}
	return nil
}

// ChunkTotal sums the sizes of hashes, which user must all have uploaded.
func (db *DB) ChunkTotal(ctx context.Context, user natter.UserID, hashes []string) (int64, error) {
	op := fmt.Sprintf("total of %d chunks of %s", len(hashes), user)
	if err := db.reading(op); err != nil {
		return 0, err
	}
	rows, err := db.rdb.QueryContext(ctx,
		`SELECT j.value, c.size FROM json_each(?) j
		 LEFT JOIN chunk_uploads u ON u.user = ? AND u.hash = j.value
		 LEFT JOIN chunks c ON c.hash = u.hash`,
		jsonList(hashes), string(user))
	if err != nil {
		return 0, wrap(op, err)
	}
	defer rows.Close()
	var total int64
	for rows.Next() {
		var hash string
		var size sql.NullInt64
		if err := rows.Scan(&hash, &size); err != nil {
			return 0, wrap(op, err)
		}
		if !size.Valid {
			return 0, fmt.Errorf("sqlite: %s: %w: %s did not upload chunk %s (or it expired)", op, natter.ErrNoSuchChunk, user, hash)
		}
		total += size.Int64
	}
	return total, wrap(op, rows.Err())
}

// UserHasChunks returns those of hashes user uploaded or may fetch.
func (db *DB) UserHasChunks(ctx context.Context, user natter.UserID, hashes []string) ([]string, error) {
	op := fmt.Sprintf("look up %d chunks of %s", len(hashes), user)
	if err := db.reading(op); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(hashes))
	uniq := make([]string, 0, len(hashes))
	for _, h := range hashes {
		if !seen[h] {
			seen[h] = true
			uniq = append(uniq, h)
		}
	}
	if len(uniq) == 0 {
		return nil, nil
	}
	rows, err := db.rdb.QueryContext(ctx,
		`SELECT j.value FROM json_each(?2) j
		 WHERE EXISTS (SELECT 1 FROM chunk_uploads u WHERE u.user = ?1 AND u.hash = j.value)
		    OR EXISTS (SELECT 1 FROM message_chunks mc JOIN messages m ON m.pk = mc.message
		               WHERE mc.hash = j.value AND (m.sender = ?1 OR m.recipient = ?1))
		 ORDER BY j.key`,
		string(user), jsonList(uniq))
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var have []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, wrap(op, err)
		}
		have = append(have, h)
	}
	return have, wrap(op, rows.Err())
}

// MayFetchChunk reports whether user uploaded hash or a message to or from
// user carries it.
func (db *DB) MayFetchChunk(ctx context.Context, user natter.UserID, hash string) (bool, error) {
	have, err := db.UserHasChunks(ctx, user, []string{hash})
	return len(have) == 1, err
}

// ExpireChunks forgets the chunks last used before olderThan, in writes of
// up to expireBatch chunks, and returns their hashes.
func (db *DB) ExpireChunks(ctx context.Context, olderThan time.Time) ([]string, error) {
	op := fmt.Sprintf("expire chunks last used before %s", olderThan.UTC().Format(time.RFC3339))
	cutoff := olderThan.UnixMicro()
	var all []string
	for {
		var batch []string
		err := db.write(ctx, op, func(ctx context.Context, w *writer) error {
			batch = batch[:0]
			rows, err := w.conn.QueryContext(ctx,
				`SELECT hash FROM chunks WHERE last_used < ? ORDER BY last_used LIMIT ?`, cutoff, expireBatch)
			if err != nil {
				return fmt.Errorf("find expired chunks: %w", err)
			}
			for rows.Next() {
				var h string
				if err := rows.Scan(&h); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, h)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return fmt.Errorf("find expired chunks: %w", err)
			}
			for _, h := range batch {
				if err := forgetChunk(ctx, w, h); err != nil {
					return fmt.Errorf("forget chunk %s: %w", h, err)
				}
			}
			return nil
		})
		if err != nil {
			return all, err
		}
		all = append(all, batch...)
		if len(batch) < expireBatch {
			return all, nil
		}
	}
}

// forgetChunk deletes a chunk's row, its uploads (giving their size back to
// the uploaders' quotas) and its message references.
func forgetChunk(ctx context.Context, w *writer, hash string) error {
	if err := w.exec1(ctx,
		`UPDATE users SET chunk_bytes = chunk_bytes - (SELECT size FROM chunks WHERE hash = ?1)
		 WHERE name IN (SELECT user FROM chunk_uploads WHERE hash = ?1)`, hash); err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM chunk_uploads WHERE hash = ?`,
		`DELETE FROM message_chunks WHERE hash = ?`,
		`DELETE FROM chunks WHERE hash = ?`,
	} {
		if err := w.exec1(ctx, q, hash); err != nil {
			return err
		}
	}
	return nil
}
