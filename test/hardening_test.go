package test

import (
	"net"
	"testing"
	"time"

	"github.com/natterim/natter/internal/server"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// TestStalledHandshakesDoNotBlockLogins: thousands of connections that never
// finish (or never start) the TLS handshake do not stop a real user from
// logging in promptly, and the server drops them at the handshake timeout.
func TestStalledHandshakesDoNotBlockLogins(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections")
	}
	const stalled = 5000
	in := servertest.Start(t, func(c *server.Config) { c.HandshakeTimeout = 3 * time.Second })
	signup(t, in, "alice")

	conns := make([]net.Conn, 0, stalled)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Half say nothing; half send the first bytes of a TLS record and stop.
	for i := range stalled {
		c, err := net.DialTimeout("tcp", in.Addr, 5*time.Second)
		if err != nil {
			t.Fatalf("stalled connection %d: %v", i, err)
		}
		if i%2 == 1 {
			c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00})
		}
		conns = append(conns, c)
	}

	start := time.Now()
	r := hello(t, in)
	r.call(wire.Login{User: "alice", Password: "password-alice", Device: "d1"}, wire.TAuthed)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("login took %v behind %d stalled handshakes", d, stalled)
	}
	t.Logf("login behind %d stalled handshakes took %v", stalled, time.Since(start).Round(time.Millisecond))

	// The stalled ones are dropped at the handshake timeout.
	dropped := 0
	buf := make([]byte, 1)
	for _, c := range conns[:100] {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				dropped++
			}
		}
	}
	if dropped != 100 {
		t.Fatalf("%d of 100 stalled connections dropped by the server", dropped)
	}
}
