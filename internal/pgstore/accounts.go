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

// Times are timestamptz (microseconds), NULL for the zero time.Time.

// dbTime is t as a parameter: nil (NULL) for the zero time.
func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// goTime is a scanned nullable time: the zero time for NULL.
func goTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// storedTime is t as it reads back after a round trip through the database.
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// dbSeq converts a sequence number to bigint, rejecting values bigint
// cannot hold.
func dbSeq(what string, v uint64) (int64, error) {
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %s %d is out of range", natter.ErrBadRequest, what, v)
	}
	return int64(v), nil
}

// nonNil returns b, or an empty slice for nil: pgx sends a nil slice as
// NULL, which the NOT NULL bytea columns refuse.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// execOne runs an UPDATE (or INSERT ... SELECT) whose last argument is a
// user's name, and says natter.ErrNoSuchUser if it changed no row.
func execOne(ctx context.Context, q querier, user natter.UserID, sql string, args ...any) error {
	tag, err := q.Exec(ctx, sql, append(args, string(user))...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, user)
	}
	return nil
}

// CreateUser adds user, or returns an error wrapping natter.ErrUserExists.
func (s *Store) CreateUser(ctx context.Context, user natter.UserID, passwordHash string, at time.Time) error {
	return s.write(ctx, "create user "+string(user), func(ctx context.Context, q querier) error {
		tag, err := q.Exec(ctx,
			`INSERT INTO users (name, password_hash, created) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
			string(user), passwordHash, dbTime(at))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return natter.ErrUserExists
		}
		return nil
	})
}

// PasswordHash returns user's password hash, or an error wrapping
// natter.ErrNoSuchUser.
func (s *Store) PasswordHash(ctx context.Context, user natter.UserID) (string, error) {
	var hash string
	err := s.read(ctx, "password hash of "+string(user), func(ctx context.Context, q querier) error {
		err := q.QueryRow(ctx, `SELECT password_hash FROM users WHERE name = $1`, string(user)).Scan(&hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return natter.ErrNoSuchUser
		}
		return err
	})
	return hash, err
}

// UserExists reports whether user has signed up.
func (s *Store) UserExists(ctx context.Context, user natter.UserID) (bool, error) {
	var ok bool
	err := s.read(ctx, "look up user "+string(user), func(ctx context.Context, q querier) error {
		return q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)`, string(user)).Scan(&ok)
	})
	return ok, err
}

// CreateSession stores sess. Its user must exist (natter.ErrNoSuchUser).
func (s *Store) CreateSession(ctx context.Context, sess natter.Session) error {
	return s.write(ctx, fmt.Sprintf("create session for %s/%s", sess.User, sess.Device), func(ctx context.Context, q querier) error {
		return insertSession(ctx, q, sess)
	})
}

// insertSession inserts sess if its user exists, else says
// natter.ErrNoSuchUser.
func insertSession(ctx context.Context, q querier, sess natter.Session) error {
	return execOne(ctx, q, sess.User,
		`INSERT INTO sessions (token_hash, username, device, created, expires)
		 SELECT $1, name, $2, $3, $4 FROM users WHERE name = $5`,
		nonNil(sess.TokenHash), string(sess.Device), dbTime(sess.Created), dbTime(sess.Expires))
}

// Session looks a session up by its token hash, or returns an error wrapping
// natter.ErrNoSession.
func (s *Store) Session(ctx context.Context, tokenHash []byte) (natter.Session, error) {
	var sess natter.Session
	err := s.read(ctx, "look up session", func(ctx context.Context, q querier) error {
		var (
			user, device     string
			created, expires *time.Time
		)
		sess = natter.Session{}
		err := q.QueryRow(ctx,
			`SELECT token_hash, username, device, created, expires FROM sessions WHERE token_hash = $1`,
			nonNil(tokenHash)).Scan(&sess.TokenHash, &user, &device, &created, &expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return natter.ErrNoSession
		}
		if err != nil {
			return err
		}
		sess.User, sess.Device = natter.UserID(user), natter.DeviceID(device)
		sess.Created, sess.Expires = goTime(created), goTime(expires)
		return nil
	})
	if err != nil {
		return natter.Session{}, err
	}
	return sess, nil
}

// DeleteSession forgets the session with tokenHash, if there is one.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	return s.write(ctx, "delete session", func(ctx context.Context, q querier) error {
		_, err := q.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, nonNil(tokenHash))
		return err
	})
}

// SetPassword replaces user's password hash and every session of user with
// keep (none if keep.TokenHash is empty), in one transaction; see
// natter.Store.
func (s *Store) SetPassword(ctx context.Context, user natter.UserID, passwordHash string, keep natter.Session) error {
	op := "set password of " + string(user)
	if len(keep.TokenHash) > 0 && keep.User != user {
		return fmt.Errorf("pgstore: %s: %w: the session to keep is %s's", op, natter.ErrBadRequest, keep.User)
	}
	return s.write(ctx, op, func(ctx context.Context, q querier) error {
		if err := execOne(ctx, q, user, `UPDATE users SET password_hash = $1 WHERE name = $2`, passwordHash); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `DELETE FROM sessions WHERE username = $1`, string(user)); err != nil {
			return err
		}
		if len(keep.TokenHash) == 0 {
			return nil
		}
		return insertSession(ctx, q, keep)
	})
}

// TouchDevice records a login of user's device, creating the device at
// cursor 0 if new (unless user has maxDevices devices already, maxDevices >
// 0: natter.ErrTooManyDevices), and returns its cursor. user must exist
// (natter.ErrNoSuchUser). With a cap, user's row is locked first, so that
// two nodes logging in two new devices at once cannot both pass it.
func (s *Store) TouchDevice(ctx context.Context, user natter.UserID, device natter.DeviceID, at time.Time, maxDevices int) (uint64, error) {
	var cursor int64
	err := s.write(ctx, fmt.Sprintf("touch device %s/%s", user, device), func(ctx context.Context, q querier) error {
		if maxDevices > 0 {
			if _, err := lockUsers(ctx, q, user); err != nil {
				return err
			}
			var known bool
			var n int
			err := q.QueryRow(ctx,
				`SELECT EXISTS (SELECT 1 FROM devices WHERE username = $1 AND device = $2),
				        (SELECT count(*) FROM devices WHERE username = $1)`,
				string(user), string(device)).Scan(&known, &n)
			if err != nil {
				return err
			}
			if !known && n >= maxDevices {
				return fmt.Errorf("%w: %s has %d devices, the most this server allows", natter.ErrTooManyDevices, user, n)
			}
		}
		err := q.QueryRow(ctx,
			`INSERT INTO devices (username, device, cursor, last_login)
			 SELECT name, $2, 0, $3 FROM users WHERE name = $1
			 ON CONFLICT (username, device) DO UPDATE SET last_login = excluded.last_login
			 RETURNING cursor`,
			string(user), string(device), dbTime(at)).Scan(&cursor)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, user)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return uint64(cursor), nil
}

// AckInbox moves the cursor of user's device forward to upto; it never moves
// it back. Acking for a device that has no cursor (never touched, or
// removed) is an error wrapping natter.ErrNoSuchDevice.
func (s *Store) AckInbox(ctx context.Context, user natter.UserID, device natter.DeviceID, upto uint64) error {
	op := fmt.Sprintf("ack inbox of %s/%s up to %d", user, device, upto)
	n, err := dbSeq("ack", upto)
	if err != nil {
		return fmt.Errorf("pgstore: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, q querier) error {
		tag, err := q.Exec(ctx,
			`UPDATE devices SET cursor = greatest(cursor, $1) WHERE username = $2 AND device = $3`,
			n, string(user), string(device))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %s/%s has not logged in, or was removed", natter.ErrNoSuchDevice, user, device)
		}
		return nil
	})
}

// SetLastSeen records when user was last online. user must exist
// (natter.ErrNoSuchUser).
func (s *Store) SetLastSeen(ctx context.Context, user natter.UserID, at time.Time) error {
	return s.write(ctx, "set last seen of "+string(user), func(ctx context.Context, q querier) error {
		return execOne(ctx, q, user, `UPDATE users SET last_seen = $1 WHERE name = $2`, dbTime(at))
	})
}

// SetStatusText records the status text user last set. user must exist
// (natter.ErrNoSuchUser); text is at most natter.MaxStatusText bytes
// (natter.ErrBadRequest).
func (s *Store) SetStatusText(ctx context.Context, user natter.UserID, text string) error {
	if len(text) > natter.MaxStatusText {
		return fmt.Errorf("pgstore: set status text of %s: %w: over %d bytes", user, natter.ErrBadRequest, natter.MaxStatusText)
	}
	return s.write(ctx, "set status text of "+string(user), func(ctx context.Context, q querier) error {
		return execOne(ctx, q, user, `UPDATE users SET status_text = $1 WHERE name = $2`, text)
	})
}

// LastSeen returns the last-seen times and status texts of those of users
// that have either.
func (s *Store) LastSeen(ctx context.Context, users []natter.UserID) (map[natter.UserID]natter.Seen, error) {
	var seen map[natter.UserID]natter.Seen
	err := s.read(ctx, "read last seen", func(ctx context.Context, q querier) error {
		seen = make(map[natter.UserID]natter.Seen)
		if len(users) == 0 {
			return nil
		}
		rows, err := q.Query(ctx,
			`SELECT name, last_seen, status_text FROM users
			 WHERE name = ANY($1) AND (last_seen IS NOT NULL OR status_text <> '')`,
			userNames(users))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				name, text string
				at         *time.Time
			)
			if err := rows.Scan(&name, &at, &text); err != nil {
				return err
			}
			seen[natter.UserID(name)] = natter.Seen{At: goTime(at), Text: text}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return seen, nil
}
