package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// schema0001Data is what a database at schema version 1 could hold, written
// the way natter wrote it before migration 0002: alice, bob and carol; a
// session and a device cursor; contacts; messages both ways between alice and
// bob and one to carol; a receipt; and every inbox entry they made. The
// counters (users.inbox_seq, conversations.last_seq) agree with the rows.
//
// It is plain SQL rather than calls to the store, so that it keeps describing
// a 0001 database when the store's code moves on to later schemas.
const schema0001Data = `
INSERT INTO users (name, password_hash, created, last_seen, inbox_seq) VALUES
    ('alice', 'hash-a', 1741960000000000, 1741960500000000, 4),
    ('bob',   'hash-b', 1741960001000000, NULL,             3),
    ('carol', 'hash-c', 1741960002000000, NULL,             1);
INSERT INTO sessions (token_hash, user, device, created, expires) VALUES
    (X'00ff7f80', 'alice', 'phone', 1741960100000000, 1744552100000000);
INSERT INTO devices (user, device, cursor, last_login) VALUES
    ('alice', 'phone', 2, 1741960100000000);
INSERT INTO contacts (owner, peer, state) VALUES
    ('alice', 'bob',   'approved'),
    ('bob',   'alice', 'approved'),
    ('alice', 'carol', 'pending_out'),
    ('carol', 'alice', 'pending_in');
INSERT INTO conversations (id, a, b, last_seq) VALUES
    (1, 'alice', 'bob',   2),
    (2, 'alice', 'carol', 1);
INSERT INTO messages (pk, sender, id, recipient, sender_device, body, conv, conv_seq, sent_at, to_seq, from_seq) VALUES
    (1, 'alice', 'm1', 'bob',   'phone',  X'00ff0100', 1, 1, 1741960200000000, 1, 1),
    (2, 'bob',   'm2', 'alice', 'laptop', X'6869',     1, 2, 1741960201000000, 2, 2),
    (3, 'alice', 'm3', 'carol', 'phone',  X'',         2, 1, NULL,             1, 3);
INSERT INTO receipts (pk, sender, recipient, upto, state, at) VALUES
    (1, 'bob', 'alice', 2, 'read', 1741960300000000);
INSERT INTO inbox (user, seq, message, receipt) VALUES
    ('alice', 1, 1, NULL), ('alice', 2, 2, NULL), ('alice', 3, 3, NULL), ('alice', 4, NULL, 1),
    ('bob',   1, 1, NULL), ('bob',   2, 2, NULL), ('bob',   3, NULL, 1),
    ('carol', 1, 3, NULL);
`

// openVersion creates a database at path with only the first version
// migrations applied, as an older natter left it, runs data on it, and closes
// it.
func openVersion(t *testing.T, path string, version int, data string) {
	t.Helper()
	ctx := t.Context()
	files, err := migrationList()
	if err != nil {
		t.Fatal(err)
	}
	wdb, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	defer wdb.Close()
	conn, err := wdb.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := migrate(ctx, conn, slog.New(slog.DiscardHandler), files[:version]); err != nil {
		t.Fatalf("migrate to version %d: %v", version, err)
	}
	var have int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have); err != nil || have != version {
		t.Fatalf("user_version = %d, %v; want %d", have, err, version)
	}
	if _, err := conn.ExecContext(ctx, data); err != nil {
		t.Fatalf("write the version %d data: %v", version, err)
	}
}

// TestMigrate0002 opens a database written at schema version 1 (before
// copies) and checks that migration 0002 keeps everything in it readable and
// unchanged, carries the inbox counters on, and makes copies work.
func TestMigrate0002(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	openVersion(t, path, 1, schema0001Data)

	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open of a version 1 database: %v", err)
	}
	defer db.Close()

	t.Run("schema", func(t *testing.T) {
		files, _ := migrationList()
		var version int
		if err := db.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil || version != len(files) {
			t.Errorf("user_version = %d, %v; want %d", version, err, len(files))
		}
		var integrity string
		if err := db.rdb.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
			t.Errorf("integrity_check = %q, %v", integrity, err)
		}
		rows, err := db.rdb.QueryContext(ctx, "PRAGMA foreign_key_check")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		if rows.Next() {
			t.Errorf("foreign_key_check reports violations after the migration")
		}
		var leftover int
		if err := db.rdb.QueryRowContext(ctx,
			`SELECT count(*) FROM sqlite_schema WHERE name LIKE 'inbox_%'`).Scan(&leftover); err != nil || leftover != 0 {
			t.Errorf("%d leftover inbox tables (%v)", leftover, err)
		}
	})

	t.Run("accounts", func(t *testing.T) {
		for u, want := range map[natter.UserID]string{"alice": "hash-a", "bob": "hash-b", "carol": "hash-c"} {
			if h, err := db.PasswordHash(ctx, u); err != nil || h != want {
				t.Errorf("PasswordHash(%s) = %q, %v; want %q", u, h, err, want)
			}
		}
		s, err := db.Session(ctx, []byte{0, 0xff, 0x7f, 0x80})
		if err != nil || s.User != "alice" || s.Device != "phone" || !s.Expires.Equal(time.UnixMicro(1744552100000000)) {
			t.Errorf("Session = %+v, %v", s, err)
		}
		seen, err := db.LastSeen(ctx, []natter.UserID{"alice", "bob"})
		if err != nil || len(seen) != 1 || !seen["alice"].At.Equal(time.UnixMicro(1741960500000000)) || seen["alice"].Text != "" {
			t.Errorf("LastSeen = %v, %v; want alice's only", seen, err)
		}
		cs, err := db.Contacts(ctx, "alice")
		if err != nil || len(cs) != 2 || cs[0].User != "bob" || cs[0].State != natter.ContactApproved ||
			cs[1].User != "carol" || cs[1].State != natter.ContactPendingOut {
			t.Errorf("Contacts(alice) = %+v, %v", cs, err)
		}
	})

	m1 := natter.Message{ID: "m1", From: "alice", FromDevice: "phone", To: "bob", Body: []byte{0, 0xff, 1, 0}, ConvSeq: 1, SentAt: time.UnixMicro(1741960200000000)}
	m2 := natter.Message{ID: "m2", From: "bob", FromDevice: "laptop", To: "alice", Body: []byte("hi"), ConvSeq: 2, SentAt: time.UnixMicro(1741960201000000)}
	m3 := natter.Message{ID: "m3", From: "alice", FromDevice: "phone", To: "carol", Body: []byte{}, ConvSeq: 1}
	r1 := natter.Receipt{From: "bob", To: "alice", Upto: 2, State: natter.ReceiptRead, At: time.UnixMicro(1741960300000000)}

	t.Run("inboxes", func(t *testing.T) {
		checkInbox(t, db, "alice", []any{m1, m2, m3, r1})
		checkInbox(t, db, "bob", []any{m1, m2, r1})
		checkInbox(t, db, "carol", []any{m3})
		conv, err := db.Conversation(ctx, "bob", "alice", 0, 10)
		if err != nil || len(conv) != 2 || !sameMessage(conv[0], m1) || !sameMessage(conv[1], m2) {
			t.Errorf("Conversation(alice, bob) = %+v, %v; want m1, m2", conv, err)
		}
	})

	// Writes after the migration: counters carry on from the 0001 data, a
	// retry of an old message is still recognised, and copies work.
	t.Run("writes", func(t *testing.T) {
		cursor, err := db.TouchDevice(ctx, "alice", "phone", time.Now(), 0)
		if err != nil || cursor != 2 {
			t.Errorf("TouchDevice(alice/phone) = %d, %v; want the stored cursor 2", cursor, err)
		}
		dup, err := db.AppendMessage(ctx, natter.Message{ID: "m1", From: "alice", To: "bob", Body: []byte("retry")})
		if err != nil || !dup.Duplicate || !sameMessage(dup.Message, m1) || dup.ToSeq != 1 || dup.FromSeq != 1 {
			t.Errorf("retry of m1 = %+v, %v; want the first copy", dup, err)
		}
		c := natter.Message{ID: "p1", From: "alice", FromDevice: "laptop", To: "bob", Body: []byte("direct"), SentAt: time.UnixMicro(1741960400000000)}
		seq, isDup, err := db.AppendCopy(ctx, "alice", c)
		if err != nil || seq != 5 || isDup {
			t.Fatalf("AppendCopy(alice) = %d, %v, %v; want 5, false, nil", seq, isDup, err)
		}
		// The same ID as an old message, as a copy: a separate entry.
		seq, isDup, err = db.AppendCopy(ctx, "bob", m1)
		if err != nil || seq != 4 || isDup {
			t.Fatalf("AppendCopy(bob, m1) = %d, %v, %v; want 4, false, nil", seq, isDup, err)
		}
		m4 := natter.Message{ID: "m4", From: "bob", FromDevice: "phone", To: "alice", Body: []byte("after"), SentAt: time.UnixMicro(1741960500000000)}
		a, err := db.AppendMessage(ctx, m4)
		if err != nil || a.Duplicate || a.Message.ConvSeq != 3 || a.ToSeq != 6 || a.FromSeq != 5 {
			t.Fatalf("AppendMessage after the migration = %+v, %v; want ConvSeq 3, ToSeq 6, FromSeq 5", a, err)
		}
		m4.ConvSeq = 3
		m1copy := m1
		m1copy.ConvSeq = 0
		checkInbox(t, db, "alice", []any{m1, m2, m3, r1, copyOf(c), m4})
		checkInbox(t, db, "bob", []any{m1, m2, r1, copyOf(m1copy), m4})
		checkInbox(t, db, "carol", []any{m3})
	})

	// The rebuilt inbox enforces exactly one kind per entry.
	t.Run("check", func(t *testing.T) {
		for _, tt := range []struct{ name, cols, vals string }{
			{"none", "user, seq", "'carol', 9"},
			{"message and copy", "user, seq, message, copy", "'carol', 9, 3, 1"},
			{"receipt and copy", "user, seq, receipt, copy", "'carol', 9, 1, 1"},
			{"all three", "user, seq, message, receipt, copy", "'carol', 9, 3, 1, 1"},
		} {
			err := db.write(ctx, "insert a bad inbox entry", func(ctx context.Context, w *writer) error {
				return w.exec1(ctx, "INSERT INTO inbox ("+tt.cols+") VALUES ("+tt.vals+")")
			})
			if err == nil || !strings.Contains(err.Error(), "CHECK") {
				t.Errorf("%s: %v, want a CHECK constraint error", tt.name, err)
			}
		}
	})
}

// copied marks a message expected as a copy in checkInbox.
type copied struct{ m natter.Message }

func copyOf(m natter.Message) copied { return copied{m} }

// checkInbox fails t unless user's inbox holds want (natter.Message,
// copied or natter.Receipt values) at sequence numbers 1, 2, ...
func checkInbox(t *testing.T, db *DB, user natter.UserID, want []any) {
	t.Helper()
	got, err := db.Inbox(t.Context(), user, 0, 100)
	if err != nil {
		t.Fatalf("Inbox(%s): %v", user, err)
	}
	if len(got) != len(want) {
		t.Fatalf("Inbox(%s) has %d entries, want %d", user, len(got), len(want))
	}
	for i, e := range got {
		ok := e.Seq == uint64(i+1)
		switch w := want[i].(type) {
		case natter.Message:
			ok = ok && e.Message != nil && e.Receipt == nil && !e.Copy && sameMessage(*e.Message, w)
		case copied:
			ok = ok && e.Message != nil && e.Receipt == nil && e.Copy && sameMessage(*e.Message, w.m)
		case natter.Receipt:
			ok = ok && e.Message == nil && e.Receipt != nil && !e.Copy && *e.Receipt == natter.Receipt{
				From: w.From, To: w.To, Upto: w.Upto, ID: w.ID, State: w.State, At: e.Receipt.At,
			} && e.Receipt.At.Equal(w.At)
		}
		if !ok {
			t.Errorf("Inbox(%s)[%d] = seq %d, copy %v, message %+v, receipt %+v; want %+v",
				user, i, e.Seq, e.Copy, e.Message, e.Receipt, want[i])
		}
	}
}

func sameMessage(a, b natter.Message) bool {
	return a.ID == b.ID && a.From == b.From && a.FromDevice == b.FromDevice && a.To == b.To &&
		bytes.Equal(a.Body, b.Body) && a.ConvSeq == b.ConvSeq && a.SentAt.Equal(b.SentAt)
}

// TestMigrate0003 opens a database written at schema version 2 (before the
// key directory) and checks that migration 0003 keeps its sessions, that
// every user starts with an empty key set, and that keys and password
// changes work on it; SetPassword's delete by user uses the new index.
func TestMigrate0003(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	openVersion(t, path, 2, schema0001Data)

	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open of a version 2 database: %v", err)
	}
	defer db.Close()

	if s, err := db.Session(ctx, []byte{0, 0xff, 0x7f, 0x80}); err != nil || s.User != "alice" {
		t.Fatalf("Session after the migration = %+v, %v", s, err)
	}
	for _, u := range []natter.UserID{"alice", "bob", "carol"} {
		ks, err := db.UserKeys(ctx, u, []natter.DeviceID{"phone"})
		if err != nil || ks.Identity != nil || len(ks.Devices) != 0 {
			t.Errorf("UserKeys(%s) = %+v, %v; want an empty key set", u, ks, err)
		}
	}
	if _, err := db.SetIdentity(ctx, "alice", []byte{1}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutBundle(ctx, "alice", "phone", []byte{2}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddPrekeys(ctx, "alice", "phone", [][]byte{{3}}); err != nil {
		t.Fatal(err)
	}
	ks, err := db.UserKeys(ctx, "alice", []natter.DeviceID{"phone"})
	if err != nil || len(ks.Devices) != 1 || !bytes.Equal(ks.Devices[0].Prekey, []byte{3}) {
		t.Fatalf("UserKeys(alice, phone) = %+v, %v", ks, err)
	}

	var plan, detail string
	var id, parent, unused int
	rows, err := db.rdb.QueryContext(ctx, `EXPLAIN QUERY PLAN DELETE FROM sessions WHERE user = 'alice'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan += detail + "; "
	}
	rows.Close()
	if !strings.Contains(plan, "sessions_user") {
		t.Errorf("deleting a user's sessions does not use sessions_user: %s", plan)
	}

	if err := db.SetPassword(ctx, "alice", "hash-a2", natter.Session{}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Session(ctx, []byte{0, 0xff, 0x7f, 0x80}); !errors.Is(err, natter.ErrNoSession) {
		t.Errorf("Session after SetPassword: %v, want ErrNoSession", err)
	}
}

// TestMigrate0005 opens a database written at schema version 4 (before the
// archive) and checks that every user's archive starts off and works once
// turned on, and that reading and deleting a user's records go by
// archive_records_user rather than a scan of everyone's.
func TestMigrate0005(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	openVersion(t, path, 4, schema0001Data)

	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open of a version 4 database: %v", err)
	}
	defer db.Close()

	for _, u := range []natter.UserID{"alice", "bob", "carol"} {
		if on, err := db.ArchiveOn(ctx, u); err != nil || on {
			t.Errorf("ArchiveOn(%s) after the migration = %v, %v; want off", u, on, err)
		}
	}
	if err := db.SetArchive(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if err := db.PutArchive(ctx, "alice", []natter.ArchiveItem{{Key: "k", Data: []byte{0}}}, time.Now(), -1); err != nil {
		t.Fatal(err)
	}
	recs, more, err := db.ArchiveRecords(ctx, "alice", 0, 10, 1000)
	if err != nil || len(recs) != 1 || more || !bytes.Equal(recs[0].Data, []byte{0}) {
		t.Fatalf("ArchiveRecords after the migration = %+v, %v, %v", recs, more, err)
	}

	for _, q := range []string{
		`SELECT seq, at, data FROM archive_records WHERE user = 'alice' AND seq > 0 ORDER BY seq LIMIT 10`,
		`DELETE FROM archive_records WHERE user = 'alice'`,
	} {
		var plan, detail string
		var id, parent, unused int
		rows, err := db.rdb.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan += detail + "; "
		}
		rows.Close()
		if !strings.Contains(plan, "archive_records_user") || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s: plan %s; want archive_records_user, no sort", q, plan)
		}
	}
}

// TestMigrate0006 opens a database written at schema version 5 (before
// status texts were kept) and checks that every user starts with no text,
// that last-seen times are kept, and that texts can be set and read back.
func TestMigrate0006(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	openVersion(t, path, 5, schema0001Data)

	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open of a version 5 database: %v", err)
	}
	defer db.Close()

	everyone := []natter.UserID{"alice", "bob", "carol"}
	aliceSeen := time.UnixMicro(1741960500000000)
	for _, tt := range []struct {
		name string
		set  map[natter.UserID]string // status texts to set first
		want map[natter.UserID]natter.Seen
	}{
		{"after the migration", nil, map[natter.UserID]natter.Seen{"alice": {At: aliceSeen}}},
		{"texts set", map[natter.UserID]string{"alice": "away", "bob": "busy"},
			map[natter.UserID]natter.Seen{"alice": {At: aliceSeen, Text: "away"}, "bob": {Text: "busy"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for u, text := range tt.set {
				if err := db.SetStatusText(ctx, u, text); err != nil {
					t.Fatalf("SetStatusText(%s): %v", u, err)
				}
			}
			seen, err := db.LastSeen(ctx, everyone)
			if err != nil || len(seen) != len(tt.want) {
				t.Fatalf("LastSeen = %v, %v; want %v", seen, err, tt.want)
			}
			for u, w := range tt.want {
				if g := seen[u]; !g.At.Equal(w.At) || g.Text != w.Text {
					t.Errorf("LastSeen[%s] = %+v, want %+v", u, g, w)
				}
			}
		})
	}
}

// TestMigrate0007 opens a database written at schema version 6 (before
// receipts kept the message they name) and checks that its receipt reads
// back without an ID, in both inboxes, and that receipts appended after the
// migration keep theirs, or none.
func TestMigrate0007(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	openVersion(t, path, 6, schema0001Data)

	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open of a version 6 database: %v", err)
	}
	defer db.Close()

	m1 := natter.Message{ID: "m1", From: "alice", FromDevice: "phone", To: "bob", Body: []byte{0, 0xff, 1, 0}, ConvSeq: 1, SentAt: time.UnixMicro(1741960200000000)}
	m2 := natter.Message{ID: "m2", From: "bob", FromDevice: "laptop", To: "alice", Body: []byte("hi"), ConvSeq: 2, SentAt: time.UnixMicro(1741960201000000)}
	m3 := natter.Message{ID: "m3", From: "alice", FromDevice: "phone", To: "carol", Body: []byte{}, ConvSeq: 1}
	r1 := natter.Receipt{From: "bob", To: "alice", Upto: 2, State: natter.ReceiptRead, At: time.UnixMicro(1741960300000000)}
	aliceWant := []any{m1, m2, m3, r1}
	bobWant := []any{m1, m2, r1}
	for _, tt := range []struct {
		name string
		r    *natter.Receipt // appended first; nil: none
	}{
		{"old receipt", nil},
		{"new with an ID", &natter.Receipt{From: "bob", To: "alice", Upto: 2, ID: "direct-1", State: natter.ReceiptRead, At: time.UnixMicro(1741960600000000)}},
		{"new without an ID", &natter.Receipt{From: "alice", To: "bob", Upto: 2, State: natter.ReceiptDelivered, At: time.UnixMicro(1741960700000000)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.r != nil {
				if _, _, err := db.AppendReceipt(ctx, *tt.r); err != nil {
					t.Fatalf("AppendReceipt: %v", err)
				}
				aliceWant = append(aliceWant, *tt.r)
				bobWant = append(bobWant, *tt.r)
			}
			checkInbox(t, db, "alice", aliceWant)
			checkInbox(t, db, "bob", bobWant)
		})
	}
	var nulls int
	if err := db.rdb.QueryRowContext(ctx, `SELECT count(*) FROM receipts WHERE id IS NULL`).Scan(&nulls); err != nil || nulls != 2 {
		t.Errorf("%d receipts without an ID stored as NULL (%v), want 2", nulls, err)
	}
}

// TestMigrate0008 opens a database written at schema version 7 (before
// trimming) and checks that migration 0008 gives its receipt the sequence
// numbers of its two inbox entries, and that the old rows trim as new ones
// do: each entry once every device acknowledged it, the receipt with its
// last entry, a message kept (trimmed) for its idempotency key, and the
// counters going on above the numbers the trimmed rows held.
func TestMigrate0008(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	openVersion(t, path, 7, schema0001Data)

	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open of a version 7 database: %v", err)
	}
	defer db.Close()
	var to, from sql.NullInt64
	if err := db.rdb.QueryRowContext(ctx, `SELECT to_seq, from_seq FROM receipts WHERE pk = 1`).Scan(&to, &from); err != nil {
		t.Fatal(err)
	}
	if to.Int64 != 4 || from.Int64 != 3 {
		t.Fatalf("the old receipt's entries after 0008: to_seq %v, from_seq %v; want 4 (alice's), 3 (bob's)", to, from)
	}
	// alice's phone is at 2 (schema0001Data); bob and carol have no device.
	for _, d := range []struct {
		user   natter.UserID
		device natter.DeviceID
		upto   uint64
	}{{"alice", "phone", 4}, {"bob", "laptop", 3}} {
		if _, err := db.TouchDevice(ctx, d.user, d.device, time.Now(), 0); err != nil {
			t.Fatal(err)
		}
		if err := db.AckInbox(ctx, d.user, d.device, d.upto); err != nil {
			t.Fatal(err)
		}
	}
	r, err := db.TrimInbox(ctx, "", time.Time{}, 100)
	if err != nil || !r.Done || r.Acked != 7 {
		t.Fatalf("TrimInbox = %+v, %v; want 7 acknowledged entries (alice's 4, bob's 3), done", r, err)
	}
	var receipts, trimmed, kept int
	if err := db.rdb.QueryRowContext(ctx,
		`SELECT (SELECT count(*) FROM receipts), (SELECT count(*) FROM messages WHERE trimmed = 1), (SELECT count(*) FROM messages WHERE trimmed = 0)`).
		Scan(&receipts, &trimmed, &kept); err != nil {
		t.Fatal(err)
	}
	if receipts != 0 || trimmed != 2 || kept != 1 {
		t.Fatalf("after the trim: %d receipts, %d trimmed and %d kept messages; want 0, 2 (m1, m2), 1 (m3: carol has it)", receipts, trimmed, kept)
	}
	a, err := db.AppendMessage(ctx, natter.Message{ID: "m1", From: "alice", To: "bob", Body: []byte("again")})
	if err != nil || !a.Duplicate || !a.Trimmed || a.ToSeq != 1 || a.FromSeq != 1 || a.Message.ConvSeq != 1 {
		t.Fatalf("m1 again = %+v, %v; want the trimmed first copy (1/1, conv 1)", a, err)
	}
	a, err = db.AppendMessage(ctx, natter.Message{ID: "m4", From: "alice", To: "bob", Body: []byte("new")})
	if err != nil || a.ToSeq != 4 || a.FromSeq != 5 || a.Message.ConvSeq != 3 {
		t.Fatalf("m4 = %+v, %v; want seqs 4/5, conv 3", a, err)
	}
}
