package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/natterim/natter"
)

// Times are stored as INTEGER microseconds since the Unix epoch (the
// precision of PostgreSQL's timestamptz, and more than the millisecond the
// Store contract promises), NULL for the zero time. They are read back in UTC.

func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func goTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// storedTime is t as it reads back after a round trip through the database.
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// dbSeq converts a sequence number to SQLite's int64, rejecting values SQLite
// cannot hold.
func dbSeq(what string, v uint64) (int64, error) {
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %s %d is out of range", natter.ErrBadRequest, what, v)
	}
	return int64(v), nil
}

// CreateUser adds user, or returns an error wrapping natter.ErrUserExists.
func (db *DB) CreateUser(ctx context.Context, user natter.UserID, passwordHash string, at time.Time) error {
	return db.write(ctx, "create user "+string(user), func(ctx context.Context, w *writer) error {
		res, err := w.exec(ctx,
			`INSERT INTO users (name, password_hash, created) VALUES (?, ?, ?)
			 ON CONFLICT (name) DO NOTHING`,
			string(user), passwordHash, dbTime(at))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return natter.ErrUserExists
		}
		return nil
	})
}

// PasswordHash returns user's password hash, or an error wrapping
// natter.ErrNoSuchUser.
func (db *DB) PasswordHash(ctx context.Context, user natter.UserID) (string, error) {
	op := "password hash of " + string(user)
	if err := db.reading(op); err != nil {
		return "", err
	}
	var hash string
	err := db.rdb.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE name = ?`, string(user)).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("sqlite: %s: %w", op, natter.ErrNoSuchUser)
	}
	return hash, wrap(op, err)
}

// UserExists reports whether user has signed up.
func (db *DB) UserExists(ctx context.Context, user natter.UserID) (bool, error) {
	op := "look up user " + string(user)
	if err := db.reading(op); err != nil {
		return false, err
	}
	var ok bool
	err := db.rdb.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE name = ?)`, string(user)).Scan(&ok)
	return ok, wrap(op, err)
}

// userExists is UserExists inside a write.
func userExists(ctx context.Context, w *writer, user natter.UserID) (bool, error) {
	var ok bool
	err := w.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE name = ?)`, string(user)).Scan(&ok)
	return ok, err
}

// mustExist returns an error wrapping natter.ErrNoSuchUser unless user
// exists. It is checked explicitly rather than left to the foreign keys so
// that the caller gets the sentinel, not a constraint error.
func mustExist(ctx context.Context, w *writer, user natter.UserID) error {
	ok, err := userExists(ctx, w, user)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, user)
	}
	return nil
}

// CreateSession stores s. Its user must exist (natter.ErrNoSuchUser).
func (db *DB) CreateSession(ctx context.Context, s natter.Session) error {
	return db.write(ctx, fmt.Sprintf("create session for %s/%s", s.User, s.Device), func(ctx context.Context, w *writer) error {
		if err := mustExist(ctx, w, s.User); err != nil {
			return err
		}
		return w.exec1(ctx,
			`INSERT INTO sessions (token_hash, user, device, created, expires) VALUES (?, ?, ?, ?, ?)`,
			nonNil(s.TokenHash), string(s.User), string(s.Device), dbTime(s.Created), dbTime(s.Expires))
	})
}

// Session looks a session up by its token hash, or returns an error wrapping
// natter.ErrNoSession.
func (db *DB) Session(ctx context.Context, tokenHash []byte) (natter.Session, error) {
	const op = "look up session"
	if err := db.reading(op); err != nil {
		return natter.Session{}, err
	}
	var (
		s                natter.Session
		user, device     string
		created, expires sql.NullInt64
	)
	err := db.rdb.QueryRowContext(ctx,
		`SELECT token_hash, user, device, created, expires FROM sessions WHERE token_hash = ?`,
		nonNil(tokenHash)).Scan(&s.TokenHash, &user, &device, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return natter.Session{}, fmt.Errorf("sqlite: %s: %w", op, natter.ErrNoSession)
	}
	if err != nil {
		return natter.Session{}, wrap(op, err)
	}
	s.User, s.Device = natter.UserID(user), natter.DeviceID(device)
	s.Created, s.Expires = goTime(created), goTime(expires)
	return s, nil
}

// DeleteSession forgets the session with tokenHash, if there is one.
func (db *DB) DeleteSession(ctx context.Context, tokenHash []byte) error {
	return db.write(ctx, "delete session", func(ctx context.Context, w *writer) error {
		return w.exec1(ctx, `DELETE FROM sessions WHERE token_hash = ?`, nonNil(tokenHash))
	})
}

// SetPassword replaces user's password hash and replaces every session of
// user with keep (none if keep.TokenHash is empty), in one transaction; see
// natter.Store.
func (db *DB) SetPassword(ctx context.Context, user natter.UserID, passwordHash string, keep natter.Session) error {
	op := "set password of " + string(user)
	if len(keep.TokenHash) > 0 && keep.User != user {
		return fmt.Errorf("sqlite: %s: %w: the session to keep is %s's", op, natter.ErrBadRequest, keep.User)
	}
	return db.write(ctx, op, func(ctx context.Context, w *writer) error {
		if err := updateUser(ctx, w, user, `UPDATE users SET password_hash = ? WHERE name = ?`, passwordHash); err != nil {
			return err
		}
		if err := w.exec1(ctx, `DELETE FROM sessions WHERE user = ?`, string(user)); err != nil {
			return err
		}
		if len(keep.TokenHash) == 0 {
			return nil
		}
		return w.exec1(ctx,
			`INSERT INTO sessions (token_hash, user, device, created, expires) VALUES (?, ?, ?, ?, ?)`,
			keep.TokenHash, string(user), string(keep.Device), dbTime(keep.Created), dbTime(keep.Expires))
	})
}

// TouchDevice records a login of user's device, creating the device at
// cursor 0 if new (unless user has maxDevices devices already, maxDevices >
// 0: natter.ErrTooManyDevices), and returns its cursor. user must exist
// (natter.ErrNoSuchUser).
func (db *DB) TouchDevice(ctx context.Context, user natter.UserID, device natter.DeviceID, at time.Time, maxDevices int) (uint64, error) {
	var cursor int64
	err := db.write(ctx, fmt.Sprintf("touch device %s/%s", user, device), func(ctx context.Context, w *writer) error {
		if err := mustExist(ctx, w, user); err != nil {
			return err
		}
		if maxDevices > 0 {
			var known bool
			var n int
			err := w.queryRow(ctx,
				`SELECT EXISTS (SELECT 1 FROM devices WHERE user = ?1 AND device = ?2),
				        (SELECT count(*) FROM devices WHERE user = ?1)`,
				string(user), string(device)).Scan(&known, &n)
			if err != nil {
				return err
			}
			if !known && n >= maxDevices {
				return fmt.Errorf("%w: %s has %d devices, the most this server allows", natter.ErrTooManyDevices, user, n)
			}
		}
		return w.queryRow(ctx,
			`INSERT INTO devices (user, device, cursor, last_login) VALUES (?, ?, 0, ?)
			 ON CONFLICT (user, device) DO UPDATE SET last_login = excluded.last_login
			 RETURNING cursor`,
			string(user), string(device), dbTime(at)).Scan(&cursor)
	})
	if err != nil {
		return 0, err
	}
	return uint64(cursor), nil
}

// AckInbox moves the cursor of user's device forward to upto; it never moves
// it back. The device must have been touched (TouchDevice) first: acking for
// an unknown device (never touched, or removed) is an error wrapping
// natter.ErrNoSuchDevice.
func (db *DB) AckInbox(ctx context.Context, user natter.UserID, device natter.DeviceID, upto uint64) error {
	op := fmt.Sprintf("ack inbox of %s/%s up to %d", user, device, upto)
	n, err := dbSeq("ack", upto)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return db.write(ctx, op, func(ctx context.Context, w *writer) error {
		res, err := w.exec(ctx,
			`UPDATE devices SET cursor = max(cursor, ?) WHERE user = ? AND device = ?`,
			n, string(user), string(device))
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil {
			return err
		} else if k == 0 {
			return fmt.Errorf("%w: %s/%s has not logged in, or was removed", natter.ErrNoSuchDevice, user, device)
		}
		return nil
	})
}

// SetLastSeen records when user was last online. user must exist
// (natter.ErrNoSuchUser).
func (db *DB) SetLastSeen(ctx context.Context, user natter.UserID, at time.Time) error {
	return db.write(ctx, "set last seen of "+string(user), func(ctx context.Context, w *writer) error {
		return updateUser(ctx, w, user, `UPDATE users SET last_seen = ? WHERE name = ?`, dbTime(at))
	})
}

// SetStatusText records the status text user last set. user must exist
// (natter.ErrNoSuchUser); text is at most natter.MaxStatusText bytes
// (natter.ErrBadRequest).
func (db *DB) SetStatusText(ctx context.Context, user natter.UserID, text string) error {
	if len(text) > natter.MaxStatusText {
		return fmt.Errorf("sqlite: set status text of %s: %w: over %d bytes", user, natter.ErrBadRequest, natter.MaxStatusText)
	}
	return db.write(ctx, "set status text of "+string(user), func(ctx context.Context, w *writer) error {
		return updateUser(ctx, w, user, `UPDATE users SET status_text = ? WHERE name = ?`, text)
	})
}

// LastSeen returns the last-seen times and status texts of those of users
// that have either.
func (db *DB) LastSeen(ctx context.Context, users []natter.UserID) (map[natter.UserID]natter.Seen, error) {
	const op = "read last seen"
	if err := db.reading(op); err != nil {
		return nil, err
	}
	seen := make(map[natter.UserID]natter.Seen)
	if len(users) == 0 {
		return seen, nil
	}
	// One statement for any number of users: the names go in as one JSON
	// array, which SQLite's json_each unpacks.
	names, err := json.Marshal(users)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	rows, err := db.rdb.QueryContext(ctx,
		`SELECT name, last_seen, status_text FROM users
		 WHERE name IN (SELECT value FROM json_each(?)) AND (last_seen IS NOT NULL OR status_text != '')`,
		string(names))
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name string
			at   sql.NullInt64
			text string
		)
		if err := rows.Scan(&name, &at, &text); err != nil {
			return nil, wrap(op, err)
		}
		seen[natter.UserID(name)] = natter.Seen{At: goTime(at), Text: text}
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return seen, nil
}

// nonNil returns b, or an empty slice for nil: the driver binds a nil slice
// as NULL, which the NOT NULL blob columns refuse.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// updateUser runs query, an UPDATE of one user's row whose last argument is
// the user's name, and says natter.ErrNoSuchUser if there is no such row.
func updateUser(ctx context.Context, w *writer, user natter.UserID, query string, args ...any) error {
	res, err := w.exec(ctx, query, append(args, string(user))...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, user)
	}
	return nil
}
