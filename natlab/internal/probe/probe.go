// Package probe measures NAT behaviour from inside a lab: a "what is my
// address" echo server (UDP and TCP), the client side that asks several
// echo endpoints from one UDP socket (the same mapped address from all of
// them means endpoint-independent mapping), and a classic hole-punching
// attempt between two clients.
//
// Datagrams are short text lines:
//
//	whoami NONCE          client → echo
//	iam NONCE ADDR:PORT   echo → client: the address the echo saw
//	punch ID              client → peer, repeatedly
//	ack ID                peer → client, for every punch received
//
// Over TCP the echo writes "iam - ADDR:PORT\n" and closes.
package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// ErrNoReply is returned when an echo endpoint never answered.
var ErrNoReply = errors.New("no reply")

// resend is how often unanswered datagrams are sent again.
const resend = 50 * time.Millisecond

// ServeUDP answers every "whoami" datagram on pc with the sender's
// address, until ctx ends.
func ServeUDP(ctx context.Context, pc *net.UDPConn) error {
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("echo read: %w", err)
		}
		f := strings.Fields(string(buf[:n]))
		if len(f) != 2 || f[0] != "whoami" {
			continue
		}
		from = unmap(from)
		if _, err := pc.WriteToUDPAddrPort(fmt.Appendf(nil, "iam %s %s", f[1], from), from); err != nil {
			return fmt.Errorf("echo write to %s: %w", from, err)
		}
	}
}

// ServeTCP writes each connecting client's address to it and closes the
// connection, until ctx ends.
func ServeTCP(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("echo accept: %w", err)
		}
		fmt.Fprintf(c, "iam - %s\n", c.RemoteAddr())
		c.Close()
	}
}

// Mapped asks each echo endpoint, from pc, which address it sees, sending
// again until all have answered or ctx ends. The result has one address
// per endpoint, the zero AddrPort where none came (then the error wraps
// ErrNoReply).
func Mapped(ctx context.Context, pc *net.UDPConn, echoes []netip.AddrPort) ([]netip.AddrPort, error) {
	got := make([]netip.AddrPort, len(echoes))
	left := len(echoes)
	buf := make([]byte, 1500)
	for next := time.Now(); left > 0; {
		if ctx.Err() != nil {
			var missing []string
			for i, a := range got {
				if !a.IsValid() {
					missing = append(missing, echoes[i].String())
				}
			}
			return got, fmt.Errorf("whoami %s: %w", strings.Join(missing, ", "), ErrNoReply)
		}
		if !time.Now().Before(next) {
			for i, e := range echoes {
				if !got[i].IsValid() {
					if _, err := pc.WriteToUDPAddrPort(fmt.Appendf(nil, "whoami %d", i), e); err != nil {
						return got, fmt.Errorf("whoami %s: %w", e, err)
					}
				}
			}
			next = time.Now().Add(resend)
		}
		msg, from, err := readUntil(ctx, pc, buf, next)
		if err != nil {
			return got, err
		}
		f := strings.Fields(msg)
		if len(f) != 3 || f[0] != "iam" {
			continue
		}
		var i int
		if _, err := fmt.Sscanf(f[1], "%d", &i); err != nil || i < 0 || i >= len(echoes) || from != echoes[i] {
			continue
		}
		a, err := netip.ParseAddrPort(f[2])
		if err != nil || got[i].IsValid() {
			continue
		}
		got[i] = a
		left--
	}
	return got, nil
}

// MappedTCP connects to the echo endpoint over TCP and returns the address
// it saw.
func MappedTCP(ctx context.Context, echo netip.AddrPort) (netip.AddrPort, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp4", echo.String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("whoami over TCP: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("whoami over TCP %s: %w", echo, err)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "iam" {
		return netip.AddrPort{}, fmt.Errorf("whoami over TCP %s: bad answer %q", echo, line)
	}
	a, err := netip.ParseAddrPort(f[2])
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("whoami over TCP %s: %w", echo, err)
	}
	return unmap(a), nil
}

// PunchResult is what one side of a hole-punching attempt saw.
type PunchResult struct {
	// Heard is set when a punch from the peer arrived; From is where
	// from (the peer's mapping towards us, maybe not the one we aimed at).
	Heard bool           `json:"heard"`
	From  netip.AddrPort `json:"from"`
	// Acked is set when the peer acknowledged one of our punches: the
	// path works both ways.
	Acked bool `json:"acked"`
	// Sent counts our punches; Elapsed is the time to success, or the
	// whole attempt.
	Sent    int           `json:"sent"`
	Elapsed time.Duration `json:"elapsed"`
}

// OK reports whether the punch worked both ways.
func (r PunchResult) OK() bool { return r.Heard && r.Acked }

// Punch sends "punch id" from pc to peer every interval, acknowledging
// every punch it receives, until it has both heard the peer and been
// acknowledged (then it lingers for linger, still answering, so the peer
// can finish too) or ctx ends. Only a failure of pc is an error; a punch
// that does not get through is a result.
func Punch(ctx context.Context, pc *net.UDPConn, peer netip.AddrPort, id string, interval, linger time.Duration) (PunchResult, error) {
	var r PunchResult
	start := time.Now()
	end := time.Time{} // set once successful
	buf := make([]byte, 1500)
	for next := time.Now(); ; {
		now := time.Now()
		if ctx.Err() != nil || (!end.IsZero() && !now.Before(end)) {
			if !r.OK() {
				r.Elapsed = now.Sub(start)
			}
			return r, nil
		}
		if !now.Before(next) {
			if _, err := pc.WriteToUDPAddrPort([]byte("punch "+id), peer); err != nil {
				return r, fmt.Errorf("punch %s: %w", peer, err)
			}
			r.Sent++
			next = now.Add(interval)
		}
		wake := next
		if !end.IsZero() && end.Before(wake) {
			wake = end
		}
		msg, from, err := readUntil(ctx, pc, buf, wake)
		if err != nil {
			return r, err
		}
		f := strings.Fields(msg)
		if len(f) != 2 {
			continue
		}
		switch {
		case f[0] == "punch" && f[1] != id:
			if !r.Heard {
				r.Heard, r.From = true, from
			}
			if _, err := pc.WriteToUDPAddrPort([]byte("ack "+f[1]), from); err != nil {
				return r, fmt.Errorf("ack %s: %w", from, err)
			}
		case f[0] == "ack" && f[1] == id:
			r.Acked = true
		}
		if r.OK() && end.IsZero() {
			r.Elapsed = time.Since(start)
			end = time.Now().Add(linger)
		}
	}
}

// readUntil reads one datagram, waiting no later than deadline or the end
// of ctx; on timeout it returns an empty message and no error.
func readUntil(ctx context.Context, pc *net.UDPConn, buf []byte, deadline time.Time) (string, netip.AddrPort, error) {
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	pc.SetReadDeadline(deadline)
	n, from, err := pc.ReadFromUDPAddrPort(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "", netip.AddrPort{}, nil
	}
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("read: %w", err)
	}
	return string(buf[:n]), unmap(from), nil
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
