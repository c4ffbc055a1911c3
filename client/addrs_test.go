package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/tlscert"
	"github.com/natterim/natter/wire"
)

// TestServerAddresses: a Client given several addresses connects to one;
// when that connection drops it goes to the next one, and past one that
// refuses to the one after, in the same attempt; the session resumes
// there. In a synctest bubble with in-memory connections: each address's
// "node" is a goroutine of the test.
func TestServerAddresses(t *testing.T) {
	cert, err := tlscert.LoadOrCreate(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	addrs := []string{"n1.test:7443", "n2.test:7443", "n3.test:7443"}
	tests := []struct {
		name string
		dead func(first int) int // the node that refuses after the drop; -1: none
	}{
		{"next is up", func(int) int { return -1 }},
		{"next is down too", func(first int) int { return (first + 1) % 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var (
					mu    sync.Mutex
					tried []string // addresses dialled, in order
					names []string // the TLS server names asked for
					dead  = -2     // set after the first connection
				)
				drop := make(chan struct{})
				serve := func(nc net.Conn, node int, first bool) {
					tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}})
					fc := &fakeConn{t: t, nc: tc, r: wire.NewReader(tc, 0)}
					expect[wire.Hello](fc)
					mu.Lock()
					names = append(names, tc.ConnectionState().ServerName)
					mu.Unlock()
					fc.write(wire.Welcome{V: wire.Version, Node: addrs[node], Keepalive: 3600, MaxBody: wire.MaxBody})
					if first {
						l := expect[wire.Login](fc)
						fc.authed(l.Ref, "alice", "dev1", 0)
						fc.keySetup()
						<-drop
						fc.close()
						return
					}
					r := expect[wire.Resume](fc)
					fc.authed(r.Ref, "alice", "dev1", 0)
					for {
						if _, ok := fc.tryRead().(error); ok {
							return
						}
					}
				}
				o := client.Options{
					Addr:  addrs[0],
					Addrs: addrs[1:],
					TLSConfig: &tls.Config{RootCAs: roots, InsecureSkipVerify: true,
						Time: func() time.Time { return cert.Leaf.NotBefore.Add(time.Hour) }},
					Device:       "dev1",
					ReconnectMin: 100 * time.Millisecond,
					ReconnectMax: time.Second,
					Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
						node := slices.Index(addrs, addr)
						if node < 0 {
							return nil, errors.New("no such node " + addr)
						}
						mu.Lock()
						tried = append(tried, addr)
						first := len(tried) == 1
						refuse := node == dead
						mu.Unlock()
						if refuse {
							return nil, errors.New("connection refused")
						}
						cli, srv := net.Pipe()
						go serve(srv, node, first)
						return cli, nil
					},
				}
				c, err := client.Dial(t.Context(), o)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Login(t.Context(), "alice", "pw"); err != nil {
					t.Fatal(err)
				}
				ev := newEvents(t, c)
				ev.want(func(e client.Event) bool { _, ok := e.(client.ContactsEvent); return ok })
				ev.want(func(e client.Event) bool { _, ok := e.(client.InboxEvent); return ok })
				first := slices.Index(addrs, c.Welcome().Node)
				mu.Lock()
				dead = tt.dead(first)
				mu.Unlock()

				close(drop)
				ev.conn(false, false)
				ev.conn(true, false)
				want := (first + 1) % 3
				if tt.dead(first) >= 0 {
					want = (first + 2) % 3
				}
				if got := c.Welcome().Node; got != addrs[want] {
					t.Errorf("reconnected to %s, want %s (first %s, tried %v)", got, addrs[want], addrs[first], tried)
				}
				mu.Lock()
				defer mu.Unlock()
				for i, n := range names {
					if n != "n1.test" && n != "n2.test" && n != "n3.test" {
						t.Errorf("connection %d asked for server name %q, want its address's host", i, n)
					}
				}
			})
		})
	}
}
