-- 0004: file chunks (Store.AddChunk, ChunkTotal, UserHasChunks,
-- MayFetchChunk, ExpireChunks, and AppendMessage with Message.Chunks).
--
-- The conventions of 0001 hold. The chunks' bytes are not here: they are
-- files under the data folder (internal/blobs), named by the same hash. These
-- tables say who uploaded which chunk, which messages carry it, and when it
-- was last used, which decides when it is forgotten.

-- chunks: one row per distinct chunk, however many users uploaded it or
-- messages carry it (deduplication). hash is the lowercase hex SHA-256 of the
-- (sealed) chunk; size its length in bytes. last_used is the newest upload or
-- message reference: ExpireChunks forgets chunks whose last_used is older
-- than the retention, by a range scan of chunks_last_used.
CREATE TABLE chunks (
    hash      TEXT    NOT NULL PRIMARY KEY,
    size      INTEGER NOT NULL CHECK (size >= 0),
    last_used INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX chunks_last_used ON chunks (last_used);

-- chunk_uploads: one row per (user, chunk) the user uploaded. It is what a
-- user's quota counts (users.chunk_bytes is the sum of the sizes of the
-- user's rows, kept up to date by AddChunk and ExpireChunks) and what lets a
-- user name a chunk in a message. MayFetchChunk and AddChunk look rows up by
-- the primary key; ExpireChunks deletes a chunk's rows by chunk_uploads_hash.
CREATE TABLE chunk_uploads (
    user TEXT    NOT NULL REFERENCES users (name),
    hash TEXT    NOT NULL REFERENCES chunks (hash),
    at   INTEGER NOT NULL,
    PRIMARY KEY (user, hash)
) STRICT, WITHOUT ROWID;

CREATE INDEX chunk_uploads_hash ON chunk_uploads (hash);

-- message_chunks: the chunks a message carries (Message.Chunks). Both users
-- of the message may fetch them. MayFetchChunk goes from a hash to its
-- messages (the primary key's first column), then to each message's sender
-- and recipient; ExpireChunks deletes by hash the same way.
CREATE TABLE message_chunks (
    hash    TEXT    NOT NULL REFERENCES chunks (hash),
    message INTEGER NOT NULL REFERENCES messages (pk),
    PRIMARY KEY (hash, message)
) STRICT, WITHOUT ROWID;

-- users.chunk_bytes: the user's quota usage (see chunk_uploads).
ALTER TABLE users ADD COLUMN chunk_bytes INTEGER NOT NULL DEFAULT 0 CHECK (chunk_bytes >= 0);
