package cluster

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natterim/natter/internal/natstest"
	"github.com/natterim/natter/internal/pgtest"
	"github.com/natterim/natter/internal/tlscert"
)

// natterdBin builds cmd/natterd once per test binary run.
var natterdBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "natterd-cluster-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "natterd")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/natterd")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build natterd: %v\n%s", err, out)
	}
	return bin, nil
})

// cluster is natterd nodes sharing one PostgreSQL schema, one NATS server
// and one certificate, as an operator runs them behind a load balancer.
type cluster struct {
	t        *testing.T
	store    string // --store
	nats     *natstest.Server
	certDir  string
	tls      *tls.Config
	nodes    []*node
	extra    []string // more natterd flags for every node
	place    string   // if set, dial places each new device on this node (see dial)
	logMu    sync.Mutex
	logLines []string
}

// node is one natterd process of a cluster.
type node struct {
	c     *cluster
	name  string
	data  string
	addr  string // host:port of its TLS listener, kept across restarts
	http  string // host:port of its HTTPS listener, kept across restarts
	admin string
	cmd   *exec.Cmd
	done  chan struct{}
}

var (
	listenRE = regexp.MustCompile(`msg=listening kind=tls addr=(\S+)`)
	httpRE   = regexp.MustCompile(`msg=listening kind=https addr=(\S+)`)
	adminRE  = regexp.MustCompile(`msg=listening kind=admin addr=(\S+)`)
)

// newCluster starts n nodes.
func newCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	return newClusterOn(t, n, pgtest.Schema(t), natstest.Start(t, ""), extra...)
}

// newClusterOn starts n nodes on the given PostgreSQL URL and NATS server.
func newClusterOn(t *testing.T, n int, store string, nats *natstest.Server, extra ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, store: store, nats: nats, certDir: t.TempDir(), extra: extra}
	if _, err := tlscert.LoadOrCreate(c.certDir, []string{"localhost", "127.0.0.1"}, nil); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(c.certDir, tlscert.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c.tls = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	for i := range n {
		nd := &node{c: c, name: fmt.Sprintf("n%d", i+1), data: t.TempDir(), addr: "127.0.0.1:0", http: "127.0.0.1:0"}
		nd.start()
		c.nodes = append(c.nodes, nd)
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.kill()
		}
		if t.Failed() {
			c.logMu.Lock()
			defer c.logMu.Unlock()
			lines := c.logLines
			if len(lines) > 400 {
				lines = lines[len(lines)-400:]
			}
			t.Logf("natterd logs (last %d lines):\n%s", len(lines), strings.Join(lines, "\n"))
		}
	})
	return c
}

// start runs the node's natterd and waits until it listens. A restarted
// node listens on the address it had.
func (nd *node) start() {
	t := nd.c.t
	t.Helper()
	bin, err := natterdBin()
	if err != nil {
		t.Fatal(err)
	}
	admin := "127.0.0.1:0"
	if nd.admin != "" {
		admin = nd.admin // a restarted node keeps its ports, as the proxy knows them
	}
	args := []string{"--data", nd.data, "--listen", nd.addr, "--http", nd.http, "--udp", "127.0.0.1:0", "--admin", admin,
		"--store", nd.c.store, "--bus", nd.c.nats.URL(), "--node", nd.name,
		"--tls-cert", filepath.Join(nd.c.certDir, tlscert.CertFile), "--tls-key", filepath.Join(nd.c.certDir, tlscert.KeyFile),
		"--keepalive", "3s", "--log-level", "debug"}
	args = append(args, nd.c.extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NATTER_TURN_SECRET=the cluster test's shared turn secret")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	nd.cmd, nd.done = cmd, make(chan struct{})
	found := make(chan [3]string, 1)
	go func() {
		defer close(nd.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var tlsAddr, httpAddr string
		for sc.Scan() {
			line := sc.Text()
			nd.c.logMu.Lock()
			nd.c.logLines = append(nd.c.logLines, nd.name+": "+line)
			if len(nd.c.logLines) > 20000 {
				nd.c.logLines = nd.c.logLines[10000:]
			}
			nd.c.logMu.Unlock()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				tlsAddr = m[1]
			}
			if m := httpRE.FindStringSubmatch(line); m != nil {
				httpAddr = m[1]
			}
			if m := adminRE.FindStringSubmatch(line); m != nil {
				found <- [3]string{tlsAddr, httpAddr, m[1]}
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
	}()
	select {
	case a := <-found:
		nd.addr, nd.http, nd.admin = a[0], a[1], a[2]
	case <-nd.done:
		t.Fatalf("node %s exited before listening", nd.name)
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s did not log its addresses", nd.name)
	}
}

// kill ends the node with SIGKILL: no goodbye to anyone.
func (nd *node) kill() {
	if nd.cmd == nil {
		return
	}
	nd.cmd.Process.Signal(syscall.SIGKILL)
	<-nd.done
	nd.cmd = nil
}

// stop ends the node with SIGTERM (a drain) and waits for it to exit.
func (nd *node) stop() {
	nd.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-nd.done:
	case <-time.After(30 * time.Second):
		nd.c.t.Errorf("node %s did not stop within 30 s of SIGTERM", nd.name)
		nd.kill()
	}
	nd.cmd = nil
}
