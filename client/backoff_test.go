package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/tlscert"
	"github.com/natterim/natter/wire"
)

// TestReconnectBackoff checks the reconnection schedule in a synctest
// bubble (fake time, in-memory connections): waits start at ReconnectMin,
// double after every failed attempt up to ReconnectMax, are jittered
// within [0, d] (full jitter), and the session resumes once the server is
// back.
func TestReconnectBackoff(t *testing.T) {
	cert, err := tlscert.LoadOrCreate(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	const (
		minWait  = 100 * time.Millisecond
		maxWait  = 2 * time.Second
		failures = 8 // reconnection attempts refused before one succeeds
	)
	synctest.Test(t, func(t *testing.T) {
		var (
			mu       sync.Mutex
			attempts []time.Time
		)
		drop := make(chan struct{})
		serve := func(nc net.Conn, first bool) {
			tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}})
			fc := &fakeConn{t: t, nc: tc, r: wire.NewReader(tc, 0)}
			expect[wire.Hello](fc)
			fc.write(wire.Welcome{V: wire.Version, Keepalive: 3600, MaxBody: wire.MaxBody})
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
			// Stay up until the client closes.
			for {
				if _, ok := fc.tryRead().(error); ok {
					return
				}
			}
		}
		o := client.Options{
			Addr: "127.0.0.1:7443",
			// The bubble's clock starts in 2000: check the certificate
			// at a time it is valid.
			TLSConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1",
				Time: func() time.Time { return cert.Leaf.NotBefore.Add(time.Hour) }},
			Device:       "dev1",
			ReconnectMin: minWait,
			ReconnectMax: maxWait,
			Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
				mu.Lock()
				attempts = append(attempts, time.Now())
				n := len(attempts)
				mu.Unlock()
				if n > 1 && n <= 1+failures {
					return nil, errors.New("connection refused")
				}
				cli, srv := net.Pipe()
				go serve(srv, n == 1)
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

		droppedAt := time.Now()
		close(drop)
		ev.conn(false, false)
		select { // the whole schedule takes about 11s of the bubble's time
		case e := <-c.Events():
			if ce, ok := e.(client.ConnEvent); !ok || !ce.Up {
				t.Fatalf("got %T %+v, want ConnEvent{Up: true}", e, e)
			}
		case <-time.After(time.Minute):
			t.Fatal("not reconnected")
		}

		mu.Lock()
		defer mu.Unlock()
		if len(attempts) != 2+failures {
			t.Fatalf("%d dial attempts, want %d", len(attempts), 2+failures)
		}
		prev, wait := droppedAt, minWait
		for i, at := range attempts[1:] {
			d := at.Sub(prev)
			if d > wait {
				t.Errorf("attempt %d after %v, want within [0, %v]", i+1, d, wait)
			}
			prev, wait = at, min(2*wait, maxWait)
		}
	})
}
