package test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/natterim/natter"
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
	// They come from ten other addresses than the real user's (127.0.0.1),
	// 500 each: under the per-address limit, so it is the handshake timeout
	// that must cope with them.
	for i := range stalled {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%10))}}
		c, err := d.Dial("tcp", in.Addr)
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

// TestLimits: each per-user and per-address limit refuses with a clear,
// retryable error and lets the user go on once the wait is over.
func TestLimits(t *testing.T) {
	t.Run("messages per second", func(t *testing.T) {
		in := servertest.Start(t, func(c *server.Config) { c.MsgsPerSecond = 5 }) // bursts of 20
		a := signup(t, in, "alice")
		b := signup(t, in, "bob")
		befriend(t, a, b)
		var limited *wire.Err
		for i := 0; i < 40 && limited == nil; i++ {
			_, err := a.try(wire.Send{ID: natter.NewMessageID(time.Now()), To: "bob", Body: []byte("x")}, wire.TSendAck)
			if errCode(err) == wire.CodeRateLimited {
				limited = err.(*wire.Err)
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if limited == nil || limited.RetryAfter <= 0 || limited.Message == "" {
			t.Fatalf("no clear rate limit after a burst of sends: %+v", limited)
		}
		time.Sleep(time.Duration(limited.RetryAfter)*time.Millisecond + 50*time.Millisecond)
		sendMsg(t, a, "bob", "after the wait")
		if metric(t, in, "natter_rate_limited_total") < 1 {
			t.Error("natter_rate_limited_total did not count it")
		}
	})
	t.Run("contact requests per hour", func(t *testing.T) {
		in := servertest.Start(t, func(c *server.Config) { c.ContactReqsPerHour = 10 }) // bursts of 2
		a := signup(t, in, "alice")
		for _, u := range []string{"bob", "carol", "dave"} {
			signup(t, in, u)
		}
		a.call(wire.ContactOp{Op: natter.OpAdd, User: "bob"}, wire.TOK)
		a.call(wire.ContactOp{Op: natter.OpAdd, User: "carol"}, wire.TOK)
		_, err := a.try(wire.ContactOp{Op: natter.OpAdd, User: "dave"}, wire.TOK)
		if e, ok := err.(*wire.Err); !ok || e.Code != wire.CodeRateLimited || e.RetryAfter < 60_000 {
			t.Fatalf("third request in a burst of 2 at 10/hour: %v", err)
		}
		// Other operations are not limited.
		a.call(wire.ContactOp{Op: natter.OpRemove, User: "bob"}, wire.TOK)
	})
	t.Run("connections per address", func(t *testing.T) {
		in := servertest.Start(t, func(c *server.Config) { c.MaxConnsPerIP = 5 })
		var open []*raw
		for range 5 {
			open = append(open, hello(t, in))
		}
		// The sixth from the same address is refused before TLS.
		if c, err := tls.Dial("tcp", in.Addr, in.ClientTLS()); err == nil {
			c.Close()
			t.Fatal("a sixth connection from one address was accepted")
		}
		// Another address is not affected.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		c, err := tls.DialWithDialer(&d, "tcp", in.Addr, in.ClientTLS())
		if err != nil {
			t.Fatalf("another address: %v", err)
		}
		c.Close()
		// Closing one makes room.
		open[0].c.Close()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := tls.Dial("tcp", in.Addr, in.ClientTLS())
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no room after a connection closed: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
