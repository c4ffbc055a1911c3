package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/natterim/natter"
)

// RemoveDevice deletes everything the store holds for user's device, in one
// transaction with user's row locked; see natter.Store. The devices row
// goes first: with unseenSince set, it is deleted only if the device's last
// login is before it, and if it is not, nothing else is deleted either.
func (s *Store) RemoveDevice(ctx context.Context, user natter.UserID, device natter.DeviceID, unseenSince time.Time) (bool, error) {
	var removed bool
	err := s.write(ctx, fmt.Sprintf("remove device %s/%s", user, device), func(ctx context.Context, q querier) error {
		removed = false
		if _, err := lockUsers(ctx, q, user); err != nil {
			return err
		}
		tag, err := q.Exec(ctx,
			`DELETE FROM devices WHERE username = $1 AND device = $2
			 AND ($3::timestamptz IS NULL OR coalesce(last_login, '-infinity') < $3)`,
			string(user), string(device), dbTime(unseenSince))
		if err != nil {
			return fmt.Errorf("delete cursor: %w", err)
		}
		if tag.RowsAffected() == 0 && !unseenSince.IsZero() {
			return nil // gone already, or logged in since
		}
		removed = tag.RowsAffected() > 0
		// prekeys refer to device_keys: they go first.
		for _, sql := range []string{
			`DELETE FROM prekeys WHERE username = $1 AND device = $2`,
			`DELETE FROM device_keys WHERE username = $1 AND device = $2`,
			`DELETE FROM archive_keys WHERE username = $1 AND device = $2`,
			`DELETE FROM sessions WHERE username = $1 AND device = $2`,
		} {
			tag, err := q.Exec(ctx, sql, string(user), string(device))
			if err != nil {
				return fmt.Errorf("remove device: %w", err)
			}
			removed = removed || tag.RowsAffected() > 0
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return removed, nil
}

// IdleDevices lists devices whose last login is before unseenSince; see
// natter.Store. It scans devices (there is no index by login time:
// TouchDevice would update it at every login, and the table holds a few
// rows per user).
func (s *Store) IdleDevices(ctx context.Context, unseenSince time.Time, limit int) ([]natter.IdleDevice, error) {
	var out []natter.IdleDevice
	err := s.read(ctx, "list idle devices", func(ctx context.Context, q querier) error {
		out = nil
		rows, err := q.Query(ctx,
			`SELECT username, device, last_login FROM devices WHERE coalesce(last_login, '-infinity') < $1
			 ORDER BY username, device LIMIT $2`,
			unseenSince, max(limit, 1))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				user, device string
				at           *time.Time
			)
			if err := rows.Scan(&user, &device, &at); err != nil {
				return err
			}
			out = append(out, natter.IdleDevice{User: natter.UserID(user), Device: natter.DeviceID(device), LastLogin: goTime(at)})
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
