package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/natterim/natter"
)

// The end-to-end key directory (migrations/0003_keys.sql). Key material is
// opaque bytes: the store keeps it and hands it out, and never looks inside.

// SetIdentity stores user's identity key; see natter.Store.
func (db *DB) SetIdentity(ctx context.Context, user natter.UserID, key []byte, reset bool) (bool, error) {
	op := "set identity of " + string(user)
	if len(key) == 0 {
		return false, fmt.Errorf("sqlite: %s: %w: empty identity key", op, natter.ErrBadRequest)
	}
	var changed bool
	err := db.write(ctx, op, func(ctx context.Context, w *writer) error {
		changed = false
		if err := mustExist(ctx, w, user); err != nil {
			return err
		}
		var old []byte
		err := w.queryRow(ctx, `SELECT key FROM identities WHERE user = ?`, string(user)).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := w.exec1(ctx, `INSERT INTO identities (user, key) VALUES (?, ?)`, string(user), key); err != nil {
				return err
			}
			changed = true
			return nil
		case err != nil:
			return err
		case bytes.Equal(old, key):
			return nil
		case !reset:
			return natter.ErrKeyConflict
		}
		if err := w.exec1(ctx, `UPDATE identities SET key = ? WHERE user = ?`, key, string(user)); err != nil {
			return err
		}
		// The certificates were signatures by the old identity.
		if err := w.exec1(ctx, `UPDATE device_keys SET cert = NULL WHERE user = ?`, string(user)); err != nil {
			return err
		}
		changed = true
		return nil
	})
	return changed, err
}

// PutBundle stores the key bundle of user's device; see natter.Store.
func (db *DB) PutBundle(ctx context.Context, user natter.UserID, device natter.DeviceID, bundle []byte) (bool, error) {
	op := fmt.Sprintf("put bundle of %s/%s", user, device)
	if len(bundle) == 0 {
		return false, fmt.Errorf("sqlite: %s: %w: empty bundle", op, natter.ErrBadRequest)
	}
	var changed bool
	err := db.write(ctx, op, func(ctx context.Context, w *writer) error {
		changed = false
		if err := mustExist(ctx, w, user); err != nil {
			return err
		}
		var old []byte
		err := w.queryRow(ctx, `SELECT bundle FROM device_keys WHERE user = ? AND device = ?`,
			string(user), string(device)).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			err = w.exec1(ctx, `INSERT INTO device_keys (user, device, bundle) VALUES (?, ?, ?)`,
				string(user), string(device), bundle)
		case err != nil:
			return err
		case bytes.Equal(old, bundle):
			return nil
		default:
			err = w.exec1(ctx, `UPDATE device_keys SET bundle = ? WHERE user = ? AND device = ?`,
				bundle, string(user), string(device))
		}
		changed = err == nil
		return err
	})
	return changed, err
}

// PutCert sets the certificate of user's device; see natter.Store.
func (db *DB) PutCert(ctx context.Context, user natter.UserID, device natter.DeviceID, cert []byte) (bool, error) {
	op := fmt.Sprintf("put cert of %s/%s", user, device)
	if len(cert) == 0 {
		return false, fmt.Errorf("sqlite: %s: %w: empty certificate", op, natter.ErrBadRequest)
	}
	var changed bool
	err := db.write(ctx, op, func(ctx context.Context, w *writer) error {
		changed = false
		var old []byte
		if err := deviceKeysRow(ctx, w, user, device, `cert`, &old); err != nil {
			return err
		}
		if bytes.Equal(old, cert) {
			return nil
		}
		err := w.exec1(ctx, `UPDATE device_keys SET cert = ? WHERE user = ? AND device = ?`,
			cert, string(user), string(device))
		changed = err == nil
		return err
	})
	return changed, err
}

// deviceKeysRow scans column col of the device_keys row of (user, device)
// into dest, or returns an error wrapping natter.ErrNoSuchDevice (or
// natter.ErrNoSuchUser if user has not signed up).
func deviceKeysRow(ctx context.Context, w *writer, user natter.UserID, device natter.DeviceID, col string, dest any) error {
	err := w.queryRow(ctx, `SELECT `+col+` FROM device_keys WHERE user = ? AND device = ?`,
		string(user), string(device)).Scan(dest)
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if err := mustExist(ctx, w, user); err != nil {
		return err
	}
	return fmt.Errorf("%w: %s has published no keys for device %s", natter.ErrNoSuchDevice, user, device)
}

// AddPrekeys appends one-time prekeys to user's device; see natter.Store.
func (db *DB) AddPrekeys(ctx context.Context, user natter.UserID, device natter.DeviceID, prekeys [][]byte) (int, error) {
	op := fmt.Sprintf("add %d prekeys to %s/%s", len(prekeys), user, device)
	for i, p := range prekeys {
		if len(p) == 0 {
			return 0, fmt.Errorf("sqlite: %s: %w: prekey %d is empty", op, natter.ErrBadRequest, i)
		}
	}
	if len(prekeys) > natter.MaxPrekeys {
		return 0, fmt.Errorf("sqlite: %s: %w: a device holds at most %d prekeys", op, natter.ErrLimit, natter.MaxPrekeys)
	}
	var left int
	err := db.write(ctx, op, func(ctx context.Context, w *writer) error {
		left = 0
		var one int
		if err := deviceKeysRow(ctx, w, user, device, `1`, &one); err != nil {
			return err
		}
		var have int
		if err := w.queryRow(ctx, `SELECT count(*) FROM prekeys WHERE user = ? AND device = ?`,
			string(user), string(device)).Scan(&have); err != nil {
			return err
		}
		if have+len(prekeys) > natter.MaxPrekeys {
			return fmt.Errorf("%w: the device holds %d prekeys; %d more would pass the cap of %d",
				natter.ErrLimit, have, len(prekeys), natter.MaxPrekeys)
		}
		// One statement per prekey, in order: each gets a higher pk than
		// every earlier one, which is the order they are handed out in.
		for _, p := range prekeys {
			if err := w.exec1(ctx, `INSERT INTO prekeys (user, device, prekey) VALUES (?, ?, ?)`,
				string(user), string(device), p); err != nil {
				return err
			}
		}
		left = have + len(prekeys)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return left, nil
}

// UserKeys returns user's key material, claiming prekeys of the devices in
// claim; see natter.Store. Without a claim it is a read (one read
// transaction, so the parts agree with each other); with one it is a write,
// committed before it returns, so that a claimed prekey is gone for good.
func (db *DB) UserKeys(ctx context.Context, user natter.UserID, claim []natter.DeviceID) (natter.KeySet, error) {
	op := "read keys of " + string(user)
	if len(claim) == 0 {
		if err := db.reading(op); err != nil {
			return natter.KeySet{}, err
		}
		tx, err := db.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return natter.KeySet{}, wrap(op, err)
		}
		defer tx.Rollback()
		ks, err := readKeys(ctx, tx, user, nil)
		if err != nil {
			return natter.KeySet{}, wrap(op, err)
		}
		return ks, nil
	}
	op = fmt.Sprintf("claim prekeys of %s %v", user, claim)
	var ks natter.KeySet
	err := db.write(ctx, op, func(ctx context.Context, w *writer) error {
		var err error
		ks, err = readKeys(ctx, w.conn, user, claim)
		return err
	})
	if err != nil {
		return natter.KeySet{}, err
	}
	return ks, nil
}

// queryer is what readKeys needs: a read transaction, or the write
// connection inside a write.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readKeys reads user's key set through q, and claims (deletes and returns)
// the oldest prekey of each device of claim that has a bundle. Claiming
// writes, so a non-empty claim needs q to be inside a write.
func readKeys(ctx context.Context, q queryer, user natter.UserID, claim []natter.DeviceID) (natter.KeySet, error) {
	var ks natter.KeySet
	var exists bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE name = ?)`, string(user)).Scan(&exists); err != nil {
		return ks, err
	}
	if !exists {
		return ks, fmt.Errorf("%w: %s", natter.ErrNoSuchUser, user)
	}
	err := q.QueryRowContext(ctx, `SELECT key FROM identities WHERE user = ?`, string(user)).Scan(&ks.Identity)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return ks, fmt.Errorf("identity: %w", err)
	}

	// Every row is read before anything else runs on q.
	rows, err := q.QueryContext(ctx,
		`SELECT device, bundle, cert FROM device_keys WHERE user = ? ORDER BY device`, string(user))
	if err != nil {
		return ks, fmt.Errorf("devices: %w", err)
	}
	for rows.Next() {
		var d natter.DeviceKeySet
		var device string
		if err := rows.Scan(&device, &d.Bundle, &d.Cert); err != nil {
			rows.Close()
			return ks, fmt.Errorf("devices: %w", err)
		}
		d.Device = natter.DeviceID(device)
		ks.Devices = append(ks.Devices, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return ks, fmt.Errorf("devices: %w", err)
	}

	claimed := make(map[natter.DeviceID]bool, len(claim))
	for _, c := range claim {
		claimed[c] = true
	}
	for i := range ks.Devices {
		d := &ks.Devices[i]
		if claimed[d.Device] {
			err := q.QueryRowContext(ctx,
				`DELETE FROM prekeys WHERE pk = (
				     SELECT pk FROM prekeys WHERE user = ? AND device = ? ORDER BY pk LIMIT 1)
				 RETURNING prekey`,
				string(user), string(d.Device)).Scan(&d.Prekey)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return ks, fmt.Errorf("claim a prekey of %s: %w", d.Device, err)
			}
		}
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM prekeys WHERE user = ? AND device = ?`,
			string(user), string(d.Device)).Scan(&d.PrekeysLeft); err != nil {
			return ks, fmt.Errorf("count prekeys of %s: %w", d.Device, err)
		}
	}
	return ks, nil
}
