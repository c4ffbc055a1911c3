-- 0003: the end-to-end key directory (Store.SetIdentity, PutBundle, PutCert,
-- AddPrekeys, UserKeys) and password changes (Store.SetPassword).
--
-- The conventions of 0001 hold. Key material is opaque to the server: every
-- key column is a BLOB the store never looks inside.

-- SetPassword ends every session of a user: index sessions by user, so that
-- it does not scan every session of every user.
CREATE INDEX sessions_user ON sessions (user);

-- identities: a user's identity public key, at most one per user. A reset
-- replaces the row (and clears the user's certs in device_keys).
CREATE TABLE identities (
    user TEXT NOT NULL PRIMARY KEY REFERENCES users (name),
    key  BLOB NOT NULL CHECK (length(key) > 0)
) STRICT, WITHOUT ROWID;

-- device_keys: one row per device that published a bundle; cert is the
-- identity's signature over the device, NULL until one is published (and
-- again after an identity reset). UserKeys reads the primary key in order,
-- which is already ordered by device. It is not tied to devices (delivery
-- cursors): the key directory and delivery are separate concerns.
CREATE TABLE device_keys (
    user   TEXT NOT NULL REFERENCES users (name),
    device TEXT NOT NULL,
    bundle BLOB NOT NULL CHECK (length(bundle) > 0),
    cert   BLOB CHECK (cert IS NULL OR length(cert) > 0),
    PRIMARY KEY (user, device)
) STRICT, WITHOUT ROWID;

-- prekeys: one-time prekeys waiting to be claimed, handed out oldest first:
-- pk grows with every insert (SQLite gives a new row max(pk) + 1), so the
-- lowest pk of a device is its oldest prekey. A claim deletes the row in the
-- transaction that returns it, so a prekey is handed out at most once.
-- prekeys_device serves the claim (lowest pk of a device) and the counts.
CREATE TABLE prekeys (
    pk     INTEGER PRIMARY KEY,
    user   TEXT    NOT NULL,
    device TEXT    NOT NULL,
    prekey BLOB    NOT NULL CHECK (length(prekey) > 0),
    FOREIGN KEY (user, device) REFERENCES device_keys (user, device)
) STRICT;

CREATE INDEX prekeys_device ON prekeys (user, device, pk);
