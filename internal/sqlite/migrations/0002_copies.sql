-- 0002: copies of messages that went peer to peer (Store.AppendCopy).
--
-- The conventions of 0001 hold. users.inbox_seq now counts copies too: a
-- copy takes the next sequence number of its owner's inbox, like a message
-- or a receipt.

-- copies: one row per copy, stored for one user (owner) only. The server did
-- not carry the message, so a copy has no conversation and no conversation
-- sequence number, and it is not in messages: the same (sender, id) may be
-- both a message and a copy, and each user of a direct exchange may hold a
-- copy of the same message. UNIQUE (owner, sender, id) is the idempotency key
-- (and the duplicate lookup); seq is the copy's entry in owner's inbox, kept
-- so that a repeat can be answered with the first copy's sequence number.
CREATE TABLE copies (
    pk            INTEGER PRIMARY KEY,
    owner         TEXT    NOT NULL REFERENCES users (name),
    sender        TEXT    NOT NULL REFERENCES users (name),
    id            TEXT    NOT NULL,
    recipient     TEXT    NOT NULL REFERENCES users (name),
    sender_device TEXT    NOT NULL,
    body          BLOB    NOT NULL,
    sent_at       INTEGER,
    seq           INTEGER NOT NULL CHECK (seq > 0),
    UNIQUE (owner, sender, id),
    CHECK (owner = sender OR owner = recipient),
    CHECK (sender <> recipient)
) STRICT;

-- inbox gains a third kind of entry, a copy. SQLite cannot change a CHECK
-- constraint in place, so the table is rebuilt: create the new one, copy the
-- rows, drop the old one, rename the new one. This runs inside the
-- migration's transaction, so a failure leaves the 0001 table as it was.
-- Nothing refers to inbox, so dropping it with foreign keys on is safe; it
-- has no index besides its primary key, so there is none to recreate.
CREATE TABLE inbox_0002 (
    user    TEXT    NOT NULL REFERENCES users (name),
    seq     INTEGER NOT NULL CHECK (seq > 0),
    message INTEGER REFERENCES messages (pk),
    receipt INTEGER REFERENCES receipts (pk),
    copy    INTEGER REFERENCES copies (pk),
    PRIMARY KEY (user, seq),
    CHECK ((message IS NOT NULL) + (receipt IS NOT NULL) + (copy IS NOT NULL) = 1)
) STRICT, WITHOUT ROWID;

INSERT INTO inbox_0002 (user, seq, message, receipt)
    SELECT user, seq, message, receipt FROM inbox;

DROP TABLE inbox;

ALTER TABLE inbox_0002 RENAME TO inbox;
