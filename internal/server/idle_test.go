package server_test

import (
	"bytes"
	"crypto/tls"
	"runtime"
	"testing"
	"time"

	"github.com/natterim/natter/internal/server"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// rawClient is a TLS connection that speaks frames by hand.
type rawClient struct {
	t *testing.T
	c *tls.Conn
	r *wire.Reader
}

func dialRaw(t *testing.T, in *servertest.Instance) *rawClient {
	t.Helper()
	c, err := tls.Dial("tcp", in.Addr, in.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, r: wire.NewReader(c, wire.DefaultMaxFrame)}
}

func (rc *rawClient) send(v any) {
	rc.t.Helper()
	b, err := wire.Encode(v)
	if err != nil {
		rc.t.Fatal(err)
	}
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawClient) expect(want wire.Type) any {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	f, err := rc.r.ReadFrame()
	if err != nil {
		rc.t.Fatalf("waiting for %s: %v", want, err)
	}
	if f.Type != want {
		rc.t.Fatalf("got %s, want %s", f.Type, want)
	}
	v, err := wire.Decode(f)
	if err != nil {
		rc.t.Fatal(err)
	}
	return v
}

// serverGoroutines counts the goroutines whose stacks contain each of
// the given function names.
func serverGoroutines(names ...string) map[string]int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	counts := map[string]int{}
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		for _, name := range names {
			if bytes.Contains(g, []byte(name)) {
				counts[name]++
			}
		}
	}
	return counts
}

// TestIdleTLSConnectionsWaitWithoutReading checks the memory design of an
// idle TLS connection (docs/performance.md, "Memory per idle
// connection"): it has one goroutine, waiting for input on the socket,
// none blocked in a TLS read and no writer; and it still answers, again
// and again, and meets its keepalive timeout.
func TestIdleTLSConnectionsWaitWithoutReading(t *testing.T) {
	const (
		waiting = "hub.(*client).wait("
		reading = "hub.(*client).readLoop("
		writing = "session.(*Writer).flush("
	)
	in := servertest.Start(t, func(c *server.Config) { c.Keepalive = 3 * time.Second })
	const n = 20
	var cs []*rawClient
	for range n {
		rc := dialRaw(t, in)
		rc.send(wire.Hello{V: wire.Version, Client: "idle test"})
		rc.expect(wire.TWelcome)
		cs = append(cs, rc)
	}
	for round := range 3 {
		for i, rc := range cs {
			rc.send(wire.Ping{Ref: uint64(round*n + i + 1)})
			if p := rc.expect(wire.TPong).(*wire.Pong); p.Ref != uint64(round*n+i+1) {
				t.Fatalf("round %d: pong %d", round, p.Ref)
			}
		}
		// The readers park soon after their Pong: no event marks it.
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := serverGoroutines(waiting, reading, writing)
			if got[waiting] == n && got[reading] == 0 && got[writing] == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d connections idle; goroutines waiting for input %d, in a read loop %d, writing %d; want %d, 0, 0",
					round, n, got[waiting], got[reading], got[writing], n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Silent past the keepalive: told so, then closed.
	bye := cs[0].expect(wire.TBye).(*wire.Bye)
	if bye.Code != wire.CodeTimeout {
		t.Fatalf("bye %q, want %q", bye.Code, wire.CodeTimeout)
	}
}
