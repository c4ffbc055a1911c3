package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natterim/natter/internal/testenv"
)

// The terminal UI end to end: real natter processes in real terminals
// (tmux), against a real natterd, read back with capture-pane as a person
// would see them, colours included.

// startNatterd starts natterd (this test binary, see TestMain) with its
// data in dir and returns its TLS address. It is stopped with SIGTERM at
// the end of the test and must exit cleanly.
func startNatterd(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command("natterd", "--data", dir, "--listen", "127.0.0.1:0",
		"--http", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--udp", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	logDone := make(chan []string)
	go func() {
		var lines []string
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				addrc <- m[1]
				sent = true
			}
		}
		logDone <- lines
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		lines := <-logDone
		err := cmd.Wait()
		log := strings.Join(lines, "\n")
		if err != nil || raceRE.MatchString(log) || strings.Contains(log, "level=ERROR") {
			t.Errorf("natterd: %v; log:\n%s", err, log)
		}
	})
	select {
	case addr := <-addrc:
		return addr
	case <-time.After(20 * time.Second):
		t.Fatal("natterd did not listen within 20s")
		return ""
	}
}

// natterCmd runs a natter command with home and returns its output.
func natterCmd(t *testing.T, server, home string, args ...string) string {
	t.Helper()
	cmd := exec.Command("natter", args...)
	cmd.Env = append(os.Environ(), "NATTER_SERVER="+server, "NATTER_HOME="+home, "NATTER_PASSWORD=secret-pw")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("natter %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// term is a natter running in a tmux session of its own.
type term struct {
	t    *testing.T
	name string
	sock string
}

// openTUI starts natter (no command: the terminal UI) in a new tmux
// session of 100×30.
func openTUI(t *testing.T, sock, name, server, home string) *term {
	t.Helper()
	bin, err := exec.LookPath("natter")
	if err != nil {
		t.Fatal(err)
	}
	shell := fmt.Sprintf("NATTER_SERVER=%s NATTER_HOME=%s NATTER_BELL=off TERM=xterm-256color exec %s", server, home, bin)
	tm := &term{t: t, name: name, sock: sock}
	tm.tmux("new-session", "-d", "-s", name, "-x", "100", "-y", "30", shell)
	tm.tmux("set-option", "-t", name, "remain-on-exit", "on")
	return tm
}

func (tm *term) tmux(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", tm.sock}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// keys types keys (tmux key names, or literal text with -l).
func (tm *term) keys(keys ...string) {
	tm.tmux(append([]string{"send-keys", "-t", tm.name}, keys...)...)
}

// text types s literally.
func (tm *term) text(s string) { tm.tmux("send-keys", "-t", tm.name, "-l", s) }

// screen returns what the terminal shows, with colour codes.
func (tm *term) screen() string { return tm.tmux("capture-pane", "-p", "-e", "-t", tm.name) }

// sgr matches colour and attribute codes.
var sgr = regexp.MustCompile(`\x1b\[[0-9;:]*m`)

// plain returns the screen without colour codes.
func plain(s string) string { return sgr.ReplaceAllString(s, "") }

// waitFor polls the screen until ok says yes, and fails after 20s with
// the last screen.
func (tm *term) waitFor(what string, ok func(screen string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := tm.screen()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("%s: never saw %s; screen:\n%s", tm.name, what, plain(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// line returns the first screen line (with codes) whose text contains s.
func line(screen, s string) string {
	for l := range strings.SplitSeq(screen, "\n") {
		if strings.Contains(plain(l), s) {
			return l
		}
	}
	return ""
}

// rightPane returns the screen right of the contact list.
func rightPane(screen string) string {
	var b strings.Builder
	for l := range strings.SplitSeq(screen, "\n") {
		if _, right, ok := strings.Cut(l, "│"); ok {
			b.WriteString(right)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Presence colours as the UI draws a contact's name: online green, offline
// grey (bright black).
const (
	green = "\x1b[32m"
	grey  = "\x1b[90m"
)

// contactLine is the contact list's row of name (the left pane).
func contactLine(screen, marker, name string) string {
	for l := range strings.SplitSeq(screen, "\n") {
		left, _, _ := strings.Cut(l, "│")
		if strings.HasPrefix(strings.TrimSpace(plain(left)), marker+" "+name) {
			return left
		}
	}
	return ""
}

// TestTUI drives two terminal UIs: offline messages grouped by sender at
// login, presence colours that follow logins and quits, "is typing", a
// message typed in one appearing in the other's conversation, and its read
// mark coming back (over the direct path the two UIs open).
func TestTUI(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		testenv.Unavailable(t, "the terminal UI's end-to-end test needs tmux (apt-get install tmux)")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "tmux.sock")
	t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
	server := startNatterd(t, filepath.Join(dir, "natterd"))
	home := func(u string) string { return filepath.Join(dir, u) }
	for _, u := range []string{"alice", "bob", "carol"} {
		natterCmd(t, server, home(u), "signup", u)
	}
	natterCmd(t, server, home("alice"), "add", "bob")
	natterCmd(t, server, home("bob"), "accept", "alice")
	natterCmd(t, server, home("carol"), "add", "alice")
	natterCmd(t, server, home("alice"), "accept", "carol")
	natterCmd(t, server, home("carol"), "send", "alice", "first from carol")
	natterCmd(t, server, home("bob"), "send", "alice", "bob was here")
	natterCmd(t, server, home("carol"), "send", "alice", "second from carol")

	// bob opens the UI: alice is offline, in grey, in the offline section.
	bob := openTUI(t, sock, "bob", server, home("bob"))
	s := bob.waitFor("alice offline", func(s string) bool { return contactLine(s, "○", "alice") != "" })
	if l := contactLine(s, "○", "alice"); !strings.Contains(l, grey) {
		t.Errorf("offline alice not in grey: %q", l)
	}
	if !strings.Contains(plain(s), "── offline ─") {
		t.Errorf("no offline section:\n%s", plain(s))
	}

	// alice opens hers: what came while she was away, grouped by sender,
	// each sender once, their messages in order under the name.
	alice := openTUI(t, sock, "alice", server, home("alice"))
	s = rightPane(plain(alice.waitFor("the offline messages", func(s string) bool {
		return strings.Contains(plain(s), "second from carol") && strings.Contains(plain(s), "bob was here")
	})))
	carolAt, first, second, bobAt := strings.Index(s, "carol (2)"), strings.Index(s, "first from carol"), strings.Index(s, "second from carol"), strings.Index(s, "bob (1)")
	if carolAt < 0 || bobAt < 0 || !(carolAt < first && first < second && second < bobAt) || strings.Count(s, "carol (2)") != 1 {
		t.Errorf("offline messages not grouped by sender in order:\n%s", s)
	}

	// bob sees alice come online, in green.
	s = bob.waitFor("alice online", func(s string) bool { return contactLine(s, "●", "alice") != "" })
	if l := contactLine(s, "●", "alice"); !strings.Contains(l, green) {
		t.Errorf("online alice not in green: %q", l)
	}

	// bob opens the conversation with alice (the first contact is
	// selected); alice opens hers with bob and types.
	bob.keys("Enter")
	bob.waitFor("the conversation header", func(s string) bool { return strings.Contains(line(s, "alice"), "path:") })
	// (A key typed right after Escape would read as Alt and that key.)
	alice.keys("Escape")
	alice.waitFor("the inbox closed", func(s string) bool { return strings.Contains(plain(s), "Welcome to natter, alice") })
	alice.keys("Enter")
	alice.waitFor("the conversation with bob", func(s string) bool { return strings.Contains(line(s, "bob"), "path:") })
	alice.text("hello from alice's terminal")
	bob.waitFor("alice typing", func(s string) bool { return strings.Contains(plain(s), "alice is typing") })
	sent := time.Now()
	alice.keys("Enter")
	bob.waitFor("alice's message", func(s string) bool { return strings.Contains(plain(s), "hello from alice's terminal") })
	t.Logf("typed in one terminal to shown in the other: %v", time.Since(sent).Round(time.Millisecond))
	// bob's window is on screen: alice sees her message read.
	alice.waitFor("the read mark", func(s string) bool {
		return strings.Contains(line(s, "hello from alice's terminal"), "read")
	})

	// A command run beside alice's UI goes through it: her conversation
	// shows what it sent, and bob gets it.
	if out := natterCmd(t, server, home("alice"), "send", "bob", "sent by a script"); !strings.Contains(out, "bob") {
		t.Errorf("natter send beside the UI: %q", out)
	}
	alice.waitFor("the script's message in her conversation", func(s string) bool {
		return strings.Contains(line(s, "sent by a script"), "alice")
	})
	bob.waitFor("the script's message", func(s string) bool { return strings.Contains(plain(s), "sent by a script") })

	// alice quits: bob sees her offline, grey, at once.
	alice.keys("C-c")
	s = bob.waitFor("alice offline again", func(s string) bool { return contactLine(s, "○", "alice") != "" })
	if l := contactLine(s, "○", "alice"); !strings.Contains(l, grey) {
		t.Errorf("alice not grey after she quit: %q", l)
	}
	bob.keys("C-c")
}
