package test

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/server"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// TestSIGTERMDrains: SIGTERM says Bye{shutdown} to every client, and natterd
// exits 0 promptly.
func TestSIGTERMDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("builds natterd")
	}
	p := startProc(t, t.TempDir(), "127.0.0.1:0")
	a := p.signup(t, "alice")
	idle := p.hello(t) // not even logged in
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	for _, r := range []*raw{a, idle} {
		if bye := r.closed(10 * time.Second); bye == nil || bye.Code != wire.CodeShutdown {
			t.Errorf("bye %+v, want shutdown", bye)
		}
	}
	err := p.cmd.Wait()
	if err != nil {
		t.Fatalf("natterd exit: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}

// TestLoginFloodDoesNotStarveRouting: while many logins are being hashed
// (argon2id at full cost), messages between logged-in users keep flowing.
func TestLoginFloodDoesNotStarveRouting(t *testing.T) {
	in := servertest.Start(t, func(c *server.Config) { c.HashWorkers = 2 })
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	befriend(t, a, b)
	// The flood: 60 connections signing up (each one argon2id hash at full
	// cost, and unlike wrong passwords never throttled), in a loop, for the
	// duration of the test.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			r := hello(t, in)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				b, _ := wire.Encode(wire.Signup{Ref: uint64(n + 1), User: natter.UserID(fmt.Sprintf("flood%d-%d", i, n)), Password: "flood-password", Device: "d"})
				if n > 0 { // a new connection for each signup: a connection holds one login
					r.c.Close()
					r = hello(t, in)
				}
				r.c.SetDeadline(time.Now().Add(20 * time.Second))
				if _, err := r.c.Write(b); err != nil {
					return
				}
				if _, err := r.r.ReadFrame(); err != nil {
					return
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(300 * time.Millisecond) // let the pool fill
	var worst time.Duration
	for i := range 20 {
		start := time.Now()
		sendMsg(t, a, "bob", fmt.Sprint("during the flood ", i))
		for {
			m := b.expect(wire.TMsg).(*wire.Msg)
			if string(m.Body) == fmt.Sprint("during the flood ", i) {
				break
			}
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("worst send-to-delivery during a login flood: %v; sign-ups hashed meanwhile: %v", worst, metric(t, in, "natter_logins_total")-2)
	if worst > 2*time.Second {
		t.Fatalf("routing starved: a message took %v during the login flood", worst)
	}
}
