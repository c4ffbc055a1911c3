package cluster

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter/internal/testenv"
)

// proxy is HAProxy running docs/cluster/haproxy.cfg in front of a cluster.
type proxy struct {
	tls, https string // its two frontends
}

// startHAProxy runs the example configuration of docs/cluster/haproxy.cfg,
// with only its addresses rewritten: the frontends on free ports of
// 127.0.0.1, and each "server nK" line to node K's listeners.
func startHAProxy(t *testing.T, c *cluster) *proxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		testenv.Unavailable(t, "haproxy is not installed: %v", err)
	}
	src, err := os.ReadFile("../../docs/cluster/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{tls: freeAddr(t), https: freeAddr(t)}
	cfg := string(src)
	cfg = strings.Replace(cfg, "bind :7443", "bind "+p.tls, 1)
	cfg = strings.Replace(cfg, "bind :443", "bind "+p.https, 1)
	server := regexp.MustCompile(`server n(\d) 10\.0\.0\.\d:(7443|443) check port 9090`)
	n := 0
	cfg = server.ReplaceAllStringFunc(cfg, func(line string) string {
		m := server.FindStringSubmatch(line)
		var k int
		fmt.Sscan(m[1], &k)
		nd := c.nodes[k-1]
		addr := nd.addr
		if m[2] == "443" {
			addr = nd.http
		}
		_, adminPort, _ := net.SplitHostPort(nd.admin)
		n++
		return fmt.Sprintf("server n%d %s check port %s", k, addr, adminPort)
	})
	if n != 2*len(c.nodes) {
		t.Fatalf("rewrote %d server lines of docs/cluster/haproxy.cfg, want %d", n, 2*len(c.nodes))
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	out, _ := cmd.StderrPipe()
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.logMu.Lock()
			c.logLines = append(c.logLines, "haproxy: "+sc.Text())
			c.logMu.Unlock()
		}
	}()
	// Up once its frontend takes connections and every node is checked
	// up (fall 2 / rise 2 at 1 s: a few seconds).
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", p.tls, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not listen on %s: %v", p.tls, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestClusterHAProxy runs docs/cluster/haproxy.cfg in front of three
// nodes: the web client loads through it, and users who know only the
// proxy's address chat while a node is killed; the proxy marks it down,
// cuts its connections, and their clients come back through the proxy to
// the other nodes with nothing acknowledged lost.
func TestClusterHAProxy(t *testing.T) {
	testNodeGoneVia(t, (*node).kill, true)
}

// webThroughProxy fetches the web client's page through the proxy.
func webThroughProxy(t *testing.T, c *cluster, p *proxy) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: c.tls.Clone()}, Timeout: 10 * time.Second}
	resp, err := hc.Get("https://" + p.https + "/")
	if err != nil {
		t.Fatalf("web client through haproxy: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("web client through haproxy: %s, %s", resp.Status, resp.Header.Get("Content-Type"))
	}
}
