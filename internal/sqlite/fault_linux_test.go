package sqlite

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/testenv"
)

// These tests make the disk fail for real: a read-only file system and a full
// one. chmod does not stop root, and the tests run as root in CI, so they
// mount a small tmpfs of their own, which needs root (CAP_SYS_ADMIN). Without
// it they skip, and TestReadOnlyFiles covers the read-only case with chmod.

// mountTmpfs mounts a tmpfs of the given size (e.g. "2m") on a new directory
// and unmounts it when the test ends. If it cannot, the test skips, or
// fails in CI (testenv.Unavailable).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "mounting a tmpfs to make the disk fail for real needs root")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		testenv.Unavailable(t, "cannot mount a tmpfs to make the disk fail for real (no CAP_SYS_ADMIN in this sandbox?): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Logf("unmount %s: %v; detaching it", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// remount changes the flags and options of the tmpfs mounted on dir.
func remount(t *testing.T, dir string, flags uintptr, data string) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|flags, data); err != nil {
		t.Fatalf("remount %s (%s): %v", dir, data, err)
	}
}

// seed creates alice and bob and a few messages between them.
func seed(t *testing.T, db *DB) []natter.Appended {
	t.Helper()
	ctx := t.Context()
	for _, u := range []natter.UserID{"alice", "bob"} {
		if err := db.CreateUser(ctx, u, "hash", time.Now()); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
	}
	var sent []natter.Appended
	for i := range 3 {
		a, err := db.AppendMessage(ctx, natter.Message{
			ID: natter.MessageID(fmt.Sprintf("seed-%d", i)), From: "alice", To: "bob", Body: []byte{byte(i), 0, 0xff},
		})
		if err != nil {
			t.Fatalf("AppendMessage: %v", err)
		}
		sent = append(sent, a)
	}
	return sent
}

// checkReadOnly checks what a store on a read-only database does: either Open
// fails, or it opens for reading and every write fails; either way with an
// error wrapping natter.ErrStoreUnavailable that says why.
func checkReadOnly(t *testing.T, path string, seeded []natter.Appended) {
	t.Helper()
	ctx := t.Context()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		if !errors.Is(err, natter.ErrStoreUnavailable) {
			t.Fatalf("Open of a read-only database: %v, want an error wrapping ErrStoreUnavailable", err)
		}
		if !saysReadOnly(err) {
			t.Errorf("Open of a read-only database: %q does not say why", err)
		}
		t.Logf("Open of a read-only database fails: %v", err)
		return
	}
	defer db.Close()
	msgs, err := db.Conversation(ctx, "alice", "bob", 0, 10)
	if err != nil || len(msgs) != len(seeded) {
		t.Errorf("reading a read-only database: %d messages, %v; want %d", len(msgs), err, len(seeded))
	}
	writes := map[string]func() error{
		"CreateUser": func() error { return db.CreateUser(ctx, "carol", "h", time.Now()) },
		"AppendMessage": func() error {
			_, err := db.AppendMessage(ctx, natter.Message{ID: "ro", From: "alice", To: "bob", Body: []byte("x")})
			return err
		},
		"SetLastSeen": func() error { return db.SetLastSeen(ctx, "alice", time.Now()) },
	}
	for name, write := range writes {
		err := write()
		if !errors.Is(err, natter.ErrStoreUnavailable) {
			t.Errorf("%s on a read-only database: %v, want an error wrapping ErrStoreUnavailable", name, err)
			continue
		}
		if !saysReadOnly(err) {
			t.Errorf("%s on a read-only database: %q does not say why", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}

func saysReadOnly(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "readonly") || strings.Contains(msg, "read-only") || strings.Contains(msg, "permission denied")
}

// TestReadOnlyFS opens a store on a file system that has become read-only.
// (A file system cannot be remounted read-only while the store holds its
// files open for writing, so the store is closed first.)
func TestReadOnlyFS(t *testing.T) {
	dir := mountTmpfs(t, "2m")
	path := filepath.Join(dir, "natter.db")
	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seeded := seed(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	remount(t, dir, syscall.MS_RDONLY, "")
	checkReadOnly(t, path, seeded)
}

// TestReadOnlyFiles is TestReadOnlyFS with chmod, for when the tests do not
// run as root (root ignores the file modes).
func TestReadOnlyFiles(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("skipping: root writes to read-only files anyway; TestReadOnlyFS covers this with a read-only mount")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "natter.db")
	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seeded := seed(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(path + "*")
	for _, f := range append(files, dir) {
		mode := os.FileMode(0o444)
		if f == dir {
			mode = 0o555
		}
		if err := os.Chmod(f, mode); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) }) // so that TempDir can remove it
	checkReadOnly(t, path, seeded)
}

// TestDiskFull fills a 2 MiB file system with messages from several
// goroutines until writes fail. Every failure must wrap
// ErrStoreUnavailable; nothing may panic; every acknowledged message must be
// readable, then and after a reopen; and once there is room again the same
// store must take writes without a restart.
func TestDiskFull(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"group", Options{}},
		{"single", Options{NoGroupCommit: true}},
	} {
		t.Run(tt.name, func(t *testing.T) { testDiskFull(t, tt.opts) })
	}
}

func testDiskFull(t *testing.T, opts Options) {
	ctx := t.Context()
	dir := mountTmpfs(t, "2m")
	path := filepath.Join(dir, "natter.db")
	db, err := Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	seed(t, db)

	const (
		writers  = 8
		bodySize = 6 << 10
	)
	var (
		mu    sync.Mutex
		acked = map[natter.MessageID][]byte{}
		fails []error
		wg    sync.WaitGroup
	)
	for g := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			// Go on a little after the first failure: the disk stays full.
			failures := 0
			for i := 0; i < 2000 && failures < 3; i++ {
				body := make([]byte, bodySize)
				for j := range body {
					body[j] = byte(rng.Uint32())
				}
				id := natter.MessageID(fmt.Sprintf("fill-%d-%d", g, i))
				_, err := db.AppendMessage(ctx, natter.Message{ID: id, From: "alice", To: "bob", Body: body})
				mu.Lock()
				if err != nil {
					failures++
					fails = append(fails, err)
				} else {
					acked[id] = body
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(fails) == 0 {
		t.Fatalf("%d messages of %d bytes fit on a 2 MiB file system: it never filled up", len(acked), bodySize)
	}
	for _, err := range fails {
		if !errors.Is(err, natter.ErrStoreUnavailable) {
			t.Fatalf("write to a full disk: %v, want an error wrapping ErrStoreUnavailable", err)
		}
	}
	t.Logf("%d messages acknowledged before the disk filled; %d writes failed, e.g.: %v", len(acked), len(fails), fails[0])

	checkAcked := func(t *testing.T, db *DB, extra int) {
		t.Helper()
		msgs, err := db.Conversation(ctx, "alice", "bob", 0, 100000)
		if err != nil {
			t.Fatalf("Conversation: %v", err)
		}
		found := 0
		for i, m := range msgs {
			if m.ConvSeq != uint64(i+1) {
				t.Fatalf("conversation has a gap: position %d holds ConvSeq %d", i+1, m.ConvSeq)
			}
			if body, ok := acked[m.ID]; ok {
				found++
				if !bytes.Equal(m.Body, body) {
					t.Fatalf("message %s: body differs from the one acknowledged", m.ID)
				}
			}
		}
		if found != len(acked) {
			t.Fatalf("%d of %d acknowledged messages are readable", found, len(acked))
		}
		if want := 3 + len(acked) + extra; len(msgs) != want {
			t.Fatalf("conversation holds %d messages, want %d (3 seeded, %d acknowledged, %d after)", len(msgs), want, len(acked), extra)
		}
	}
	checkAcked(t, db, 0)

	// Room again: the same store takes writes without a restart.
	remount(t, dir, 0, "size=16m")
	if _, err := db.AppendMessage(ctx, natter.Message{ID: "after", From: "bob", To: "alice", Body: []byte("room again")}); err != nil {
		t.Fatalf("AppendMessage once there is room again: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	db, err = Open(ctx, path, opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	checkAcked(t, db, 1)
}
