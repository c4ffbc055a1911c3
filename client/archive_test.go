package client_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// TestArchive: the server-side history is off by default; once alice turns
// it on, her device archives what it sends and opens, a new device of
// hers gets the key when approved and reads the whole archive (each
// message once), and turning it off deletes it.
func TestArchive(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob := signup(t, inst, "bob", "b1")
	befriend(t, alice, bob)

	st, err := alice.ArchiveStatus(ctx)
	if err != nil || st.On || st.HasKey {
		t.Fatalf("status before: %+v, %v", st, err)
	}
	if _, _, _, err := alice.FetchArchive(ctx, 0, 10); !errors.Is(err, natter.ErrArchiveOff) {
		t.Fatalf("fetch while off: %v", err)
	}
	before, err := alice.Send(ctx, "bob", []byte("sent before the archive"))
	if err != nil {
		t.Fatal(err)
	}

	if err := alice.SetArchive(ctx, true); err != nil {
		t.Fatal(err)
	}
	st, err = alice.ArchiveStatus(ctx)
	if err != nil || !st.On || !st.HasKey || !slices.Equal(st.KeyDevices, []natter.DeviceID{"a1"}) {
		t.Fatalf("status after on: %+v, %v", st, err)
	}
	one, err := alice.Send(ctx, "bob", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	two, err := bob.Send(ctx, "alice", []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := alice.ev.message(two.ID); string(ev.Message.Body) != "two" {
		t.Fatalf("alice got %+v", ev)
	}
	// The message from before goes in too (natter archive on does this
	// from the local history).
	err = alice.Archive(ctx, []client.ArchivedMessage{{Message: wire.Message{ID: before.ID, From: "alice", FromDevice: "a1",
		To: "bob", SentAt: before.SentAt, Body: []byte("sent before the archive")}, Path: client.PathServer}})
	if err != nil {
		t.Fatal(err)
	}

	// A new device: pending until approved, then it reads everything.
	kr, err := seal.New("alice", "a2")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := login(t, inst, "alice", "a2", func(o *client.Options) { o.Keys = kr })
	st, err = a2.ArchiveStatus(ctx)
	if err != nil || !st.On || st.HasKey {
		t.Fatalf("a2 before approval: %+v, %v", st, err)
	}
	if _, _, _, err := a2.FetchArchive(ctx, 0, 10); !errors.Is(err, client.ErrArchiveKeyPending) {
		t.Fatalf("a2 fetch before approval: %v", err)
	}
	if err := alice.ApproveDevice(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
	var got []client.ArchivedMessage
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = nil
		var after int64
		for {
			page, next, more, err := a2.FetchArchive(ctx, after, 2) // small pages: paging is tested too
			if err != nil && !errors.Is(err, client.ErrArchiveKeyPending) {
				t.Fatal(err)
			}
			got, after = append(got, page...), next
			if !more || err != nil {
				break
			}
		}
		if len(got) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	bodies := map[natter.MessageID]string{}
	for _, m := range got {
		if _, dup := bodies[m.Message.ID]; dup {
			t.Errorf("message %s archived twice", m.Message.ID)
		}
		bodies[m.Message.ID] = string(m.Message.Body)
	}
	want := map[natter.MessageID]string{before.ID: "sent before the archive", one.ID: "one", two.ID: "two"}
	if len(bodies) != len(want) {
		t.Fatalf("a2 read %v from the archive, want %v", bodies, want)
	}
	for id, b := range want {
		if bodies[id] != b {
			t.Fatalf("a2 read %v from the archive, want %v", bodies, want)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("records out of order: %d then %d", got[i-1].Seq, got[i].Seq)
		}
	}
	// bob's device cannot read alice's archive: its own is off and the
	// server hands out only the user's own.
	if _, _, _, err := bob.FetchArchive(ctx, 0, 10); !errors.Is(err, natter.ErrArchiveOff) {
		t.Fatalf("bob fetch: %v", err)
	}

	// Off, from a2: everything goes, and a1 stops archiving.
	if err := a2.SetArchive(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := alice.FetchArchive(ctx, 0, 10); !errors.Is(err, natter.ErrArchiveOff) {
		t.Fatalf("fetch after off: %v", err)
	}
	st, err = alice.ArchiveStatus(ctx)
	if err != nil || st.On || st.HasKey {
		t.Fatalf("a1 after off: %+v, %v", st, err)
	}
	// On again: a new, empty archive with a new key for both devices.
	if err := alice.SetArchive(ctx, true); err != nil {
		t.Fatal(err)
	}
	page, _, _, err := a2.FetchArchive(ctx, 0, 10)
	if err != nil || len(page) != 0 {
		t.Fatalf("a2 after off and on: %d records, %v", len(page), err)
	}
	if st, _ := a2.ArchiveStatus(ctx); !st.HasKey {
		t.Fatalf("a2 did not get the new key: %+v", st)
	}
}

// TestArchiveSpoolAfterSlowClose: a record that a Client could not put
// before it closed (the link to natterd went silent, as on a slow or dying
// connection) is kept in Options.ArchiveSpool and put by the next Client
// of the device; without the spool the archive would miss the message.
func TestArchiveSpoolAfterSlowClose(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	m := startMITM(t, inst, nil)
	spool := t.TempDir()
	withSpool := func(o *client.Options) {
		o.ArchiveSpool = spool
		o.ArchiveFlushTimeout = 300 * time.Millisecond
	}
	alice := signup(t, inst, "alice", "a1", through(m), withSpool)
	bob := signup(t, inst, "bob", "b1")
	befriend(t, alice, bob)
	if err := alice.SetArchive(ctx, true); err != nil {
		t.Fatal(err)
	}

	// From now on alice's puts never reach natterd.
	m.setStall(func(f *wire.Frame) bool { return f.Type == wire.TArchivePut })
	res, err := bob.Send(ctx, "alice", []byte("opened on a silent link"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := alice.ev.message(res.ID); string(ev.Message.Body) != "opened on a silent link" {
		t.Fatalf("alice got %+v", ev)
	}
	alice.Close()
	files, err := filepath.Glob(filepath.Join(spool, "*.jsonl"))
	if err != nil || len(files) != 1 {
		t.Fatalf("spool after Close: %v, %v", files, err)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("spool file mode: %v, %v", fi, err)
	}

	// The device's next run puts the record, then empties the spool.
	m.setStall(nil)
	again, _ := login(t, inst, "alice", "a1", withSpool)
	if err := again.FlushArchive(ctx); err != nil {
		t.Fatal(err)
	}
	got, _, _, err := again.FetchArchive(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0].Message.Body) != "opened on a silent link" || got[0].Message.ID != res.ID {
		t.Fatalf("archive holds %+v", got)
	}
	if files, _ := filepath.Glob(filepath.Join(spool, "*.jsonl")); len(files) != 0 {
		t.Fatalf("spool not emptied once put: %v", files)
	}
}
