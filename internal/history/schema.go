package history

import (
	"context"
	"fmt"
	"strconv"
)

// migrations are the schema's versions, in order: migrations[i] takes a file
// from user_version i to i+1. Released ones are never edited; a change is a
// new one.
var migrations = []string{
	// 1: the messages and their full-text index.
	//
	// messages: every message of every conversation, once. seq (the rowid)
	// is the message's position: its sending time in microseconds, made
	// unique (Add), so the order of a conversation; it is also the full-text
	// index's link to the row. UNIQUE (from_user, id) is the server's
	// idempotency key, so copies and re-deliveries add nothing and one
	// contact cannot hide another's message by reusing its ID. peer is the
	// other user of the conversation; (peer, seq) serves Page. Times are
	// Unix nanoseconds. unopened marks a body that is a note saying why the
	// message could not be opened.
	//
	// messages_fts: an external-content FTS5 index of the bodies (notes
	// left out), kept in step by the triggers in the same transaction as
	// every write.
	`
CREATE TABLE messages (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL,
    peer        TEXT    NOT NULL,
    from_user   TEXT    NOT NULL,
    to_user     TEXT    NOT NULL,
    from_device TEXT    NOT NULL DEFAULT '',
    body        TEXT    NOT NULL,
    unopened    INTEGER NOT NULL DEFAULT 0 CHECK (unopened IN (0, 1)),
    sent_at     INTEGER NOT NULL,
    conv_seq    INTEGER NOT NULL DEFAULT 0,
    path        TEXT    NOT NULL DEFAULT '',
    direction   TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    received_at INTEGER NOT NULL,
    UNIQUE (from_user, id)
) STRICT;

CREATE INDEX messages_peer_seq ON messages (peer, seq);

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    body,
    content = 'messages',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN NOT new.unopened BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.seq, new.body);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN NOT old.unopened BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, unopened ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body)
        SELECT 'delete', old.seq, old.body WHERE NOT old.unopened;
    INSERT INTO messages_fts (rowid, body)
        SELECT new.seq, new.body WHERE NOT new.unopened;
END;
`,
}

// migrate brings the file's schema up to date, one version per
// transaction. The version is read inside the write transaction, so two
// processes opening a new file at once do not both create it. A file newer
// than this code is refused rather than guessed at.
func (l *Log) migrate(ctx context.Context) error {
	for version := 1; version <= len(migrations); version++ {
		if err := l.apply(ctx, version); err != nil {
			return fmt.Errorf("schema version %d: %w", version, err)
		}
	}
	var have int
	if err := l.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this natter knows (%d): upgrade natter", have, len(migrations))
	}
	return nil
}

// apply applies migrations[version-1] unless the file has it.
func (l *Log) apply(ctx context.Context, version int) (err error) {
	tx, err := l.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see dsn)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var have int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have); err != nil {
		return err
	}
	if have >= version {
		return tx.Commit()
	}
	if _, err := tx.ExecContext(ctx, migrations[version-1]); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(version)); err != nil {
		return err
	}
	return tx.Commit()
}
