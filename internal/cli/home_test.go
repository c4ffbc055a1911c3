package cli

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

func TestDeviceIDIsKept(t *testing.T) {
	h := home{dir: filepath.Join(t.TempDir(), "home")}
	a, err := h.deviceID()
	if err != nil {
		t.Fatal(err)
	}
	if err := natter.ValidateDeviceID(string(a)); err != nil {
		t.Fatalf("device ID %q: %v", a, err)
	}
	b, err := h.deviceID()
	if err != nil || a != b {
		t.Fatalf("second deviceID = %q, %v; want %q", b, err, a)
	}
	fi, err := os.Stat(h.dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("home mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	os.WriteFile(h.path(deviceFile), []byte("bad id!\n"), 0o600)
	if _, err := h.deviceID(); err == nil {
		t.Error("deviceID accepted a damaged file")
	}
}

func TestSessionFile(t *testing.T) {
	h := home{dir: t.TempDir()}
	if _, err := h.session(); !errors.Is(err, errNotLoggedIn) {
		t.Fatalf("session in an empty home: %v, want errNotLoggedIn", err)
	}
	want := storedSession{Server: "127.0.0.1:1", User: "alice", Device: "d1", Token: "tok", Expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := h.saveSession(want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(h.path(sessionFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("session file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	got, err := h.session()
	if err != nil || !got.Expires.Equal(want.Expires) || got.Token != want.Token || got.User != want.User || got.Server != want.Server {
		t.Errorf("session = %+v, %v; want %+v", got, err, want)
	}
	if err := h.deleteSession(); err != nil {
		t.Fatal(err)
	}
	if err := h.deleteSession(); err != nil {
		t.Errorf("deleting a missing session: %v", err)
	}
	if _, err := h.session(); !errors.Is(err, errNotLoggedIn) {
		t.Errorf("session after delete: %v", err)
	}
	os.WriteFile(h.path(sessionFile), []byte("{"), 0o600)
	if _, err := h.session(); err == nil || errors.Is(err, errNotLoggedIn) {
		t.Errorf("damaged session: %v", err)
	}
	entries, _ := os.ReadDir(h.dir)
	for _, e := range entries {
		if e.Name() != sessionFile {
			t.Errorf("stray file %s in home", e.Name())
		}
	}
}

func TestUnread(t *testing.T) {
	h := home{dir: t.TempDir()}
	msg := func(id string, from natter.UserID) unreadEntry {
		return unreadEntry{Message: &wire.Message{ID: natter.MessageID(id), From: from, To: "alice", Body: []byte(id)}}
	}
	if err := h.appendUnread("alice", []unreadEntry{msg("m1", "bob"), msg("m2", "carol")}); err != nil {
		t.Fatal(err)
	}
	if err := h.appendUnread("zed", []unreadEntry{msg("z1", "bob")}); err != nil {
		t.Fatal(err)
	}
	got, commit, err := h.takeUnread("alice")
	if err != nil || len(got) != 2 || got[0].Message.ID != "m1" || got[1].Message.ID != "m2" {
		t.Fatalf("takeUnread = %+v, %v", got, err)
	}
	// Another natter process keeps a message before the first commits.
	if err := h.appendUnread("alice", []unreadEntry{msg("m3", "bob")}); err != nil {
		t.Fatal(err)
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	got, commit, err = h.takeUnread("alice")
	if err != nil || len(got) != 1 || got[0].Message.ID != "m3" {
		t.Fatalf("after commit, takeUnread = %+v, %v; want m3 only", got, err)
	}
	commit()
	got, _, _ = h.takeUnread("zed")
	if len(got) != 1 || got[0].Owner != "zed" {
		t.Errorf("other owner's entries = %+v, want z1", got)
	}
}

func TestInboxGroups(t *testing.T) {
	at := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	m := func(id string, from, to natter.UserID, dev natter.DeviceID, sec int) unreadEntry {
		return unreadEntry{Message: &wire.Message{ID: natter.MessageID(id), From: from, To: to, FromDevice: dev, SentAt: at.Add(time.Duration(sec) * time.Second)}}
	}
	rc := func(from, to natter.UserID, upto uint64, seq uint64) unreadEntry {
		return unreadEntry{Seq: seq, Receipt: &wire.Rcpt{Seq: seq, From: from, To: to, Upto: upto, State: natter.ReceiptRead, At: at}}
	}
	entries := []unreadEntry{
		m("b2", "bob", "alice", "x", 2),
		m("b1", "bob", "alice", "x", 1),
		m("c1", "carol", "alice", "y", 3),
		m("b1", "bob", "alice", "x", 1),     // delivered twice
		m("a1", "alice", "bob", "mine", 4),  // sent from this device
		m("a2", "alice", "bob", "phone", 5), // sent from another device
		rc("bob", "alice", 7, 10),           // bob read alice's messages
		rc("bob", "alice", 7, 11),           // again
		rc("alice", "carol", 3, 12),         // alice's own receipt
	}
	groups := inboxGroups(entries, "alice", "mine")
	var got []string
	for _, g := range groups {
		s := string(g.From) + ":"
		for _, m := range g.Messages {
			s += " " + string(m.ID)
		}
		for range g.Receipts {
			s += " rcpt"
		}
		got = append(got, s)
	}
	want := []string{"bob: b1 b2 rcpt", "carol: c1", "alice: a2"}
	if len(got) != len(want) {
		t.Fatalf("groups = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("group %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestMessageText(t *testing.T) {
	for in, want := range map[string]string{
		"hello":          "hello",
		"two\nlines\tok": "two\nlines\tok",
		"\x1b[2Jboo":     `\x1b[2Jboo`,
		"bell\a":         `bell\x07`,
		"héllo ✓":        "héllo ✓",
	} {
		if got := messageText([]byte(in)); got != want {
			t.Errorf("messageText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMergeReceipt(t *testing.T) {
	d := func(upto uint64) wire.Rcpt { return wire.Rcpt{From: "bob", Upto: upto, State: natter.ReceiptDelivered} }
	rd := func(upto uint64) wire.Rcpt { return wire.Rcpt{From: "bob", Upto: upto, State: natter.ReceiptRead} }
	// Receipts naming messages that went peer to peer (Upto 0) by ID: the
	// later one says more, whatever order they are merged in.
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	byID := func(id natter.MessageID, at time.Time) wire.Rcpt {
		return wire.Rcpt{From: "bob", ID: id, State: natter.ReceiptRead, At: at}
	}
	older, newer := byID("01a", t0), byID("01b", t0.Add(time.Second))
	tests := []struct {
		in   []wire.Rcpt
		want []wire.Rcpt
	}{
		{[]wire.Rcpt{older, newer}, []wire.Rcpt{newer}},
		{[]wire.Rcpt{newer, older}, []wire.Rcpt{newer}},
		{[]wire.Rcpt{d(1), d(3), d(2)}, []wire.Rcpt{d(3)}},
		{[]wire.Rcpt{d(3), rd(2)}, []wire.Rcpt{d(3), rd(2)}},
		{[]wire.Rcpt{d(2), rd(2)}, []wire.Rcpt{rd(2)}},
		{[]wire.Rcpt{rd(4), d(2)}, []wire.Rcpt{rd(4)}},
	}
	for _, tt := range tests {
		var got []wire.Rcpt
		for _, rc := range tt.in {
			got = mergeReceipt(got, rc)
		}
		if len(got) != len(tt.want) {
			t.Errorf("merge %v = %v, want %v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("merge %v = %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}
