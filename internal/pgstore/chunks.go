package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/natterim/natter"
)

// File chunk records. The chunks' bytes are not here: they are files under
// each node's data folder (internal/blobs), named by the same hash.

// expireBatch bounds the chunks one ExpireChunks transaction forgets, so
// that a large expiry does not hold many users' rows locked for long.
const expireBatch = 1000

// AddChunk records that user uploaded the chunk hash of size bytes; see
// natter.Store. The quota check and the record are one transaction, with
// user's row locked, so that two concurrent uploads (on any nodes) cannot
// both slip under the quota.
func (s *Store) AddChunk(ctx context.Context, user natter.UserID, hash string, size, quota int64, at time.Time) (bool, error) {
	op := fmt.Sprintf("add chunk %s of %s", hash, user)
	if hash == "" || size < 0 {
		return false, fmt.Errorf("pgstore: %s: %w: empty hash or negative size", op, natter.ErrBadRequest)
	}
	var added bool
	err := s.write(ctx, op, func(ctx context.Context, q querier) error {
		added = false
		if _, err := lockUsers(ctx, q, user); err != nil {
			return err
		}
		var used int64
		if err := q.QueryRow(ctx, `SELECT chunk_bytes FROM users WHERE name = $1`, string(user)).Scan(&used); err != nil {
			return fmt.Errorf("read usage: %w", err)
		}
		// The chunk's row: its stored size wins (a hash names one content).
		var stored int64
		err := q.QueryRow(ctx,
			`INSERT INTO chunks (hash, size, last_used) VALUES ($1, $2, $3)
			 ON CONFLICT (hash) DO UPDATE SET last_used = greatest(chunks.last_used, excluded.last_used)
			 RETURNING size`,
			hash, size, at).Scan(&stored)
		if err != nil {
			return fmt.Errorf("record chunk: %w", err)
		}
		tag, err := q.Exec(ctx,
			`UPDATE chunk_uploads SET at = greatest(at, $1) WHERE username = $2 AND hash = $3`, at, string(user), hash)
		if err != nil {
			return fmt.Errorf("touch upload: %w", err)
		}
		if tag.RowsAffected() > 0 {
			return nil // already uploaded by user: nothing more to count
		}
		if quota >= 0 && used+stored > quota {
			return fmt.Errorf("%w: %s stores %d bytes; %d more would pass the quota of %d",
				natter.ErrQuota, user, used, stored, quota)
		}
		if _, err := q.Exec(ctx,
			`WITH u AS (INSERT INTO chunk_uploads (username, hash, at) VALUES ($1, $2, $3))
			 UPDATE users SET chunk_bytes = chunk_bytes + $4 WHERE name = $1`,
			string(user), hash, at, stored); err != nil {
			return fmt.Errorf("record upload: %w", err)
		}
		added = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return added, nil
}

// ChunkTotal sums the sizes of hashes, which user must all have uploaded.
func (s *Store) ChunkTotal(ctx context.Context, user natter.UserID, hashes []string) (int64, error) {
	var total int64
	err := s.read(ctx, fmt.Sprintf("total of %d chunks of %s", len(hashes), user), func(ctx context.Context, q querier) error {
		total = 0
		if len(hashes) == 0 {
			return nil
		}
		rows, err := q.Query(ctx,
			`SELECT h, c.size FROM unnest($1::text[]) h
			 LEFT JOIN chunk_uploads u ON u.username = $2 AND u.hash = h
			 LEFT JOIN chunks c ON c.hash = u.hash`,
			hashes, string(user))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var hash string
			var size *int64
			if err := rows.Scan(&hash, &size); err != nil {
				return err
			}
			if size == nil {
				return fmt.Errorf("%w: %s did not upload chunk %s (or it expired)", natter.ErrNoSuchChunk, user, hash)
			}
			total += *size
		}
		return rows.Err()
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}

// UserHasChunks returns those of hashes user uploaded or may fetch.
func (s *Store) UserHasChunks(ctx context.Context, user natter.UserID, hashes []string) ([]string, error) {
	seen := make(map[string]bool, len(hashes))
	uniq := make([]string, 0, len(hashes))
	for _, h := range hashes {
		if !seen[h] {
			seen[h] = true
			uniq = append(uniq, h)
		}
	}
	var have []string
	err := s.read(ctx, fmt.Sprintf("look up %d chunks of %s", len(hashes), user), func(ctx context.Context, q querier) error {
		have = nil
		if len(uniq) == 0 {
			return nil
		}
		rows, err := q.Query(ctx,
			`SELECT h FROM unnest($2::text[]) WITH ORDINALITY AS t (h, n)
			 WHERE EXISTS (SELECT 1 FROM chunk_uploads u WHERE u.username = $1 AND u.hash = h)
			    OR EXISTS (SELECT 1 FROM message_chunks mc JOIN messages m ON m.pk = mc.message
			               WHERE mc.hash = h AND (m.sender = $1 OR m.recipient = $1))
			 ORDER BY n`,
			string(user), uniq)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				return err
			}
			have = append(have, h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return have, nil
}

// MayFetchChunk reports whether user uploaded hash or a message to or from
// user carries it.
func (s *Store) MayFetchChunk(ctx context.Context, user natter.UserID, hash string) (bool, error) {
	have, err := s.UserHasChunks(ctx, user, []string{hash})
	return len(have) == 1, err
}

// ExpireChunks forgets the chunks last used before olderThan, in
// transactions of up to expireBatch chunks, and returns their hashes.
func (s *Store) ExpireChunks(ctx context.Context, olderThan time.Time) ([]string, error) {
	op := fmt.Sprintf("expire chunks last used before %s", olderThan.UTC().Format(time.RFC3339))
	var all []string
	for {
		var (
			batch []string
			more  bool
		)
		err := s.write(ctx, op, func(ctx context.Context, q querier) error {
			var err error
			batch, more, err = expireChunks(ctx, q, olderThan)
			return err
		})
		if err != nil {
			return all, err
		}
		all = append(all, batch...)
		if !more {
			return all, nil
		}
	}
}

// expireChunks forgets up to expireBatch chunks last used before cutoff:
// it locks their uploaders' rows (as every write of those users does
// first: an AppendMessage naming one of the chunks either committed
// before, and touched it, or waits and then finds it gone), deletes the
// chunks still expired once locked, their uploads (giving their sizes back
// to the quotas) and their message references.
func expireChunks(ctx context.Context, q querier, cutoff time.Time) (gone []string, more bool, err error) {
	var candidates []string
	rows, err := q.Query(ctx, `SELECT hash FROM chunks WHERE last_used < $1 ORDER BY last_used LIMIT $2`, cutoff, expireBatch)
	if err != nil {
		return nil, false, fmt.Errorf("find expired chunks: %w", err)
	}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return nil, false, err
		}
		candidates = append(candidates, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("find expired chunks: %w", err)
	}
	if len(candidates) == 0 {
		return nil, false, nil
	}
	if _, err := q.Exec(ctx,
		`SELECT 1 FROM users WHERE name IN (SELECT username FROM chunk_uploads WHERE hash = ANY($1))
		 ORDER BY name FOR NO KEY UPDATE`, candidates); err != nil {
		return nil, false, fmt.Errorf("lock uploaders: %w", err)
	}
	rows, err = q.Query(ctx, `
		WITH c AS (
		    SELECT hash, size FROM chunks WHERE hash = ANY($1) AND last_used < $2 FOR UPDATE),
		u AS (
		    DELETE FROM chunk_uploads WHERE hash IN (SELECT hash FROM c) RETURNING username, hash),
		q AS (
		    UPDATE users SET chunk_bytes = chunk_bytes - t.bytes
		    FROM (SELECT u.username, sum(c.size) AS bytes FROM u JOIN c ON c.hash = u.hash GROUP BY u.username) t
		    WHERE users.name = t.username),
		mc AS (
		    DELETE FROM message_chunks WHERE hash IN (SELECT hash FROM c))
		SELECT hash FROM c`, candidates, cutoff)
	if err != nil {
		return nil, false, fmt.Errorf("forget chunks: %w", err)
	}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return nil, false, err
		}
		gone = append(gone, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("forget chunks: %w", err)
	}
	if _, err := q.Exec(ctx, `DELETE FROM chunks WHERE hash = ANY($1)`, gone); err != nil {
		return nil, false, fmt.Errorf("forget chunks: %w", err)
	}
	return gone, len(candidates) == expireBatch, nil
}
