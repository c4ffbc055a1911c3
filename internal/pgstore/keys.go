package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/natterim/natter"
)

// The end-to-end key directory. Key material is opaque bytes: the store
// keeps it and hands it out, and never looks inside. Writes lock the user's
// row first (lockUsers), so that one user's key writes run one at a time on
// any node; prekey claims do not (see UserKeys).

// SetIdentity stores user's identity key; see natter.Store.
func (s *Store) SetIdentity(ctx context.Context, user natter.UserID, key []byte, reset bool) (bool, error) {
	op := "set identity of " + string(user)
	if len(key) == 0 {
		return false, fmt.Errorf("pgstore: %s: %w: empty identity key", op, natter.ErrBadRequest)
	}
	var changed bool
	err := s.write(ctx, op, func(ctx context.Context, q querier) error {
		changed = false
		if _, err := lockUsers(ctx, q, user); err != nil {
			return err
		}
		var old []byte
		err := q.QueryRow(ctx, `SELECT key FROM identities WHERE username = $1`, string(user)).Scan(&old)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := q.Exec(ctx, `INSERT INTO identities (username, key) VALUES ($1, $2)`, string(user), key); err != nil {
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
		if _, err := q.Exec(ctx, `UPDATE identities SET key = $1 WHERE username = $2`, key, string(user)); err != nil {
			return err
		}
		// The certificates were signatures by the old identity.
		if _, err := q.Exec(ctx, `UPDATE device_keys SET cert = NULL WHERE username = $1`, string(user)); err != nil {
			return err
		}
		changed = true
		return nil
	})
	return changed, err
}

// PutBundle stores the key bundle of user's device; see natter.Store.
func (s *Store) PutBundle(ctx context.Context, user natter.UserID, device natter.DeviceID, bundle []byte) (bool, error) {
	op := fmt.Sprintf("put bundle of %s/%s", user, device)
	if len(bundle) == 0 {
		return false, fmt.Errorf("pgstore: %s: %w: empty bundle", op, natter.ErrBadRequest)
	}
	var changed bool
	err := s.write(ctx, op, func(ctx context.Context, q querier) error {
		changed = false
		if _, err := lockUsers(ctx, q, user); err != nil {
			return err
		}
		tag, err := q.Exec(ctx,
			`INSERT INTO device_keys (username, device, bundle) VALUES ($1, $2, $3)
			 ON CONFLICT (username, device) DO UPDATE SET bundle = excluded.bundle
			 WHERE device_keys.bundle <> excluded.bundle`,
			string(user), string(device), bundle)
		changed = err == nil && tag.RowsAffected() > 0
		return err
	})
	return changed, err
}

// PutCert sets the certificate of user's device; see natter.Store.
func (s *Store) PutCert(ctx context.Context, user natter.UserID, device natter.DeviceID, cert []byte) (bool, error) {
	op := fmt.Sprintf("put cert of %s/%s", user, device)
	if len(cert) == 0 {
		return false, fmt.Errorf("pgstore: %s: %w: empty certificate", op, natter.ErrBadRequest)
	}
	var changed bool
	err := s.write(ctx, op, func(ctx context.Context, q querier) error {
		changed = false
		if err := lockDevice(ctx, q, user, device); err != nil {
			return err
		}
		tag, err := q.Exec(ctx,
			`UPDATE device_keys SET cert = $1 WHERE username = $2 AND device = $3 AND cert IS DISTINCT FROM $1`,
			cert, string(user), string(device))
		changed = err == nil && tag.RowsAffected() > 0
		return err
	})
	return changed, err
}

// lockDevice locks user's row and checks that device has a bundle, else
// returns an error wrapping natter.ErrNoSuchDevice (natter.ErrNoSuchUser
// if user has not signed up).
func lockDevice(ctx context.Context, q querier, user natter.UserID, device natter.DeviceID) error {
	if _, err := lockUsers(ctx, q, user); err != nil {
		return err
	}
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM device_keys WHERE username = $1 AND device = $2)`,
		string(user), string(device)).Scan(&ok)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s has published no keys for device %s", natter.ErrNoSuchDevice, user, device)
	}
	return nil
}

// AddPrekeys appends one-time prekeys to user's device; see natter.Store.
func (s *Store) AddPrekeys(ctx context.Context, user natter.UserID, device natter.DeviceID, prekeys [][]byte) (int, error) {
	op := fmt.Sprintf("add %d prekeys to %s/%s", len(prekeys), user, device)
	for i, p := range prekeys {
		if len(p) == 0 {
			return 0, fmt.Errorf("pgstore: %s: %w: prekey %d is empty", op, natter.ErrBadRequest, i)
		}
	}
	if len(prekeys) > natter.MaxPrekeys {
		return 0, fmt.Errorf("pgstore: %s: %w: a device holds at most %d prekeys", op, natter.ErrLimit, natter.MaxPrekeys)
	}
	var left int
	err := s.write(ctx, op, func(ctx context.Context, q querier) error {
		left = 0
		if err := lockDevice(ctx, q, user, device); err != nil {
			return err
		}
		var have int
		if err := q.QueryRow(ctx, `SELECT count(*) FROM prekeys WHERE username = $1 AND device = $2`,
			string(user), string(device)).Scan(&have); err != nil {
			return err
		}
		if have+len(prekeys) > natter.MaxPrekeys {
			return fmt.Errorf("%w: the device holds %d prekeys; %d more would pass the cap of %d",
				natter.ErrLimit, have, len(prekeys), natter.MaxPrekeys)
		}
		// WITH ORDINALITY keeps the given order: identity values are
		// taken in the order rows are inserted, which is the order the
		// prekeys are handed out in.
		if _, err := q.Exec(ctx,
			`INSERT INTO prekeys (username, device, prekey)
			 SELECT $1, $2, p FROM unnest($3::bytea[]) WITH ORDINALITY AS t (p, n) ORDER BY n`,
			string(user), string(device), prekeys); err != nil {
			return err
		}
		left = have + len(prekeys)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return left, nil
}

// claimPrekey deletes and returns the oldest prekey of a device that no
// concurrent claim holds: SKIP LOCKED makes concurrent claims, on any
// node, take different prekeys instead of one waiting for the other and
// then finding its prekey gone.
const claimPrekey = `
DELETE FROM prekeys WHERE pk = (
    SELECT pk FROM prekeys WHERE username = $1 AND device = $2
    ORDER BY pk LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING prekey`

// UserKeys returns user's key material, claiming prekeys of the devices in
// claim; see natter.Store. Without a claim it is one read-only transaction
// (so the parts agree with each other); with one it is a write, committed
// before it returns, so that a claimed prekey is gone for good.
func (s *Store) UserKeys(ctx context.Context, user natter.UserID, claim []natter.DeviceID) (natter.KeySet, error) {
	op, txo := "read keys of "+string(user), &readTx
	if len(claim) > 0 {
		op, txo = fmt.Sprintf("claim prekeys of %s %v", user, claim), &writeTx
	}
	var ks natter.KeySet
	err := s.run(ctx, op, txo, func(ctx context.Context, q querier) error {
		var err error
		ks, err = readKeys(ctx, q, user, claim)
		return err
	})
	if err != nil {
		return natter.KeySet{}, err
	}
	return ks, nil
}

// readKeys reads user's key set through q, and claims the oldest prekey of
// each device of claim that has a bundle.
func readKeys(ctx context.Context, q querier, user natter.UserID, claim []natter.DeviceID) (natter.KeySet, error) {
	var ks natter.KeySet
	var exists bool
	err := q.QueryRow(ctx,
		`SELECT true, (SELECT key FROM identities WHERE username = $1) FROM users WHERE name = $1`,
		string(user)).Scan(&exists, &ks.Identity)
	if errors.Is(err, pgx.ErrNoRows) {
		return ks, fmt.Errorf("%w: %s", natter.ErrNoSuchUser, user)
	}
	if err != nil {
		return ks, fmt.Errorf("identity: %w", err)
	}
	rows, err := q.Query(ctx,
		`SELECT device, bundle, cert FROM device_keys WHERE username = $1 ORDER BY device`, string(user))
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
			err := q.QueryRow(ctx, claimPrekey, string(user), string(d.Device)).Scan(&d.Prekey)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return ks, fmt.Errorf("claim a prekey of %s: %w", d.Device, err)
			}
		}
		if err := q.QueryRow(ctx, `SELECT count(*) FROM prekeys WHERE username = $1 AND device = $2`,
			string(user), string(d.Device)).Scan(&d.PrekeysLeft); err != nil {
			return ks, fmt.Errorf("count prekeys of %s: %w", d.Device, err)
		}
	}
	return ks, nil
}
