-- 0001: natter's schema on PostgreSQL, as internal/sqlite's migrations
-- 0001-0007 left it, in one step (this store starts from there).
--
-- Conventions: times are timestamptz (microseconds), NULL for the zero
-- time.Time. User names are text COLLATE "C": compared and ordered byte by
-- byte, as Go and SQLite compare them (conversations' a < b is checked
-- against Go's order, lists are in Go's order), whatever the database's
-- default collation. Sequence numbers are bigint; the store rejects anything above
-- 2^63-1. "user" is a reserved word, so a user's name is in a column called
-- username (or owner, sender, recipient where the role matters).
--
-- Concurrency: several natterd nodes share these tables. Every write that
-- changes a user's data first locks the user's row (SELECT ... FOR NO KEY
-- UPDATE, several users in name order, so two writes never wait on each
-- other in a circle); that serialises the counters (inbox_seq, the
-- conversation's last_seq) and the quotas (chunk_bytes, archives.bytes) per
-- user, across nodes. See locks.go.

-- users: one row per account. inbox_seq is the highest sequence number used
-- in the user's inbox, shared by messages, receipts and copies.
-- chunk_bytes is the user's file quota usage (see chunk_uploads).
CREATE TABLE users (
    name          text COLLATE "C" NOT NULL PRIMARY KEY,
    password_hash text        NOT NULL,
    created       timestamptz,
    last_seen     timestamptz,
    status_text   text        NOT NULL DEFAULT '',
    inbox_seq     bigint      NOT NULL DEFAULT 0 CHECK (inbox_seq >= 0),
    chunk_bytes   bigint      NOT NULL DEFAULT 0 CHECK (chunk_bytes >= 0)
);

-- sessions: resumable logins, looked up by the SHA-256 of the token;
-- sessions_user serves SetPassword, which ends every session of a user.
CREATE TABLE sessions (
    token_hash bytea       NOT NULL PRIMARY KEY,
    username   text COLLATE "C" NOT NULL REFERENCES users (name),
    device     text        NOT NULL,
    created    timestamptz,
    expires    timestamptz
);
CREATE INDEX sessions_user ON sessions (username);

-- devices: one delivery cursor per (user, device): the highest inbox
-- sequence number the device has acknowledged.
CREATE TABLE devices (
    username   text COLLATE "C" NOT NULL REFERENCES users (name),
    device     text        NOT NULL,
    cursor     bigint      NOT NULL DEFAULT 0 CHECK (cursor >= 0),
    last_login timestamptz,
    PRIMARY KEY (username, device)
);

-- contacts: one row per direction, (owner, peer) -> state. ContactNone is
-- the absence of a row.
CREATE TABLE contacts (
    owner text COLLATE "C" NOT NULL REFERENCES users (name),
    peer  text COLLATE "C" NOT NULL REFERENCES users (name),
    state text NOT NULL CHECK (state IN ('pending_out', 'pending_in', 'approved', 'blocked')),
    PRIMARY KEY (owner, peer)
);

-- conversations: one row per unordered pair of users, a < b. last_seq is
-- the highest conversation sequence number assigned.
CREATE TABLE conversations (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    a        text COLLATE "C" NOT NULL REFERENCES users (name),
    b        text COLLATE "C" NOT NULL REFERENCES users (name),
    last_seq bigint NOT NULL CHECK (last_seq > 0),
    UNIQUE (a, b),
    CHECK (a < b)
);

-- messages: every message once. UNIQUE (sender, id) is the idempotency key;
-- UNIQUE (conv, conv_seq) serves Conversation and guarantees no two
-- messages share a position. to_seq and from_seq answer a retried send.
CREATE TABLE messages (
    pk            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender        text COLLATE "C" NOT NULL REFERENCES users (name),
    id            text        NOT NULL,
    recipient     text COLLATE "C" NOT NULL REFERENCES users (name),
    sender_device text        NOT NULL,
    body          bytea       NOT NULL,
    conv          bigint      NOT NULL REFERENCES conversations (id),
    conv_seq      bigint      NOT NULL CHECK (conv_seq > 0),
    sent_at       timestamptz,
    to_seq        bigint      NOT NULL,
    from_seq      bigint      NOT NULL,
    UNIQUE (sender, id),
    UNIQUE (conv, conv_seq)
);

-- receipts: every receipt once; sender is Receipt.From (the reader),
-- recipient Receipt.To. id is the message the receipt names, NULL for none.
CREATE TABLE receipts (
    pk        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender    text COLLATE "C" NOT NULL REFERENCES users (name),
    recipient text COLLATE "C" NOT NULL REFERENCES users (name),
    upto      bigint      NOT NULL CHECK (upto >= 0),
    id        text,
    state     text        NOT NULL CHECK (state IN ('delivered', 'read')),
    at        timestamptz
);

-- copies: messages that went peer to peer, stored for one user (owner)
-- only; UNIQUE (owner, sender, id) is the idempotency key.
CREATE TABLE copies (
    pk            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner         text COLLATE "C" NOT NULL REFERENCES users (name),
    sender        text COLLATE "C" NOT NULL REFERENCES users (name),
    id            text        NOT NULL,
    recipient     text COLLATE "C" NOT NULL REFERENCES users (name),
    sender_device text        NOT NULL,
    body          bytea       NOT NULL,
    sent_at       timestamptz,
    seq           bigint      NOT NULL CHECK (seq > 0),
    UNIQUE (owner, sender, id),
    CHECK (owner = sender OR owner = recipient),
    CHECK (sender <> recipient)
);

-- inbox: what each user's devices are to receive, in order; each entry is
-- exactly one message, receipt or copy. Inbox(user, after, limit) is a range
-- scan of the primary key.
CREATE TABLE inbox (
    username text COLLATE "C" NOT NULL REFERENCES users (name),
    seq      bigint NOT NULL CHECK (seq > 0),
    message  bigint REFERENCES messages (pk),
    receipt  bigint REFERENCES receipts (pk),
    copy     bigint REFERENCES copies (pk),
    PRIMARY KEY (username, seq),
    CHECK (num_nonnulls(message, receipt, copy) = 1)
);

-- The key directory. Key material is opaque bytes.
CREATE TABLE identities (
    username text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES users (name),
    key      bytea NOT NULL CHECK (length(key) > 0)
);

CREATE TABLE device_keys (
    username text COLLATE "C" NOT NULL REFERENCES users (name),
    device   text  NOT NULL,
    bundle   bytea NOT NULL CHECK (length(bundle) > 0),
    cert     bytea CHECK (cert IS NULL OR length(cert) > 0),
    PRIMARY KEY (username, device)
);

-- prekeys: handed out oldest first (lowest pk). A claim deletes the row it
-- returns (DELETE ... RETURNING of a row picked FOR UPDATE SKIP LOCKED), so
-- a prekey is handed out once, whichever node claims it.
CREATE TABLE prekeys (
    pk       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text COLLATE "C" NOT NULL,
    device   text   NOT NULL,
    prekey   bytea  NOT NULL CHECK (length(prekey) > 0),
    FOREIGN KEY (username, device) REFERENCES device_keys (username, device)
);
CREATE INDEX prekeys_device ON prekeys (username, device, pk);

-- File chunks: the records only; the bytes are files under each node's data
-- folder (internal/blobs). last_used is the newest upload or message
-- reference; ExpireChunks scans chunks_last_used.
CREATE TABLE chunks (
    hash      text        NOT NULL PRIMARY KEY,
    size      bigint      NOT NULL CHECK (size >= 0),
    last_used timestamptz NOT NULL
);
CREATE INDEX chunks_last_used ON chunks (last_used);

CREATE TABLE chunk_uploads (
    username text COLLATE "C" NOT NULL REFERENCES users (name),
    hash     text        NOT NULL REFERENCES chunks (hash),
    at       timestamptz NOT NULL,
    PRIMARY KEY (username, hash)
);
CREATE INDEX chunk_uploads_hash ON chunk_uploads (hash);

CREATE TABLE message_chunks (
    hash    text   NOT NULL REFERENCES chunks (hash),
    message bigint NOT NULL REFERENCES messages (pk),
    PRIMARY KEY (hash, message)
);

-- The archive. archives has a row per user whose archive is on; bytes is
-- what the quota counts. archive_records.seq is an identity: never reused,
-- even after an archive is turned off and on.
CREATE TABLE archives (
    username text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES users (name),
    bytes    bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0)
);

CREATE TABLE archive_records (
    seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text COLLATE "C" NOT NULL REFERENCES archives (username),
    key      text        NOT NULL CHECK (length(key) > 0),
    at       timestamptz NOT NULL,
    data     bytea       NOT NULL CHECK (length(data) > 0),
    UNIQUE (username, key)
);
CREATE INDEX archive_records_user ON archive_records (username, seq);

CREATE TABLE archive_keys (
    username text COLLATE "C" NOT NULL REFERENCES archives (username),
    device   text  NOT NULL,
    wrapped  bytea NOT NULL CHECK (length(wrapped) > 0),
    PRIMARY KEY (username, device)
);
