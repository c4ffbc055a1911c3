package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func addrOf(pc *net.UDPConn) netip.AddrPort {
	return unmap(pc.LocalAddr().(*net.UDPAddr).AddrPort())
}

// serve runs f until the test ends and checks it returned no error.
func serve(t *testing.T, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

func TestMappedOnLoopback(t *testing.T) {
	e1, e2 := listenUDP(t), listenUDP(t)
	serve(t, func(ctx context.Context) error { return ServeUDP(ctx, e1) })
	serve(t, func(ctx context.Context) error { return ServeUDP(ctx, e2) })
	client := listenUDP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := Mapped(ctx, client, []netip.AddrPort{addrOf(e1), addrOf(e2)})
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range got {
		if a != addrOf(client) {
			t.Errorf("echo %d saw %v, want %v", i, a, addrOf(client))
		}
	}
}

func TestMappedNoReply(t *testing.T) {
	silent := listenUDP(t) // never answers
	client := listenUDP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	got, err := Mapped(ctx, client, []netip.AddrPort{addrOf(silent)})
	if !errors.Is(err, ErrNoReply) {
		t.Fatalf("err = %v, want ErrNoReply", err)
	}
	if got[0].IsValid() {
		t.Errorf("got %v from a silent endpoint", got[0])
	}
}

func TestMappedTCPOnLoopback(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, func(ctx context.Context) error { return ServeTCP(ctx, ln) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := MappedTCP(ctx, unmap(ln.Addr().(*net.TCPAddr).AddrPort()))
	if err != nil {
		t.Fatal(err)
	}
	if a.Addr() != netip.MustParseAddr("127.0.0.1") || a.Port() == 0 {
		t.Errorf("TCP echo saw %v", a)
	}
}

func TestPunch(t *testing.T) {
	t.Run("both ways", func(t *testing.T) {
		a, b := listenUDP(t), listenUDP(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		var ra, rb PunchResult
		var ea, eb error
		wg.Go(func() { ra, ea = Punch(ctx, a, addrOf(b), "a", 20*time.Millisecond, 100*time.Millisecond) })
		wg.Go(func() { rb, eb = Punch(ctx, b, addrOf(a), "b", 20*time.Millisecond, 100*time.Millisecond) })
		wg.Wait()
		if ea != nil || eb != nil {
			t.Fatal(ea, eb)
		}
		if !ra.OK() || !rb.OK() {
			t.Fatalf("a: %+v, b: %+v; want both OK", ra, rb)
		}
		if ra.From != addrOf(b) || rb.From != addrOf(a) {
			t.Errorf("a heard from %v, b from %v", ra.From, rb.From)
		}
	})
	t.Run("silent peer", func(t *testing.T) {
		a, silent := listenUDP(t), listenUDP(t)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		r, err := Punch(ctx, a, addrOf(silent), "a", 20*time.Millisecond, 0)
		if err != nil {
			t.Fatal(err)
		}
		if r.Heard || r.Acked || r.Sent < 2 {
			t.Errorf("result %+v, want nothing heard after several punches", r)
		}
	})
}
