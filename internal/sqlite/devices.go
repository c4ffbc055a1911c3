package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/natterim/natter"
)

// RemoveDevice deletes everything the store holds for user's device, in one
// transaction; see natter.Store. The devices row goes first: with
// unseenSince set, it is deleted only if the device's last login is before
// it, and if it is not, nothing else is deleted either.
func (db *DB) RemoveDevice(ctx context.Context, user natter.UserID, device natter.DeviceID, unseenSince time.Time) (bool, error) {
	var removed bool
	err := db.write(ctx, fmt.Sprintf("remove device %s/%s", user, device), func(ctx context.Context, w *writer) error {
		removed = false
		if err := mustExist(ctx, w, user); err != nil {
			return err
		}
		before := int64(math.MaxInt64)
		if !unseenSince.IsZero() {
			before = unseenSince.UnixMicro()
		}
		res, err := w.exec(ctx,
			`DELETE FROM devices WHERE user = ? AND device = ? AND coalesce(last_login, 0) < ?`,
			string(user), string(device), before)
		if err != nil {
			return fmt.Errorf("delete cursor: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 && !unseenSince.IsZero() {
			return nil // gone already, or logged in since
		}
		removed = n > 0
		// prekeys refer to device_keys: they go first.
		for _, q := range []string{
			`DELETE FROM prekeys WHERE user = ? AND device = ?`,
			`DELETE FROM device_keys WHERE user = ? AND device = ?`,
			`DELETE FROM archive_keys WHERE user = ? AND device = ?`,
			`DELETE FROM sessions WHERE user = ? AND device = ?`,
		} {
			res, err := w.exec(ctx, q, string(user), string(device))
			if err != nil {
				return fmt.Errorf("remove device: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				removed = true
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return removed, nil
}

// IdleDevices lists devices whose last login is before unseenSince; see
// natter.Store. It reads every row of devices (there is no index by login
// time: TouchDevice would update it at every login, and the table holds a
// few rows per user).
func (db *DB) IdleDevices(ctx context.Context, unseenSince time.Time, limit int) ([]natter.IdleDevice, error) {
	const op = "list idle devices"
	if err := db.reading(op); err != nil {
		return nil, err
	}
	rows, err := db.rdb.QueryContext(ctx,
		`SELECT user, device, last_login FROM devices WHERE coalesce(last_login, 0) < ?
		 ORDER BY user, device LIMIT ?`,
		unseenSince.UnixMicro(), max(limit, 1))
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []natter.IdleDevice
	for rows.Next() {
		var (
			d            natter.IdleDevice
			user, device string
			at           sql.NullInt64
		)
		if err := rows.Scan(&user, &device, &at); err != nil {
			return nil, wrap(op, err)
		}
		d.User, d.Device, d.LastLogin = natter.UserID(user), natter.DeviceID(device), goTime(at)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}
