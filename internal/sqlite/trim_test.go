package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// TestTrimCrash kills, with SIGKILL, a process that appends messages, moves
// device cursors and trims inboxes all at once, and checks that the trims
// lost nothing that some device had not acknowledged: after the restart,
// each user's inbox holds every entry above the lowest cursor of the user's
// devices, without a gap, each acknowledged message among them with its
// body; and sequence numbers go on above every one handed out before.
//
// The test binary runs itself as the child (trimChildEnv names the database
// file), as TestCrashDurability does.
func TestTrimCrash(t *testing.T) {
	if path := os.Getenv(trimChildEnv); path != "" {
		trimChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "natter.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestTrimCrash$")
	cmd.Env = append(os.Environ(), trimChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		user natter.UserID
		seq  uint64
	}
	sent := map[entry]natter.MessageID{} // acknowledged appends' entries
	maxSeq := map[natter.UserID]uint64{}
	trimmed, killed := 0, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 6 && f[0] == "sent":
			to, from := natter.UserID(f[2]), natter.UserID(f[4])
			ts, _ := strconv.ParseUint(f[3], 10, 64)
			fs, _ := strconv.ParseUint(f[5], 10, 64)
			sent[entry{to, ts}] = natter.MessageID(f[1])
			sent[entry{from, fs}] = natter.MessageID(f[1])
			maxSeq[to], maxSeq[from] = max(maxSeq[to], ts), max(maxSeq[from], fs)
		case len(f) == 2 && f[0] == "trimmed":
			n, _ := strconv.Atoi(f[1])
			trimmed += n
		}
		if trimmed >= 600 && !killed {
			cmd.Process.Kill() // SIGKILL on Unix
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("the child exited after %d trimmed entries, before it could be killed", trimmed)
	}

	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatalf("open after the crash: %v", err)
	}
	defer db.Close()
	ctx := t.Context()
	kept := 0
	for _, u := range trimUsers {
		low := uint64(1 << 62)
		for _, d := range trimDevices {
			c, err := db.TouchDevice(ctx, u, d, time.Now(), 0)
			if err != nil {
				t.Fatal(err)
			}
			low = min(low, c)
		}
		es, err := db.Inbox(ctx, u, 0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		// Entries at or below low may or may not have been trimmed; every
		// one above it must be there, in order, without a gap.
		next := low + 1
		for _, e := range es {
			if e.Seq <= low {
				continue
			}
			if e.Seq != next {
				t.Fatalf("%s's inbox above its devices' lowest cursor %d: entry %d, want %d (lost in the crash)", u, low, e.Seq, next)
			}
			next++
			if id, ok := sent[entry{u, e.Seq}]; ok {
				if e.Message == nil || e.Message.ID != id || string(e.Message.Body) != "x" {
					t.Fatalf("%s's entry %d = %+v, want acknowledged message %s with its body", u, e.Seq, e.Message, id)
				}
				kept++
			}
		}
		for ent := range sent {
			if ent.user == u && ent.seq > low && ent.seq >= next {
				t.Fatalf("%s's acknowledged entry %d (above the lowest cursor %d) is missing", u, ent.seq, low)
			}
		}
	}
	// Numbers go on above everything handed out before the crash, trimmed
	// or not.
	a, err := db.AppendMessage(ctx, natter.Message{ID: "after", From: "alice", To: "bob", Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if a.ToSeq <= maxSeq["bob"] || a.FromSeq <= maxSeq["alice"] {
		t.Fatalf("after the crash: seqs %d/%d, want above %d/%d", a.ToSeq, a.FromSeq, maxSeq["bob"], maxSeq["alice"])
	}
	t.Logf("%d entries trimmed before SIGKILL; afterwards every entry above the lowest cursors is there (%d acknowledged ones checked)", trimmed, kept)
}

const trimChildEnv = "NATTER_SQLITE_TRIM_CHILD"

var (
	trimUsers   = []natter.UserID{"alice", "bob", "carol"}
	trimDevices = []natter.DeviceID{"fast", "slow"}
)

// trimChild appends messages from 6 goroutines, acknowledges them from each
// user's two devices (one keeps up, the other lags behind) and trims in a
// loop, printing each acknowledged append and each trim, until it is killed.
func trimChild(path string) {
	ctx := context.Background()
	die := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	db, err := Open(ctx, path, Options{})
	if err != nil {
		die(err)
	}
	for _, u := range trimUsers {
		if err := db.CreateUser(ctx, u, "hash", time.Now()); err != nil {
			die(err)
		}
		for _, d := range trimDevices {
			if _, err := db.TouchDevice(ctx, u, d, time.Now(), 0); err != nil {
				die(err)
			}
		}
	}
	var mu sync.Mutex
	high := map[natter.UserID]uint64{} // the highest seq acknowledged to the appender, per user
	for g := range 6 {
		go func() {
			from, to := trimUsers[g%3], trimUsers[(g+1)%3]
			for i := 0; ; i++ {
				id := natter.MessageID(fmt.Sprintf("g%d-%d", g, i))
				a, err := db.AppendMessage(ctx, natter.Message{ID: id, From: from, To: to, Body: []byte("x"), SentAt: time.Now()})
				if err != nil {
					die(err)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "sent %s %s %d %s %d\n", id, to, a.ToSeq, from, a.FromSeq)
				high[to], high[from] = max(high[to], a.ToSeq), max(high[from], a.FromSeq)
				mu.Unlock()
			}
		}()
	}
	go func() { // the devices: "fast" acknowledges all it could have, "slow" half of it
		for {
			for _, u := range trimUsers {
				mu.Lock()
				h := high[u]
				mu.Unlock()
				if err := db.AckInbox(ctx, u, "fast", h); err != nil {
					die(err)
				}
				if err := db.AckInbox(ctx, u, "slow", h/2); err != nil {
					die(err)
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	go func() {
		for from := natter.UserID(""); ; {
			r, err := db.TrimInbox(ctx, from, time.Time{}, 16)
			if err != nil {
				die(err)
			}
			mu.Lock()
			fmt.Fprintf(os.Stdout, "trimmed %d\n", r.Acked)
			mu.Unlock()
			from = r.Next
			if r.Done {
				from = ""
			}
		}
	}()
	select {}
}
