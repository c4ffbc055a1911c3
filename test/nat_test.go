package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/natlab"
)

// natterBin builds cmd/natter once per test binary run.
var natterBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "natter-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "natter")
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	if out, err := exec.Command(gobin, "build", "-o", bin, "../cmd/natter").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build natter: %v\n%s", err, out)
	}
	return bin, nil
})

// natLab is a lab with natterd running on its server host.
type natLab struct {
	t      *testing.T
	lab    *natlab.Lab
	addr   string // natterd's TLS address
	cert   string // its certificate, for --ca
	natter string
}

func startNatLab(t *testing.T, topo natlab.Topology) *natLab {
	t.Helper()
	natlab.SkipIfUnavailable(t)
	natterd, err := natterdBin()
	if err != nil {
		t.Fatal(err)
	}
	natter, err := natterBin()
	if err != nil {
		t.Fatal(err)
	}
	lab, err := natlab.New(t, topo)
	if err != nil {
		t.Fatal(err)
	}
	ip := lab.ServerIP().String()
	data := t.TempDir()
	srv := lab.Server().Command(natterd, "--data", data, "--listen", ip+":7443", "--http", "",
		"--admin", "127.0.0.1:9090", "--udp", ip+":3478", "--hosts", ip)
	stderr, _ := srv.StderrPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "msg=listening kind=udp") {
				once.Do(func() { close(up) })
			}
		}
	}()
	select {
	case <-up:
	case <-time.After(20 * time.Second):
		t.Fatal("natterd did not start in the lab")
	}
	return &natLab{t: t, lab: lab, addr: ip + ":7443", cert: filepath.Join(data, "cert.pem"), natter: natter}
}

// run runs natter on host with home dir home and returns its output.
func (n *natLab) run(host, home string, args ...string) string {
	n.t.Helper()
	cmd := n.lab.Host(host).Command(n.natter, append([]string{"--server", n.addr, "--ca", n.cert, "--home", home}, args...)...)
	cmd.Env = append(os.Environ(), "NATTER_PASSWORD=lab-password-1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		n.t.Fatalf("natter %s on %s: %v\n%s", strings.Join(args, " "), host, err, out)
	}
	return string(out)
}

// metric reads one natterd metric inside the server's namespace.
func (n *natLab) metric(name string) float64 {
	n.t.Helper()
	cmd := n.lab.Server().Command("bash", "-c",
		`exec 3<>/dev/tcp/127.0.0.1/9090 && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3`)
	out, err := cmd.Output()
	if err != nil {
		n.t.Fatalf("metrics: %v", err)
	}
	return servertest.ParseMetric(string(out), name)
}

// chatProc is a running `natter chat PEER --json`.
type chatProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan map[string]any
	start  time.Time
}

func (n *natLab) chat(host, home, peer string) *chatProc {
	n.t.Helper()
	cmd := n.lab.Host(host).Command(n.natter, "--server", n.addr, "--ca", n.cert, "--home", home, "chat", peer, "--json")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	c := &chatProc{t: n.t, cmd: cmd, stdin: stdin, events: make(chan map[string]any, 256), start: time.Now()}
	n.t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				c.events <- m
			}
		}
	}()
	return c
}

// next waits for an event of type typ that ok accepts.
func (c *chatProc) next(typ string, timeout time.Duration, ok func(map[string]any) bool) map[string]any {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, open := <-c.events:
			if !open {
				c.t.Fatalf("chat ended while waiting for a %s event", typ)
			}
			if m["type"] == typ && (ok == nil || ok(m)) {
				return m
			}
		case <-deadline:
			c.t.Fatalf("no %s event within %v", typ, timeout)
		}
	}
}

func (c *chatProc) say(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		c.t.Fatal(err)
	}
}

// exchange sends n lines each way and checks they arrive in order, each
// once, over path.
func exchange(t *testing.T, a, b *chatProc, tag string, n int, path string) {
	t.Helper()
	for i := range n {
		a.say(fmt.Sprintf("%s a%d", tag, i))
	}
	for i := range n {
		want := fmt.Sprintf("%s a%d", tag, i)
		m := b.next("message", 30*time.Second, func(m map[string]any) bool { return strings.HasPrefix(m["text"].(string), tag+" a") })
		if m["text"] != want || m["path"] != path {
			t.Fatalf("b got %v (path %v), want %q over %s", m["text"], m["path"], want, path)
		}
		s := a.next("sent", 30*time.Second, nil)
		if s["path"] != path {
			t.Fatalf("a's send %d went %v, want %s", i, s["path"], path)
		}
		// A peer-to-peer send is acknowledged by the peer's device itself.
		if wantResult := map[bool]string{true: "sent", false: "delivered"}[path == "server"]; s["result"] != wantResult {
			t.Fatalf("a's send %d: result %v, want %s", i, s["result"], wantResult)
		}
	}
	for i := range n {
		b.say(fmt.Sprintf("%s b%d", tag, i))
	}
	for i := range n {
		want := fmt.Sprintf("%s b%d", tag, i)
		m := a.next("message", 30*time.Second, func(m map[string]any) bool { return strings.HasPrefix(m["text"].(string), tag+" b") })
		if m["text"] != want || m["path"] != path {
			t.Fatalf("a got %v (path %v), want %q over %s", m["text"], m["path"], want, path)
		}
	}
}

// setupPair signs alice up on host a and bob on host b as contacts.
func (n *natLab) setupPair() (homeA, homeB string) {
	homeA, homeB = n.t.TempDir(), n.t.TempDir()
	n.run("a", homeA, "signup", "alice")
	n.run("b", homeB, "signup", "bob")
	n.run("a", homeA, "add", "bob")
	n.run("b", homeB, "accept", "alice")
	return homeA, homeB
}

// TestNATLab runs a real conversation through every topology of the lab and
// checks the path chosen: direct wherever the topology allows one, else
// natterd's TURN relay, else the server.
func TestNATLab(t *testing.T) {
	cases := []struct {
		topo natlab.Topology
		want string
	}{
		{natlab.SameLAN(), "direct"},
		{natlab.TwoHomeRouters(), "direct"},
		{natlab.SymmetricAndHome(), "relayed"},
		{natlab.BothSymmetric(), "relayed"},
		{natlab.UDPBlocked(), "server"},
	}
	for _, tc := range cases {
		t.Run(tc.topo.Name, func(t *testing.T) {
			t.Parallel()
			n := startNatLab(t, tc.topo)
			homeA, homeB := n.setupPair()
			bob := n.chat("b", homeB, "alice")
			alice := n.chat("a", homeA, "bob")
			if tc.want == "server" {
				// No peer-to-peer path may be claimed: watch alice's path
				// events for longer than an attempt takes to fail.
				var seen []string
				deadline := time.After(15 * time.Second)
			watch:
				for {
					select {
					case m, ok := <-alice.events:
						if !ok {
							t.Fatal("chat ended")
						}
						if m["type"] == "path" {
							seen = append(seen, fmt.Sprint(m["path"], ": ", m["error"]))
							if m["path"] != "server" {
								t.Fatalf("path %v claimed with UDP blocked", m["path"])
							}
						}
					case <-deadline:
						break watch
					}
				}
				if len(seen) == 0 {
					t.Fatal("chat never said which path the conversation takes")
				}
				t.Logf("%s: path events %q", tc.topo.Name, seen)
			} else {
				p := alice.next("path", 40*time.Second, func(m map[string]any) bool { return m["path"] == tc.want })
				t.Logf("%s: path %v after %v (rtt %v ms)", tc.topo.Name, p["path"], time.Since(alice.start).Round(time.Millisecond), p["rtt_ms"])
				bob.next("path", 20*time.Second, func(m map[string]any) bool { return m["path"] == tc.want })
			}
			relayed := n.metric("natter_messages_total")
			exchange(t, alice, bob, "first", 5, tc.want)
			after := n.metric("natter_messages_total")
			switch tc.want {
			case "server":
				if after-relayed != 10 {
					t.Errorf("natterd relayed %v messages, want 10", after-relayed)
				}
			default:
				if after != relayed {
					t.Errorf("natterd relayed %v messages of a %s conversation", after-relayed, tc.want)
				}
			}
			if tc.want == "relayed" && n.metric("natter_turn_relayed_bytes_total") == 0 {
				t.Error("relayed path, but natterd's TURN relayed nothing")
			}
		})
	}
}

// TestNATLabPathBreaks cuts UDP on one home router mid-conversation: sending
// falls back to the server without losing or duplicating a message, and the
// clients go direct again once UDP is back.
func TestNATLabPathBreaks(t *testing.T) {
	n := startNatLab(t, natlab.TwoHomeRouters())
	homeA, homeB := n.setupPair()
	bob := n.chat("b", homeB, "alice")
	alice := n.chat("a", homeA, "bob")
	alice.next("path", 40*time.Second, func(m map[string]any) bool { return m["path"] == "direct" })
	exchange(t, alice, bob, "before", 3, "direct")

	block := func(op string) {
		t.Helper()
		out, err := n.lab.Router("a").Command("iptables", op, "FORWARD", "-p", "udp", "-j", "DROP").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables %s: %v %s", op, err, out)
		}
	}
	block("-I")
	alice.next("path", 30*time.Second, func(m map[string]any) bool { return m["path"] == "server" })
	exchange(t, alice, bob, "during", 3, "server")

	block("-D")
	start := time.Now()
	alice.next("path", 60*time.Second, func(m map[string]any) bool { return m["path"] == "direct" })
	t.Logf("direct again %v after UDP came back", time.Since(start).Round(time.Millisecond))
	exchange(t, alice, bob, "after", 3, "direct")
}
