package sqlite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/leaktest"
	"github.com/natterim/natter/internal/storetest"
	"github.com/natterim/natter/internal/testenv"
)

// openTemp opens a store on a new file in t.TempDir() and checks, when the
// test ends, that it was closed and its writer goroutine is gone. The caller
// (or storetest.Run) closes it.
func openTemp(t *testing.T, opts Options) *DB {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "natter.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Cleanups run last-in first-out: this one after the test's Close.
	t.Cleanup(func() {
		select {
		case <-db.w.done:
		default:
			t.Errorf("store left open: its writer goroutine is still running")
		}
	})
	return db
}

// TestMain says which tests skipped for want of setup (the real-disk
// tests without root: testenv.Main), and fails the run if, once every test
// has passed, a goroutine is still running this package's code: a store
// that was never closed, or a Close that returned before its writer
// stopped.
func TestMain(m *testing.M) {
	code := testenv.Main(m)
	if code == 0 {
		if leaked := leaktest.Leaked(5*time.Second, "natter/internal/sqlite.(*writer)"); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines still running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func TestStore(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"group", Options{}},
		{"single", Options{NoGroupCommit: true}},
		{"batch2", Options{MaxBatch: 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) natter.Store { return openTemp(t, tt.opts) })
		})
	}
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := db.CreateUser(ctx, "alice", "hash-a", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, "bob", "hash-b", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.UpdateContact(ctx, "alice", "bob", natter.OpAdd); err != nil {
		t.Fatal(err)
	}
	a, err := db.AppendMessage(ctx, natter.Message{ID: "m1", From: "alice", To: "bob", Body: []byte{0, 1, 0xff}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := db.PasswordHash(ctx, "alice"); !errors.Is(err, natter.ErrClosed) {
		t.Errorf("read after Close: %v, want ErrClosed", err)
	}
	if err := db.SetLastSeen(ctx, "alice", time.Now()); !errors.Is(err, natter.ErrClosed) {
		t.Errorf("write after Close: %v, want ErrClosed", err)
	}

	db, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if h, err := db.PasswordHash(ctx, "bob"); err != nil || h != "hash-b" {
		t.Errorf("PasswordHash(bob) after reopen = %q, %v", h, err)
	}
	if st, err := db.ContactState(ctx, "bob", "alice"); err != nil || st != natter.ContactPendingIn {
		t.Errorf("ContactState after reopen = %q, %v", st, err)
	}
	dup, err := db.AppendMessage(ctx, natter.Message{ID: "m1", From: "alice", To: "bob", Body: []byte("retry")})
	if err != nil || !dup.Duplicate || string(dup.Message.Body) != "\x00\x01\xff" || dup.ToSeq != a.ToSeq {
		t.Errorf("retry after reopen = %+v, %v; want the first copy", dup, err)
	}
	next, err := db.AppendMessage(ctx, natter.Message{ID: "m2", From: "bob", To: "alice", Body: []byte("hi")})
	if err != nil || next.Message.ConvSeq != 2 || next.ToSeq != 2 || next.FromSeq != 2 {
		t.Errorf("next message after reopen = %+v, %v; want ConvSeq 2 and inbox seqs 2", next, err)
	}
}

// TestMigrations checks that the embedded migrations are numbered without
// gaps, and that opening a database written by a newer natter fails clearly.
func TestMigrations(t *testing.T) {
	files, err := migrationList()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no migrations embedded")
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "natter.db")
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var version int
	if err := db.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != len(files) {
		t.Errorf("user_version = %d, want %d", version, len(files))
	}
	for _, pragma := range []struct{ name, want string }{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
	} {
		var got string
		if err := db.rdb.QueryRowContext(ctx, "PRAGMA "+pragma.name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != pragma.want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma.name, got, pragma.want)
		}
	}
	err = db.write(ctx, "bump schema version", func(ctx context.Context, w *writer) error {
		return w.exec1(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(files)+1))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(ctx, path, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer database: %v, want an error saying it is newer", err)
	}
}

// TestCancelledWrite checks that a write whose context has ended before the
// writer took it returns the context's error and writes nothing.
func TestCancelledWrite(t *testing.T) {
	db := openTemp(t, Options{})
	defer db.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := db.CreateUser(ctx, "alice", "hash", time.Now())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateUser with a cancelled context: %v, want context.Canceled", err)
	}
	if ok, err := db.UserExists(t.Context(), "alice"); err != nil || ok {
		t.Errorf("UserExists after a cancelled CreateUser = %v, %v; want false", ok, err)
	}
}

// TestWithdrawQueued checks that a request withdrawn while queued is skipped
// by the writer, and one taken into a batch completes although its caller
// gave up.
func TestWithdrawQueued(t *testing.T) {
	db := openTemp(t, Options{})
	defer db.Close()
	ctx := t.Context()

	// Hold the writer inside a batch, so that the next request stays queued.
	inBatch, release := make(chan struct{}), make(chan struct{})
	go db.write(ctx, "hold the writer", func(ctx context.Context, w *writer) error {
		close(inBatch)
		<-release
		return nil
	})
	<-inBatch
	qctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- db.CreateUser(qctx, "queued", "hash", time.Now()) }()
	for len(db.w.reqs) == 0 { // wait until it is queued
		runtime.Gosched()
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("withdrawn CreateUser: %v, want context.Canceled", err)
	}
	close(release)
	if err := db.CreateUser(ctx, "after", "hash", time.Now()); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.UserExists(ctx, "queued"); ok {
		t.Errorf("a withdrawn write was stored")
	}

	// Now a caller that gives up after its request entered a batch: the
	// write completes and the caller is told so.
	inBatch, release = make(chan struct{}), make(chan struct{})
	bctx, cancel := context.WithCancel(ctx)
	go func() {
		errc <- db.write(bctx, "slow write", func(ctx context.Context, w *writer) error {
			close(inBatch)
			<-release
			return w.exec1(ctx, `INSERT INTO users (name, password_hash) VALUES ('slow', 'h')`)
		})
	}()
	<-inBatch
	cancel()
	time.Sleep(10 * time.Millisecond)
	close(release)
	if err := <-errc; err != nil {
		t.Errorf("write cancelled inside its batch: %v, want nil (it completed)", err)
	}
	if ok, _ := db.UserExists(ctx, "slow"); !ok {
		t.Errorf("write cancelled inside its batch was not stored")
	}
}

// TestBatchIsolation runs failing and succeeding writes in one batch: the
// failures must not undo or fail the others.
func TestBatchIsolation(t *testing.T) {
	db := openTemp(t, Options{})
	defer db.Close()
	ctx := t.Context()
	if err := db.CreateUser(ctx, "alice", "h", time.Now()); err != nil {
		t.Fatal(err)
	}

	// Hold the writer so that everything below queues up into one batch.
	inBatch, release := make(chan struct{}), make(chan struct{})
	go db.write(ctx, "hold the writer", func(ctx context.Context, w *writer) error {
		close(inBatch)
		<-release
		return nil
	})
	<-inBatch
	type result struct {
		name string
		err  error
	}
	results := make(chan result)
	run := func(name string, fn func() error) {
		go func() { results <- result{name, fn()} }()
	}
	run("create bob", func() error { return db.CreateUser(ctx, "bob", "h", time.Now()) })
	run("create alice again", func() error { return db.CreateUser(ctx, "alice", "h2", time.Now()) })
	run("constraint violation", func() error {
		return db.write(ctx, "violate", func(ctx context.Context, w *writer) error {
			// Half a write, then a constraint violation: the savepoint
			// must undo the first half.
			if err := w.exec1(ctx, `INSERT INTO users (name, password_hash) VALUES ('half', 'h')`); err != nil {
				return err
			}
			return w.exec1(ctx, `INSERT INTO users (name, password_hash) VALUES ('alice', 'h')`)
		})
	})
	run("create carol", func() error { return db.CreateUser(ctx, "carol", "h", time.Now()) })
	run("panic", func() error {
		return db.write(ctx, "panic", func(ctx context.Context, w *writer) error {
			if err := w.exec1(ctx, `INSERT INTO users (name, password_hash) VALUES ('panicky', 'h')`); err != nil {
				return err
			}
			panic("a bug")
		})
	})
	run("create dave", func() error { return db.CreateUser(ctx, "dave", "h", time.Now()) })
	for len(db.w.reqs) < 6 {
		runtime.Gosched()
	}
	close(release)
	for range 6 {
		r := <-results
		switch r.name {
		case "create alice again":
			if !errors.Is(r.err, natter.ErrUserExists) {
				t.Errorf("%s: %v, want ErrUserExists", r.name, r.err)
			}
		case "panic":
			if !errors.Is(r.err, errPanicked) {
				t.Errorf("%s: %v, want errPanicked", r.name, r.err)
			}
		case "constraint violation":
			if r.err == nil || !strings.Contains(r.err.Error(), "UNIQUE") {
				t.Errorf("%s: %v, want a UNIQUE constraint error", r.name, r.err)
			}
		default:
			if r.err != nil {
				t.Errorf("%s: %v", r.name, r.err)
			}
		}
	}
	for user, want := range map[natter.UserID]bool{
		"alice": true, "bob": true, "carol": true, "dave": true, "half": false, "panicky": false,
	} {
		if ok, err := db.UserExists(ctx, user); err != nil || ok != want {
			t.Errorf("UserExists(%s) = %v, %v; want %v", user, ok, err, want)
		}
	}
	if h, _ := db.PasswordHash(ctx, "alice"); h != "h" {
		t.Errorf("alice's hash = %q, want the first", h)
	}
}

// TestOpenErrors checks that a path SQLite cannot open yields
// ErrStoreUnavailable, not a panic or a bare driver error.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, path  string
		unavailable bool
	}{
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "natter.db"), true},
		{"a directory", dir, true},
		{"in-memory", ":memory:", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(t.Context(), tt.path, Options{})
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded", tt.path)
			}
			if errors.Is(err, natter.ErrStoreUnavailable) != tt.unavailable {
				t.Errorf("Open(%q): %v; wraps ErrStoreUnavailable: %v, want %v", tt.path, err, !tt.unavailable, tt.unavailable)
			}
		})
	}
}

// TestOddPath checks that characters with a meaning in URIs survive in the
// file name.
func TestOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a ?b#c%20d&e=f.db")
	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(t.Context(), "alice", "h", time.Now()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*"))
	found := false
	for _, m := range matches {
		found = found || m == path
	}
	if !found {
		t.Errorf("database not at %q; directory holds %q", path, matches)
	}
}

// TestCrashDurability kills a process that is appending messages with
// SIGKILL and checks that every message it had acknowledged is in the
// database afterwards: a write returns only after its commit.
//
// The test binary runs itself as the child (crashChildEnv names the database
// file); the child prints the ID of each acknowledged message, unbuffered.
func TestCrashDurability(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "natter.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[natter.MessageID]bool{}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		id, ok := strings.CutPrefix(line, "acked ")
		if !ok {
			continue
		}
		acked[natter.MessageID(id)] = true
		if len(acked) == 500 && !killed {
			cmd.Process.Kill() // SIGKILL on Unix
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("the child exited after %d acknowledgements, before it could be killed", len(acked))
	}

	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatalf("open after the crash: %v", err)
	}
	defer db.Close()
	stored := map[natter.MessageID]bool{}
	for _, pair := range [][2]natter.UserID{{"alice", "bob"}, {"bob", "carol"}, {"carol", "alice"}} {
		msgs, err := db.Conversation(t.Context(), pair[0], pair[1], 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range msgs {
			if m.ConvSeq != uint64(i+1) {
				t.Fatalf("conversation %v has a gap at %d", pair, i+1)
			}
			stored[m.ID] = true
		}
	}
	lost := 0
	for id := range acked {
		if !stored[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged messages lost in the crash", lost, len(acked))
	}
	t.Logf("%d messages acknowledged before SIGKILL, all stored (%d stored in all)", len(acked), len(stored))
}

const crashChildEnv = "NATTER_SQLITE_CRASH_CHILD"

// crashChild appends messages from 16 goroutines forever, printing each
// acknowledged ID, until it is killed.
func crashChild(path string) {
	ctx := context.Background()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	users := []natter.UserID{"alice", "bob", "carol"}
	for _, u := range users {
		if err := db.CreateUser(ctx, u, "hash", time.Now()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	var mu sync.Mutex
	for g := range 16 {
		go func() {
			from, to := users[g%3], users[(g+1)%3]
			for i := 0; ; i++ {
				id := natter.MessageID(fmt.Sprintf("g%d-%d", g, i))
				if _, err := db.AppendMessage(ctx, natter.Message{ID: id, From: from, To: to, Body: []byte("x")}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "acked %s\n", id) // os.Stdout is unbuffered
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestAppendCopyRefusals covers what this store refuses beyond the Store
// contract (which storetest checks): a copy naming a peer who has not signed
// up (natter.ErrNoSuchUser, as AppendMessage does), and a copy of a message
// to oneself (natter.ErrSelf, as AppendMessage does). Neither stores anything
// or uses up a sequence number.
func TestAppendCopyRefusals(t *testing.T) {
	db := openTemp(t, Options{})
	defer db.Close()
	ctx := t.Context()
	if err := db.CreateUser(ctx, "alice", "h", time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		owner natter.UserID
		m     natter.Message
		want  error
	}{
		{"unknown recipient", "alice", natter.Message{ID: "x1", From: "alice", To: "nobody"}, natter.ErrNoSuchUser},
		{"unknown sender", "alice", natter.Message{ID: "x2", From: "nobody", To: "alice"}, natter.ErrNoSuchUser},
		{"self", "alice", natter.Message{ID: "x3", From: "alice", To: "alice"}, natter.ErrSelf},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := db.AppendCopy(ctx, tt.owner, tt.m); !errors.Is(err, tt.want) {
				t.Errorf("AppendCopy: %v, want %v", err, tt.want)
			}
		})
	}
	if e, err := db.Inbox(ctx, "alice", 0, 10); err != nil || len(e) != 0 {
		t.Errorf("Inbox(alice) = %v, %v; want empty", e, err)
	}
	if err := db.CreateUser(ctx, "bob", "h", time.Now()); err != nil {
		t.Fatal(err)
	}
	seq, dup, err := db.AppendCopy(ctx, "alice", natter.Message{ID: "x1", From: "alice", To: "bob"})
	if err != nil || dup || seq != 1 {
		t.Errorf("AppendCopy once bob exists = %d, %v, %v; want 1, false, nil", seq, dup, err)
	}
}

// TestCopyRepeatsInOneBatch queues a copy, its repeat and a message with the
// same ID into one batch: the repeat sees the copy written earlier in the
// same transaction, and the message is not taken for either.
func TestCopyRepeatsInOneBatch(t *testing.T) {
	db := openTemp(t, Options{})
	defer db.Close()
	ctx := t.Context()
	for _, u := range []natter.UserID{"alice", "bob"} {
		if err := db.CreateUser(ctx, u, "h", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	inBatch, release := make(chan struct{}), make(chan struct{})
	go db.write(ctx, "hold the writer", func(ctx context.Context, w *writer) error {
		close(inBatch)
		<-release
		return nil
	})
	<-inBatch
	m := natter.Message{ID: "m", From: "alice", To: "bob", Body: []byte("x")}
	type copyResult struct {
		seq uint64
		dup bool
		err error
	}
	copies := make(chan copyResult, 2)
	appended := make(chan error, 1)
	for i := range 3 {
		if i == 1 {
			go func() { _, err := db.AppendMessage(ctx, m); appended <- err }()
		} else {
			go func() { seq, dup, err := db.AppendCopy(ctx, "alice", m); copies <- copyResult{seq, dup, err} }()
		}
		for len(db.w.reqs) < i+1 {
			runtime.Gosched()
		}
	}
	close(release)
	if err := <-appended; err != nil {
		t.Fatalf("AppendMessage: %v", err)
	}
	a, b := <-copies, <-copies
	if a.err != nil || b.err != nil || a.dup == b.dup || a.seq != b.seq || a.seq != 1 {
		t.Errorf("copy and repeat in one batch = %+v, %+v; want seq 1 both, one dup", a, b)
	}
	// Two CreateUsers, the hold, then the three queued writes together.
	if n := db.w.commits.Load(); n != 4 {
		t.Errorf("%d commits, want 4: the three writes did not share one batch", n)
	}
	entries, err := db.Inbox(ctx, "alice", 0, 10)
	if err != nil || len(entries) != 2 || !entries[0].Copy || entries[1].Copy {
		t.Errorf("Inbox(alice) = %+v, %v; want the copy at 1, the message at 2", entries, err)
	}
}

// TestPageSize checks that a new database gets PageSize pages and an
// existing one keeps its own.
func TestPageSize(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "new.db")
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var size int
	if err := db.rdb.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil {
		t.Fatal(err)
	}
	if size != PageSize {
		t.Errorf("new database: page_size = %d, want %d", size, PageSize)
	}
	db.Close()

	old := filepath.Join(t.TempDir(), "old.db")
	openVersion(t, old, 1, "")
	db, err = Open(ctx, old, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.rdb.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil {
		t.Fatal(err)
	}
	if size != 4096 {
		t.Errorf("existing database: page_size = %d, want 4096 (unchanged)", size)
	}
}
