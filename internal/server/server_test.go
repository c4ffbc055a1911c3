package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/natterim/natter/internal/server"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// hostPort splits addr, failing the test if it cannot.
func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return h, p
}

// TestBind: with Bind, every listener whose address names no host binds
// Bind's address, so two servers on distinct loopback addresses run at
// once on the same port numbers; an address with a host (the admin
// listener's) keeps it.
func TestBind(t *testing.T) {
	start := func(bind, tlsPort, httpPort, udpPort string) *servertest.Instance {
		return servertest.Start(t, func(c *server.Config) {
			c.Bind = bind
			c.Listen, c.HTTP, c.UDP = ":"+tlsPort, ":"+httpPort, ":"+udpPort
			c.Admin = "127.0.0.1:0"
		})
	}
	a := start("127.0.0.2", "0", "0", "0")
	_, tlsPort := hostPort(t, a.Addr)
	_, httpPort := hostPort(t, a.HTTPAddr)
	_, udpPort := hostPort(t, a.UDPAddr)
	b := start("127.0.0.3", tlsPort, httpPort, udpPort) // both run: nothing collides
	for _, tc := range []struct {
		bind string
		in   *servertest.Instance
	}{{"127.0.0.2", a}, {"127.0.0.3", b}} {
		t.Run(tc.bind, func(t *testing.T) {
			in := tc.in
			for _, l := range []struct{ kind, addr, host, port string }{
				{"tls", in.Addr, tc.bind, tlsPort},
				{"https", in.HTTPAddr, tc.bind, httpPort},
				{"stun/turn", in.UDPAddr, tc.bind, udpPort},
				{"admin", in.AdminAddr, "127.0.0.1", ""},
			} {
				h, p := hostPort(t, l.addr)
				if h != l.host || l.port != "" && p != l.port {
					t.Errorf("%s listens on %s, want %s, port %s", l.kind, l.addr, l.host, l.port)
				}
			}
			// The TCP listeners answer on the bound address, and not on
			// 127.0.0.1 (which a wildcard listener would answer on).
			for _, addr := range []string{in.Addr, in.HTTPAddr} {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatalf("dial %s: %v", addr, err)
				}
				c.Close()
				_, p := hostPort(t, addr)
				if c, err := net.Dial("tcp", "127.0.0.1:"+p); err == nil {
					c.Close()
					t.Errorf("127.0.0.1:%s answers: the listener is not bound to %s only", p, tc.bind)
				}
			}
			// The relay follows too: a TURN allocation's address is on
			// the bound address (its IP is advertised from --udp's).
			if got := in.Server().RelayIP().String(); got != tc.bind {
				t.Errorf("relay IP %s, want %s", got, tc.bind)
			}
		})
	}
}

// TestBindFlag: --bind reaches every listener through natterd's command
// line, as its "listening" log lines show.
func TestBindFlag(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- server.Run(ctx, []string{"--data", t.TempDir(), "--bind", "127.0.0.2",
			"--listen", ":0", "--http", ":0", "--udp", ":0", "--admin", ":0"}, pw)
		pw.Close()
	}()
	addrs := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "msg=listening") {
			kind, addr := field(line, "kind"), field(line, "addr")
			addrs[kind] = addr
		}
		if strings.Contains(line, "msg=certificate") {
			cancel()
		}
	}
	if code := <-done; code != 0 {
		t.Fatalf("natterd exited with %d", code)
	}
	for _, kind := range []string{"tls", "https", "udp", "admin"} {
		if h, _ := hostPort(t, addrs[kind]); h != "127.0.0.2" {
			t.Errorf("%s listens on %q, want 127.0.0.2", kind, addrs[kind])
		}
	}
}

// field returns the value of key=value in a slog text line.
func field(line, key string) string {
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

func TestParseBind(t *testing.T) {
	for _, tc := range []struct {
		args []string
		bind string
		ok   bool
	}{
		{nil, "", true},
		{[]string{"--bind", "127.0.0.2"}, "127.0.0.2", true},
		{[]string{"--bind", "::1"}, "::1", true},
		{[]string{"--bind", "localhost:7443"}, "", false},
		{[]string{"--bind", "nonsense"}, "", false},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cfg, _, err := server.ParseFlags(tc.args, io.Discard)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseFlags: %v, want ok %v", err, tc.ok)
			}
			if tc.ok && cfg.Bind != tc.bind {
				t.Errorf("Bind %q, want %q", cfg.Bind, tc.bind)
			}
		})
	}
}

// TestAddressInUse: a port already taken is said once, with the address
// once and which listener it is, and matches syscall.EADDRINUSE; natterd's
// log line adds a hint.
func TestAddressInUse(t *testing.T) {
	for _, tc := range []struct {
		kind, network string
		set           func(c *server.Config, addr string)
	}{
		{"tls listener", "tcp", func(c *server.Config, a string) { c.Listen = a }},
		{"https listener", "tcp", func(c *server.Config, a string) { c.HTTP = a }},
		{"admin listener", "tcp", func(c *server.Config, a string) { c.Admin = a }},
		{"stun/turn", "udp", func(c *server.Config, a string) { c.UDP = a }},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			var addr string
			if tc.network == "tcp" {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				addr = l.Addr().String()
			} else {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
				addr = pc.LocalAddr().String()
			}
			cfg := server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", HTTP: "127.0.0.1:0",
				Admin: "127.0.0.1:0", UDP: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}
			tc.set(&cfg, addr)
			if _, err := server.New(context.Background(), cfg); err == nil {
				t.Fatal("New listened on an address in use")
			} else {
				checkInUse(t, err, tc.kind, tc.network, addr)
			}

			// natterd says it once too, with a hint.
			flag := map[string]string{"tls listener": "--listen", "https listener": "--http",
				"admin listener": "--admin", "stun/turn": "--udp"}[tc.kind]
			args := []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
				"--admin", "127.0.0.1:0", "--udp", "127.0.0.1:0", flag, addr}
			var out bytes.Buffer
			if code := server.Run(context.Background(), args, &out); code != 1 {
				t.Fatalf("natterd exited with %d, want 1; log:\n%s", code, out.String())
			}
			log := out.String()
			if strings.Count(log, "address already in use") != 1 || strings.Count(log, addr) != 1 ||
				!strings.Contains(log, "hint=") {
				t.Errorf("log does not say it once, with a hint:\n%s", log)
			}
		})
	}
}

// checkInUse checks an address-in-use error from New: it says which
// listener, then what the OS said, once.
func checkInUse(t *testing.T, err error, kind, network, addr string) {
	t.Helper()
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("%v is not EADDRINUSE", err)
	}
	msg := err.Error()
	want := kind + ": listen " + network + " " + addr + ": bind: address already in use"
	if msg != want {
		t.Errorf("error %q, want %q", msg, want)
	}
}

// lockedBuffer is a bytes.Buffer for a logger used from several
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDataDirPrivate: whatever the umask, the data folder and every folder
// in it end up 0700 and every file 0600 (natter.db, its -wal and -shm,
// the certificate, the blob store); a folder an older version left open
// is closed at start, in one log line naming what was fixed.
//
// Not parallel: the umask belongs to the whole process.
func TestDataDirPrivate(t *testing.T) {
	// old makes what an older natterd (or an operator) left: the folder
	// and a blob folder 0755, the database, a blob and its leftovers 0644.
	old := func(folderMode fs.FileMode) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			blob := filepath.Join(dir, "blobs", "ab", "cd")
			if err := os.MkdirAll(blob, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"natter.db", "natter.db-wal", "natter.db-shm", filepath.Join("blobs", "ab", "cd", "abcd00")} {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range []string{dir, filepath.Join(dir, "blobs"), filepath.Join(dir, "blobs", "ab"), blob} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{"natter.db", "natter.db-wal", "natter.db-shm"} {
				if err := os.Chmod(filepath.Join(dir, f), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, folderMode); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		umask  int
		before func(t *testing.T, dir string) // nil: no folder yet
		fixed  []string                       // named in the log line; nil: no log line
	}{
		{"new folder, umask 022", 0o022, nil, nil},
		{"new folder, umask 000", 0, nil, nil},
		{"older version's open folder", 0o022, old(0o755),
			[]string{". 0755", "natter.db 0644", "natter.db-wal 0644", "blobs 0755", "blobs/ab/cd/abcd00 0644"}},
		{"older version's files in a closed folder", 0o022, old(0o700),
			[]string{"natter.db 0644", "natter.db-wal 0644", "natter.db-shm 0644", "blobs 0755", "blobs/ab/cd/abcd00 0644"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := syscall.Umask(tc.umask)
			defer syscall.Umask(prev)
			dir := filepath.Join(t.TempDir(), "natter-data")
			if tc.before != nil {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				tc.before(t, dir)
			}
			var logs lockedBuffer
			in := servertest.Start(t, func(c *server.Config) {
				c.DataDir = dir
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			// The database's -wal and -shm exist while it is open.
			checkPrivate(t, dir, "natter.db", "natter.db-wal", "natter.db-shm", "cert.pem", "key.pem", "blobs", "blobs/tmp")
			in.Stop()
			checkPrivate(t, dir)

			var lines []string
			for l := range strings.SplitSeq(logs.String(), "\n") {
				if strings.Contains(l, "data folder was readable by other users") {
					lines = append(lines, l)
				}
			}
			switch {
			case tc.fixed == nil && len(lines) != 0:
				t.Errorf("a new folder was fixed: %q", lines)
			case tc.fixed != nil && len(lines) != 1:
				t.Errorf("%d log lines about fixing modes, want 1: %q", len(lines), lines)
			case tc.fixed != nil:
				for _, f := range tc.fixed {
					if !strings.Contains(lines[0], f) {
						t.Errorf("log line does not name %q: %s", f, lines[0])
					}
				}
			}
			if tc.before == nil {
				return
			}
			// Once fixed, a restart finds nothing to fix.
			logs.Reset()
			in.Restart()
			in.Stop()
			if strings.Contains(logs.String(), "data folder was readable") {
				t.Errorf("fixed again at restart:\n%s", logs.String())
			}
		})
	}
}

// checkPrivate fails the test unless every folder under dir (and dir) is
// 0700 and every file 0600 or less, and the names given exist.
func checkPrivate(t *testing.T, dir string, want ...string) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		seen[rel] = true
		perm := fi.Mode().Perm()
		if d.IsDir() && perm != 0o700 || !d.IsDir() && perm&^0o600 != 0 {
			t.Errorf("%s is %#o", rel, perm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("%s missing from the data folder", w)
		}
	}
}

// TestHandshakingGauge: natter_handshaking_connections counts the
// connections of each transport that have not been welcomed (TLS handshake
// not begun, upgrade not asked, Hello not sent), and uncounts them when
// they are welcomed, when the client closes them, or when the handshake
// timeout ends them.
func TestHandshakingGauge(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration // handshake timeout
		close   bool          // the client says Hello on two and closes the rest; else the timeout ends them all
	}{
		{"welcomed or closed by the client", time.Minute, true},
		{"ended by the handshake timeout", 3 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := servertest.Start(t, func(c *server.Config) { c.HandshakeTimeout = tc.timeout })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// Never handshaking: 3 on the TLS listener, 2 on the HTTPS one.
			var raw []net.Conn
			for _, addr := range []string{in.Addr, in.Addr, in.Addr, in.HTTPAddr, in.HTTPAddr} {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				raw = append(raw, c)
			}
			// TLS done, no Hello yet.
			tc1, err := tls.Dial("tcp", in.Addr, in.ClientTLS())
			if err != nil {
				t.Fatal(err)
			}
			defer tc1.Close()
			// WebSocket upgraded, no Hello yet.
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: in.ClientTLS()}}
			defer hc.CloseIdleConnections()
			ws, _, err := websocket.Dial(ctx, "wss://"+in.HTTPAddr+"/ws",
				&websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{"natter.v1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			// A page fetched over HTTPS, its connection kept open: not
			// handshaking once the request came.
			resp, err := hc.Get("https://" + in.HTTPAddr + "/")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()

			waitGauge(t, in, 4, 3)

			if tc.close {
				// Hello and Welcome end the handshake.
				hello, err := wire.Encode(wire.Hello{V: wire.Version, Client: "gauge test"})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tc1.Write(hello); err != nil {
					t.Fatal(err)
				}
				if f, err := wire.NewUnbufferedReader(tc1, 1<<20).ReadFrame(); err != nil || f.Type != wire.TWelcome {
					t.Fatalf("tls: got %v, %v, want welcome", f.Type, err)
				}
				if err := ws.Write(ctx, websocket.MessageBinary, hello[4:]); err != nil {
					t.Fatal(err)
				}
				if _, b, err := ws.Read(ctx); err != nil || len(b) == 0 || wire.Type(b[0]) != wire.TWelcome {
					t.Fatalf("ws: got %x, %v, want welcome", b, err)
				}
				waitGauge(t, in, 3, 2)
				for _, c := range raw {
					c.Close()
				}
			} else {
				// The server ends each raw one: the client reads EOF (or
				// a reset), not its own deadline.
				for _, c := range raw {
					c.SetReadDeadline(time.Now().Add(tc.timeout + 10*time.Second))
					_, err := c.Read(make([]byte, 1))
					if ne, ok := err.(net.Error); err == nil || ok && ne.Timeout() {
						t.Fatalf("read from a connection that never said anything: %v, want the server to end it", err)
					}
				}
			}
			waitGauge(t, in, 0, 0)
		})
	}
}

// waitGauge waits until natter_handshaking_connections is tls and ws.
func waitGauge(t *testing.T, in *servertest.Instance, tls, ws float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		gt := in.Metric(t, "natter_handshaking_connections", `transport="tls"`)
		gw := in.Metric(t, "natter_handshaking_connections", `transport="ws"`)
		if gt == tls && gw == ws {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("natter_handshaking_connections tls %v, ws %v; want %v, %v", gt, gw, tls, ws)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNodeName: a --node name too long for the bus's events, or with a
// blank or control character, is refused before anything starts.
func TestNodeName(t *testing.T) {
	for _, tc := range []struct {
		node string
		ok   bool
	}{
		{"", true},
		{"node-1", true},
		{strings.Repeat("n", 64), true},
		{strings.Repeat("n", 65), false},
		{strings.Repeat("n", 300), false},
		{"a b", false},
		{"a\x00b", false},
	} {
		var stderr strings.Builder
		_, _, err := server.ParseFlags([]string{"--node", tc.node}, &stderr)
		if (err == nil) != tc.ok {
			t.Errorf("--node %q: err %v, stderr %q", tc.node, err, stderr.String())
		}
		if !tc.ok && !strings.Contains(stderr.String(), "natterd: --node: ") {
			t.Errorf("--node %q: stderr %q", tc.node, stderr.String())
		}
	}
}
