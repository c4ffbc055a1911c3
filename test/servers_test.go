package test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/natstest"
	"github.com/natterim/natter/internal/pgtest"
	"github.com/natterim/natter/internal/tlscert"
)

// TestClientFailsOver: two natterd processes share a PostgreSQL schema,
// a NATS server and one certificate; clients are given both addresses.
// SIGKILL the node alice is on: her SDK reconnects to the other, resumes
// her session there, and a message she sends then reaches bob.
func TestClientFailsOver(t *testing.T) {
	store := pgtest.Schema(t)
	bus := natstest.Start(t, "").URL()
	certDir := t.TempDir()
	cert, err := tlscert.LoadOrCreate(certDir, []string{"localhost", "127.0.0.1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*exec.Cmd{}
	var addrs []string
	for _, name := range []string{"n1", "n2"} {
		cmd, addr := startNode(t, name, store, bus, certDir)
		nodes[name] = cmd
		addrs = append(addrs, addr)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	dial := func(user natter.UserID) (*client.Client, <-chan client.Event) {
		t.Helper()
		c, err := client.Dial(t.Context(), client.Options{
			Addrs:        addrs,
			TLSConfig:    &tls.Config{RootCAs: roots},
			Device:       natter.DeviceID(user + "-phone"),
			ReconnectMin: 50 * time.Millisecond,
			ReconnectMax: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Signup(t.Context(), user, "correct-horse-"+string(user)); err != nil {
			t.Fatal(err)
		}
		return c, c.Events()
	}
	until := func(ch <-chan client.Event, what string, ok func(client.Event) bool) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case e := <-ch:
				if ok(e) {
					return
				}
			case <-timeout:
				t.Fatalf("no %s within 30 s", what)
			}
		}
	}
	alice, aev := dial("alice")
	bob, bev := dial("bob")
	if err := alice.Add(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	until(bev, "request from alice", func(e client.Event) bool {
		ce, ok := e.(client.ContactEvent)
		return ok && ce.User == "alice" && ce.State == natter.ContactPendingIn
	})
	if err := bob.Accept(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	until(aev, "bob's acceptance", func(e client.Event) bool {
		ce, ok := e.(client.ContactEvent)
		return ok && ce.User == "bob" && ce.State == natter.ContactApproved
	})

	was := alice.Welcome().Node
	killed := nodes[was]
	if killed == nil {
		t.Fatalf("alice is on node %q, not one of the test's", was)
	}
	killed.Process.Kill()
	killed.Wait()
	until(aev, "reconnection", func(e client.Event) bool {
		ce, ok := e.(client.ConnEvent)
		if ok && ce.Final {
			t.Fatalf("alice's session ended: %v", ce.Err)
		}
		return ok && ce.Up
	})
	if now := alice.Welcome().Node; now == was || nodes[now] == nil {
		t.Fatalf("alice reconnected to node %q after %q was killed", now, was)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := alice.Send(ctx, "bob", []byte("after the failover"))
	if err != nil {
		t.Fatal(err)
	}
	until(bev, "alice's message", func(e client.Event) bool {
		me, ok := e.(client.MessageEvent)
		if ok && me.Message.ID == res.ID && string(me.Message.Body) != "after the failover" {
			t.Fatalf("bob got %q, %v", me.Message.Body, me.OpenErr)
		}
		return ok && me.Message.ID == res.ID
	})
}

// startNode runs natterd as node name of a cluster (store, bus, the
// certificate in certDir) and returns it with its TLS address.
func startNode(t *testing.T, name, store, bus, certDir string) (*exec.Cmd, string) {
	t.Helper()
	bin, err := natterdBin()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--data", t.TempDir(), "--store", store, "--bus", bus, "--node", name,
		"--tls-cert", filepath.Join(certDir, tlscert.CertFile), "--tls-key", filepath.Join(certDir, tlscert.KeyFile),
		"--listen", "127.0.0.1:0", "--http", "", "--admin", "", "--udp", "")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case addr := <-found:
		return cmd, addr
	case <-time.After(30 * time.Second):
		t.Fatalf("natterd %s did not log its address", name)
		return nil, ""
	}
}
