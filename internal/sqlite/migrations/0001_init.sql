-- 0001: natter's first schema.
--
-- Conventions: times are INTEGER microseconds since the Unix epoch, NULL for
-- the zero time.Time. Sequence numbers are INTEGER (SQLite's int64); the
-- store rejects anything above 2^63-1. Tables are STRICT so a wrong type is an
-- error, not a silent conversion.
--
-- Every table's key serves the queries in the Go code, so there are no other
-- indexes: each lookup below names the key it uses. There is no way to
-- delete a user yet; a migration that adds one must also index the child
-- columns of the foreign keys (sessions.user, contacts.peer, ...).

-- users: one row per account. inbox_seq is the highest sequence number used
-- in the user's inbox (the per-user counter AppendMessage and AppendReceipt
-- increment). Lookups: PasswordHash, UserExists, LastSeen and the counter
-- all go by name (the primary key).
CREATE TABLE users (
    name          TEXT    NOT NULL PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    created       INTEGER,
    last_seen     INTEGER,
    inbox_seq     INTEGER NOT NULL DEFAULT 0 CHECK (inbox_seq >= 0)
) STRICT, WITHOUT ROWID;

-- sessions: resumable logins, looked up by the SHA-256 of the token.
CREATE TABLE sessions (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    user       TEXT    NOT NULL REFERENCES users (name),
    device     TEXT    NOT NULL,
    created    INTEGER,
    expires    INTEGER
) STRICT, WITHOUT ROWID;

-- devices: one delivery cursor per (user, device): the highest inbox
-- sequence number the device has acknowledged.
CREATE TABLE devices (
    user       TEXT    NOT NULL REFERENCES users (name),
    device     TEXT    NOT NULL,
    cursor     INTEGER NOT NULL DEFAULT 0 CHECK (cursor >= 0),
    last_login INTEGER,
    PRIMARY KEY (user, device)
) STRICT, WITHOUT ROWID;

-- contacts: one row per direction, (owner, peer) -> state. ContactNone is
-- the absence of a row. Contacts(owner) reads the primary key in order, which
-- is already ordered by peer.
CREATE TABLE contacts (
    owner TEXT NOT NULL REFERENCES users (name),
    peer  TEXT NOT NULL REFERENCES users (name),
    state TEXT NOT NULL CHECK (state IN ('pending_out', 'pending_in', 'approved', 'blocked')),
    PRIMARY KEY (owner, peer)
) STRICT, WITHOUT ROWID;

-- conversations: one row per unordered pair of users, stored with a < b, so
-- alice->bob and bob->alice share one sequence. last_seq is the highest
-- conversation sequence number assigned.
CREATE TABLE conversations (
    id       INTEGER PRIMARY KEY,
    a        TEXT    NOT NULL REFERENCES users (name),
    b        TEXT    NOT NULL REFERENCES users (name),
    last_seq INTEGER NOT NULL CHECK (last_seq > 0),
    UNIQUE (a, b),
    CHECK (a < b)
) STRICT;

-- messages: every message once. UNIQUE (sender, id) is the idempotency key
-- (and the duplicate lookup); UNIQUE (conv, conv_seq) serves Conversation and
-- guarantees no two messages share a position. to_seq and from_seq are the
-- message's entries in the recipient's and the sender's inbox, kept so that a
-- retried send can be answered with the first copy's sequence numbers.
CREATE TABLE messages (
    pk            INTEGER PRIMARY KEY,
    sender        TEXT    NOT NULL REFERENCES users (name),
    id            TEXT    NOT NULL,
    recipient     TEXT    NOT NULL REFERENCES users (name),
    sender_device TEXT    NOT NULL,
    body          BLOB    NOT NULL,
    conv          INTEGER NOT NULL REFERENCES conversations (id),
    conv_seq      INTEGER NOT NULL CHECK (conv_seq > 0),
    sent_at       INTEGER,
    to_seq        INTEGER NOT NULL,
    from_seq      INTEGER NOT NULL,
    UNIQUE (sender, id),
    UNIQUE (conv, conv_seq)
) STRICT;

-- receipts: every receipt once; sender is Receipt.From (the reader),
-- recipient is Receipt.To (the sender of the messages).
CREATE TABLE receipts (
    pk        INTEGER PRIMARY KEY,
    sender    TEXT    NOT NULL REFERENCES users (name),
    recipient TEXT    NOT NULL REFERENCES users (name),
    upto      INTEGER NOT NULL CHECK (upto >= 0),
    state     TEXT    NOT NULL CHECK (state IN ('delivered', 'read')),
    at        INTEGER
) STRICT;

-- inbox: what each user's devices are to receive, in order. An entry refers
-- to exactly one message or one receipt (which column is set is the entry's
-- kind). Inbox(user, after, limit) is a range scan of the primary key.
CREATE TABLE inbox (
    user    TEXT    NOT NULL REFERENCES users (name),
    seq     INTEGER NOT NULL CHECK (seq > 0),
    message INTEGER REFERENCES messages (pk),
    receipt INTEGER REFERENCES receipts (pk),
    PRIMARY KEY (user, seq),
    CHECK ((message IS NULL) <> (receipt IS NULL))
) STRICT, WITHOUT ROWID;
