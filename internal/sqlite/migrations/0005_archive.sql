-- 0005: the archive, each user's optional server-side history
-- (Store.ArchiveOn, SetArchive, PutArchive, ArchiveRecords, PutArchiveKey,
-- ArchiveKeys).
--
-- The conventions of 0001 hold. Records and wrapped keys are opaque to the
-- server: the data columns are BLOBs the store never looks inside, and a
-- record's key is the client's name for it, only compared.

-- archives: one row per user whose archive is on; no row means off (the
-- default). bytes is the sum of length(data) of the user's archive_records,
-- what the quota counts, kept up to date by PutArchive. Turning an archive
-- off deletes the user's records and keys, then this row; the foreign keys
-- below make a record or key without it impossible.
CREATE TABLE archives (
    user  TEXT    NOT NULL PRIMARY KEY REFERENCES users (name),
    bytes INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0)
) STRICT, WITHOUT ROWID;

-- archive_records: the records. seq is the sequence number clients page by
-- (ArchiveRecords' after): AUTOINCREMENT, so that a number is never given
-- twice, even after the newest records were deleted by turning an archive
-- off (plain INTEGER PRIMARY KEY would reuse max(seq) + 1, and a device's
-- cursor from before could hide new records). UNIQUE (user, key) is the
-- idempotency key and serves PutArchive's duplicate check;
-- archive_records_user serves ArchiveRecords (a user's records in seq
-- order) and the delete by user.
CREATE TABLE archive_records (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT    NOT NULL REFERENCES archives (user),
    key  TEXT    NOT NULL CHECK (length(key) > 0),
    at   INTEGER NOT NULL,
    data BLOB    NOT NULL CHECK (length(data) > 0),
    UNIQUE (user, key)
) STRICT;

CREATE INDEX archive_records_user ON archive_records (user, seq);

-- archive_keys: the archive key wrapped for one device of the user. Not
-- tied to device_keys by a foreign key (PutArchiveKey checks that the
-- device has a bundle when the key is put), like device_keys is not tied to
-- devices.
CREATE TABLE archive_keys (
    user    TEXT NOT NULL REFERENCES archives (user),
    device  TEXT NOT NULL,
    wrapped BLOB NOT NULL CHECK (length(wrapped) > 0),
    PRIMARY KEY (user, device)
) STRICT, WITHOUT ROWID;
