// Package history is a device's own log of its user's conversations: every
// message it received or sent, in one SQLite file, with full-text search.
//
// Messages are sealed end to end and their keys are forgotten once used
// (docs/security.md), so the server cannot give old bodies back in a form
// the device can open: this log is the only history a device has. Each
// message is kept once, under its idempotency key (the sender and the
// message ID, as on the server), so the re-delivery of a message, its
// peer-to-peer and stored copies, and the device's own echo of what it sent
// add nothing. A message logged as unopenable (its body a note saying why)
// is replaced by a later copy that could be opened.
//
// The package is internal: the SDK (client) hands the app plaintext and
// leaves storage to it, and this schema and API follow what the natter
// command needs. It depends on nothing of the SDK, so another app can be
// given it by moving it, once a second user of it shows what it must offer.
//
// # File
//
// The file is created with mode 0600 (it holds plaintext) and opened in WAL
// mode with synchronous=FULL and a busy timeout, so that several processes
// of one device (natter listen while natter send runs) share it; writers
// take the write lock when their transaction begins. PRAGMA user_version
// records the schema version (schema.go).
//
// # Search
//
// An FTS5 index (tokenizer unicode61 with diacritics removed: case- and
// accent-insensitive) follows the messages table through triggers, in the
// same transaction as every write. Queries are words, not FTS5 syntax: each
// whitespace-separated word is quoted and matched as a prefix, all words
// must match, so nothing a user types is an FTS5 syntax error. Hits come
// newest first; since a message's rowid is its sending time (see Add),
// that is the index's own order, and a search stops at its limit instead of
// sorting every match: over 100,000 messages a rare word takes under a
// millisecond and a word in most messages about 20 (BenchmarkSearch).
//
// Only messages are logged: the SDK has no file transfers yet. When it has,
// their events get a kind of entry of their own, in a new schema version.
package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/natterim/natter"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// busyTimeoutMillis is how long a connection waits for the write lock held
// by another process of the same device before failing.
const busyTimeoutMillis = 5000

// Direction says whether the user received a message or sent it.
type Direction string

// The directions.
const (
	In  Direction = "in"  // from the peer to the user
	Out Direction = "out" // from the user (this device or another) to the peer
)

// Entry is one logged message.
type Entry struct {
	ID         natter.MessageID
	From       natter.UserID
	To         natter.UserID
	FromDevice natter.DeviceID // the sending device, if known
	// Body is the message's text, or with Unopened a note saying why it
	// could not be opened. Notes are not indexed for search.
	Body      string
	Unopened  bool
	SentAt    time.Time // when the server (or, peer to peer, the sender) took it
	ConvSeq   uint64    // its place in the conversation; 0 for a peer-to-peer message
	Path      string    // how it travelled: server, direct or relayed
	Direction Direction
	// ReceivedAt is when this device logged it; Add sets it to the current
	// time when it is zero.
	ReceivedAt time.Time
}

// Peer returns the other user of the entry's conversation.
func (e Entry) Peer() natter.UserID {
	if e.Direction == Out {
		return e.To
	}
	return e.From
}

// validate reports why e cannot be logged.
func (e Entry) validate() error {
	if err := natter.ValidateMessageID(string(e.ID)); err != nil {
		return err
	}
	switch {
	case e.From == "" || e.To == "":
		return fmt.Errorf("message %s: sender and recipient are required", e.ID)
	case e.Direction != In && e.Direction != Out:
		return fmt.Errorf("message %s: direction %q is neither %q nor %q", e.ID, e.Direction, In, Out)
	case e.SentAt.IsZero():
		return fmt.Errorf("message %s: no sending time", e.ID)
	}
	return nil
}

// Hit is a message that matches a search, with a snippet of its body
// around the matching words, which are marked with HighlightStart and
// HighlightEnd.
type Hit struct {
	Entry
	Snippet string
}

// The marks around matching words in Hit.Snippet, and what stands for the
// text a snippet leaves out.
const (
	HighlightStart = "["
	HighlightEnd   = "]"
	Ellipsis       = "…"
)

// snippetTokens is how many words a snippet shows at most.
const snippetTokens = 12

// Log is the history in one SQLite file. Its methods are safe for concurrent
// use. Create it with Open and release it with Close.
type Log struct {
	db *sql.DB
}

// Open opens the log in the file at path, creating it (mode 0600) and its
// schema if need be.
func Open(ctx context.Context, path string) (*Log, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("history: open %q: need a file path", path)
	}
	// SQLite would create the file with mode 0644; its -wal and -shm files
	// take the mode of the database file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	f.Close()
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	// One connection: the log serves one process's commands, and a single
	// connection never waits on itself for the write lock.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	l := &Log{db: db}
	if err := l.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	return l, nil
}

// dsn is the modernc.org/sqlite data source name for path: pragmas set on
// every connection, and write transactions that take the write lock at
// BEGIN (so that two processes never both read and then fail to write).
func dsn(path string) string {
	q := []string{
		"_pragma=busy_timeout(" + strconv.Itoa(busyTimeoutMillis) + ")",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(FULL)",
		"_txlock=immediate",
	}
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + p + "?" + strings.Join(q, "&")
}

// Close closes the log.
func (l *Log) Close() error {
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("history: close: %w", err)
	}
	return nil
}

// The statements of Add.
const (
	// findSQL finds a message by its idempotency key.
	findSQL = `SELECT seq, unopened FROM messages WHERE from_user = ? AND id = ?`
	// openedSQL replaces a note with the message's text.
	openedSQL = `UPDATE messages SET body = ?, unopened = 0, from_device = ? WHERE seq = ?`
	// takenSQL says whether a position is taken.
	takenSQL = `SELECT EXISTS (SELECT 1 FROM messages WHERE seq = ?)`
	// insertSQL logs a message; the conflict clause is a second guard
	// behind findSQL.
	insertSQL = `
INSERT INTO messages (seq, id, peer, from_user, to_user, from_device, body, unopened,
                      sent_at, conv_seq, path, direction, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (from_user, id) DO NOTHING`
)

// Add logs entries in one transaction: all or none. An entry logged already
// (same sender and ID) is left as it is, unless it was logged as unopened
// and the new copy was opened: then its body replaces the note.
//
// Each message's position (the rowid, which the full-text index shares) is
// its sending time in microseconds, moved up to the next free microsecond
// if another message has it: so the order of positions is the order of the
// conversation, whenever a message arrives, and a newest-first search reads
// the index in rowid order instead of sorting every match.
func (l *Log) Add(ctx context.Context, entries ...Entry) (err error) {
	if len(entries) == 0 {
		return nil
	}
	for _, e := range entries {
		if err := e.validate(); err != nil {
			return fmt.Errorf("history: add: %w", err)
		}
	}
	tx, err := l.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see dsn)
	if err != nil {
		return fmt.Errorf("history: add: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var stmts [4]*sql.Stmt
	for i, q := range []string{findSQL, openedSQL, takenSQL, insertSQL} {
		if stmts[i], err = tx.PrepareContext(ctx, q); err != nil {
			return fmt.Errorf("history: add: %w", err)
		}
		defer stmts[i].Close()
	}
	find, opened, taken, insert := stmts[0], stmts[1], stmts[2], stmts[3]
	now := time.Now()
	for _, e := range entries {
		var (
			seq      int64
			unopened bool
		)
		switch err := find.QueryRowContext(ctx, string(e.From), string(e.ID)).Scan(&seq, &unopened); {
		case err == nil:
			if unopened && !e.Unopened {
				if _, err := opened.ExecContext(ctx, e.Body, string(e.FromDevice), seq); err != nil {
					return fmt.Errorf("history: add message %s: %w", e.ID, err)
				}
			}
			continue
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("history: add message %s: %w", e.ID, err)
		}
		seq = e.SentAt.UnixMicro()
		for {
			var t bool
			if err := taken.QueryRowContext(ctx, seq).Scan(&t); err != nil {
				return fmt.Errorf("history: add message %s: %w", e.ID, err)
			}
			if !t {
				break
			}
			seq++
		}
		received := e.ReceivedAt
		if received.IsZero() {
			received = now
		}
		if _, err := insert.ExecContext(ctx, seq, string(e.ID), string(e.Peer()), string(e.From), string(e.To),
			string(e.FromDevice), e.Body, e.Unopened, e.SentAt.UnixNano(), int64(e.ConvSeq), e.Path,
			string(e.Direction), received.UnixNano()); err != nil {
			return fmt.Errorf("history: add message %s: %w", e.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history: add: %w", err)
	}
	return nil
}

// Count returns how many messages the log holds.
func (l *Log) Count(ctx context.Context) (int, error) {
	var n int
	if err := l.db.QueryRowContext(ctx, "SELECT count(*) FROM messages").Scan(&n); err != nil {
		return 0, fmt.Errorf("history: count: %w", err)
	}
	return n, nil
}

// Cursor is a place in a conversation, between pages: Page returns the one
// for the page before. The zero Cursor is the end of the conversation.
// Cursors are opaque text (a message's position), valid as long as the file
// exists.
type Cursor string

func cursorAt(seq int64) Cursor { return Cursor(strconv.FormatInt(seq, 36)) }

func (c Cursor) seq() (int64, error) {
	seq, err := strconv.ParseInt(string(c), 36, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrBadCursor, string(c))
	}
	return seq, nil
}

// entryColumns are the columns scan reads, in its order.
const entryColumns = `m.seq, m.id, m.from_user, m.to_user, m.from_device, m.body, m.unopened,
    m.sent_at, m.conv_seq, m.path, m.direction, m.received_at`

// scan reads one row of entryColumns (and any extra destinations after
// them) and returns the entry and its position.
func scan(rows *sql.Rows, extra ...any) (Entry, int64, error) {
	var (
		e                       Entry
		seq, sent, received, cs int64
	)
	dest := append([]any{&seq, &e.ID, &e.From, &e.To, &e.FromDevice, &e.Body, &e.Unopened,
		&sent, &cs, &e.Path, &e.Direction, &received}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return Entry{}, 0, err
	}
	e.SentAt = time.Unix(0, sent).UTC()
	e.ReceivedAt = time.Unix(0, received).UTC()
	e.ConvSeq = uint64(cs)
	return e, seq, nil
}

// Page returns up to limit messages of the conversation with peer that come
// before the cursor (the newest ones for the zero Cursor), oldest first, and
// the cursor of the page before them: empty when there is none. Walking
// from the zero Cursor through every returned cursor visits each message of
// the conversation once, newest page first; messages logged meanwhile
// show only if they belong before the cursor.
func (l *Log) Page(ctx context.Context, peer natter.UserID, before Cursor, limit int) ([]Entry, Cursor, error) {
	if limit < 1 {
		return nil, "", fmt.Errorf("history: page: limit %d is not positive", limit)
	}
	q := `SELECT ` + entryColumns + ` FROM messages m WHERE m.peer = ?`
	args := []any{string(peer)}
	if before != "" {
		seq, err := before.seq()
		if err != nil {
			return nil, "", fmt.Errorf("history: page: %w", err)
		}
		q += ` AND m.seq < ?`
		args = append(args, seq)
	}
	q += ` ORDER BY m.seq DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("history: page: %w", err)
	}
	defer rows.Close()
	var (
		out  []Entry
		seqs []int64
	)
	for rows.Next() {
		e, seq, err := scan(rows)
		if err != nil {
			return nil, "", fmt.Errorf("history: page: %w", err)
		}
		out, seqs = append(out, e), append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("history: page: %w", err)
	}
	var next Cursor
	if len(out) > limit {
		out = out[:limit]
		next = cursorAt(seqs[limit-1])
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, next, nil
}

// Search returns up to limit messages whose body has every word of query
// (each as a word or the start of one; case and accents do not matter),
// newest first. A query with no word in it (empty, or only punctuation) is
// ErrEmptyQuery.
func (l *Log) Search(ctx context.Context, query string, limit int) ([]Hit, error) {
	if limit < 1 {
		return nil, fmt.Errorf("history: search: limit %d is not positive", limit)
	}
	match, err := matchExpr(query)
	if err != nil {
		return nil, fmt.Errorf("history: search: %w", err)
	}
	rows, err := l.db.QueryContext(ctx, searchSQL, HighlightStart, HighlightEnd, Ellipsis, snippetTokens, match, limit)
	if err != nil {
		return nil, fmt.Errorf("history: search %q: %w", query, err)
	}
	defer rows.Close()
	var hits []Hit
	for rows.Next() {
		var h Hit
		if h.Entry, _, err = scan(rows, &h.Snippet); err != nil {
			return nil, fmt.Errorf("history: search %q: %w", query, err)
		}
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: search %q: %w", query, err)
	}
	return hits, nil
}

// searchSQL finds the newest matches: in the index's rowid order, which is
// the order of sending (see Add), so SQLite reads matches newest first and
// stops at the limit, and makes snippets for those only.
const searchSQL = `
SELECT ` + entryColumns + `, snippet(messages_fts, 0, ?, ?, ?, ?)
FROM messages_fts JOIN messages m ON m.seq = messages_fts.rowid
WHERE messages_fts MATCH ?
ORDER BY messages_fts.rowid DESC
LIMIT ?`

// matchExpr turns words typed by a user into an FTS5 query: each
// whitespace-separated word becomes a quoted phrase (quotes in it doubled)
// matched as a prefix, and all of them must match. Inside quotes FTS5 sees
// no operators, so AND, NEAR, parentheses, column names and stars are
// words or separators. Control characters (FTS5 would end the query at a
// NUL) separate words, and words without a letter or digit would match
// nothing and are left out.
func matchExpr(query string) (string, error) {
	var terms []string
	words := strings.FieldsFunc(query, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) })
	for _, w := range words {
		if !strings.ContainsFunc(w, isWordChar) {
			continue
		}
		terms = append(terms, `"`+strings.ReplaceAll(w, `"`, `""`)+`"*`)
	}
	if len(terms) == 0 {
		return "", fmt.Errorf("%w: %q", ErrEmptyQuery, query)
	}
	return strings.Join(terms, " "), nil
}

// isWordChar reports whether FTS5's unicode61 tokenizer keeps c in a word
// (its default categories: letters, numbers and private use).
func isWordChar(c rune) bool {
	return unicode.IsLetter(c) || unicode.IsNumber(c) || unicode.Is(unicode.Co, c)
}

// Opened returns the opened messages after position after (0: from the
// start), oldest first, at most limit, with the position to go on from
// (the same if none followed). It is for copying a history elsewhere (to
// the server-side archive).
func (l *Log) Opened(ctx context.Context, after int64, limit int) ([]Entry, int64, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT `+entryColumns+` FROM messages m
    WHERE m.seq > ? AND NOT m.unopened ORDER BY m.seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, after, fmt.Errorf("history: opened: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, seq, err := scan(rows)
		if err != nil {
			return nil, after, fmt.Errorf("history: opened: %w", err)
		}
		out, after = append(out, e), seq
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("history: opened: %w", err)
	}
	return out, after, nil
}
