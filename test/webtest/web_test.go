// Package webtest runs natter's browser client (web/dist, the Go SDK
// compiled to WebAssembly under a plain JavaScript UI) in a real Chromium,
// driven by Playwright from the Node tests in test/web, against a real
// natterd process and real natter CLI users. Nothing is faked: the page
// talks to natterd over its HTTPS listener's WebSocket, and to the CLI peer
// to peer when it can.
//
// It needs Node.js, Chromium (/usr/bin/chromium, or $NATTER_CHROMIUM) and
// test/web's packages (`npm ci --prefix test/web`, which .ci/run does);
// without them the test is Unavailable (skipped locally, failed in CI).
package webtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natterim/natter/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// syncBuffer is natterd's log, written by its process and read on failure.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenRE = regexp.MustCompile(`msg=listening kind=(\w+) addr=(\S+)`)

// TestBrowser starts natterd, then runs every test/web/*.test.mjs under
// `node --test` with natterd's addresses in the environment; it fails with
// node's output and natterd's log if they fail. The tests print the figures
// they measure ("figure: ..."), which this test logs.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser tests take a minute or more; -short skips them")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Unavailable(t, "the browser tests need Node.js (node)")
	}
	chromium := os.Getenv("NATTER_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		testenv.Unavailable(t, "the browser tests need Chromium (apt-get install chromium)")
	}
	webDir, err := filepath.Abs(filepath.Join("..", "web"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(webDir, "node_modules", "playwright-core", "package.json")); err != nil {
		testenv.Unavailable(t, "the browser tests need test/web's packages: npm ci --prefix test/web")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}

	bin := t.TempDir()
	build(t, root, bin)

	work := t.TempDir()
	data := filepath.Join(work, "natterd")
	logBuf := &syncBuffer{}
	addrs := startNatterd(t, filepath.Join(bin, "natterd"), data, logBuf)
	defer func() {
		if t.Failed() {
			t.Logf("natterd's log:\n%s", logBuf.String())
		}
	}()

	artifacts := os.Getenv("ARTIFACTS")
	if artifacts == "" {
		artifacts, err = filepath.Abs("artifacts")
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(artifacts, "plaintexts.txt"))

	files, err := filepath.Glob(filepath.Join(webDir, "*.test.mjs"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test/web/*.test.mjs: %v", err)
	}
	sort.Strings(files) // zz-plaintext.test.mjs runs last: it greps for what the others sent

	// Within go test's default 10-minute timeout; each Node test has its own, shorter.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	args := append([]string{"--test", "--test-concurrency=1", "--test-reporter=spec"}, files...)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = webDir
	// node, its test processes and their Chromiums in a group of their own,
	// all killed if the time runs out.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = append(os.Environ(),
		"NATTER_URL=https://localhost:"+port(addrs["https"])+"/",
		"NATTER_SERVER="+addrs["tls"],
		"NATTER_BIN="+filepath.Join(bin, "natter"),
		"NATTERD_ADMIN=http://"+addrs["admin"],
		"NATTERD_DATA="+data,
		"NATTER_CHROMIUM="+chromium,
		"NATTER_WORK="+work,
		"ARTIFACTS="+artifacts,
		"NO_COLOR=1",
	)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err = cmd.Run()
	for _, line := range strings.Split(out.String(), "\n") {
		if i := strings.Index(line, "figure:"); i >= 0 {
			t.Log(strings.TrimSpace(line[i:]))
		}
	}
	t.Logf("node --test ran %d files in %v; screenshots in %s", len(files), time.Since(start).Round(time.Second), artifacts)
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out.String())
	}
	if testing.Verbose() {
		t.Logf("node's output:\n%s", out.String())
	}

	// The Node tests grepped natterd's data folder for their plaintexts;
	// check again here, once everything they sent is on disk.
	noPlaintextOnDisk(t, data, filepath.Join(artifacts, "plaintexts.txt"))
}

// build compiles natterd and natter into dir.
func build(t *testing.T, root, dir string) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build natterd: %v", err)
	}
	cmd := exec.Command(gobin, "build", "-o", dir+string(filepath.Separator), "./cmd/natterd", "./cmd/natter")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build natterd natter: %v\n%s", err, out)
	}
}

// startNatterd runs natterd on 127.0.0.1 with ports of its own and returns
// its addresses by kind (tls, https, admin, udp).
func startNatterd(t *testing.T, bin, data string, log io.Writer) map[string]string {
	t.Helper()
	cmd := exec.Command(bin, "--data", data, "--bind", "127.0.0.1",
		"--listen", ":0", "--http", ":0", "--udp", ":0", "--admin", ":0",
		"--max-contact-reqs-per-hour", "-1", "--max-msgs-per-sec", "-1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	found := make(chan [2]string, 8)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if m := listenRE.FindStringSubmatch(line); m != nil {
				found <- [2]string{m[1], m[2]}
			}
		}
	}()
	addrs := map[string]string{}
	deadline := time.After(30 * time.Second)
	for len(addrs) < 4 {
		select {
		case kv := <-found:
			addrs[kv[0]] = kv[1]
		case <-deadline:
			t.Fatalf("natterd did not log its addresses (have %v)", addrs)
		}
	}
	return addrs
}

func port(addr string) string {
	return addr[strings.LastIndex(addr, ":")+1:]
}

// noPlaintextOnDisk fails if any file under data holds any line of the
// plaintexts file (message texts, file names and file contents the browser
// tests sent).
func noPlaintextOnDisk(t *testing.T, data, plaintexts string) {
	t.Helper()
	b, err := os.ReadFile(plaintexts)
	if err != nil {
		t.Fatalf("the browser tests recorded no plaintexts to look for: %v", err)
	}
	var needles []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			needles = append(needles, l)
		}
	}
	if len(needles) == 0 {
		t.Fatal("the browser tests recorded no plaintexts to look for")
	}
	files := 0
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, n := range needles {
			if bytes.Contains(body, []byte(n)) {
				t.Errorf("%s holds the plaintext %q", path, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("no plaintext on natterd's disk: %d needles in %d files", len(needles), files)
}
