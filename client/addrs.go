package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/natterim/natter/client/internal/transport"
)

// Several server addresses.
//
// A Client may be given several addresses of natterd nodes (Options.Addr
// and Options.Addrs); a host name that resolves to several IP addresses
// counts as several (unless Options.Dialer is set: it then resolves
// names). The first connection goes to one of them at random, so that
// clients spread over the nodes; if it fails, the others are tried in
// turn. When a connection fails or drops, the next attempt starts at the
// address after the one that was in use, and the reconnection waits
// (reconnectLoop) grow exponentially with full jitter, so that when a
// node dies its clients spread over the others in time as well.

// target is one address to connect to.
type target struct {
	addr string // host:port (an IP once resolved) or a ws(s):// URL
	host string // the name to check the certificate against, and where STUN/TURN is
}

// serverList returns the server addresses of o: Addr, then Addrs, without
// repeats, each checked.
func serverList(o Options) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, a := range append([]string{o.Addr}, o.Addrs...) {
		if a == "" || seen[a] {
			continue
		}
		if _, err := transport.ServerHost(a); err != nil {
			return nil, fmt.Errorf("server address %q: %w", a, err)
		}
		seen[a] = true
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("Options.Addr or Options.Addrs is required")
	}
	return out, nil
}

// targets returns the addresses to try, names resolved.
func (c *Client) targets(ctx context.Context) []target {
	var ts []target
	for _, a := range c.addrs {
		host, _ := transport.ServerHost(a) // checked by serverList
		_, port, err := net.SplitHostPort(a)
		if err != nil || c.opts.Dialer != nil || net.ParseIP(host) != nil {
			ts = append(ts, target{a, host}) // a URL, an IP, or the Dialer resolves
			continue
		}
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil || len(ips) == 0 {
			ts = append(ts, target{a, host}) // the dial says why
			continue
		}
		for _, ip := range ips {
			ts = append(ts, target{net.JoinHostPort(ip, port), host})
		}
	}
	return ts
}

// connect opens a connection to one of the server's addresses: the one
// after the last connection's (at random the first time), then the others
// in turn, each given an equal share of the time left. A refusal by the
// server is returned as a wrapped *wire.Err.
func (c *Client) connect(ctx context.Context) (*conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dialTimeout)
		defer cancel()
	}
	ts := c.targets(ctx)
	c.mu.Lock()
	last := c.target
	c.mu.Unlock()
	start := -1
	for i, t := range ts {
		if t.addr == last.addr {
			start = i + 1
		}
	}
	if start < 0 {
		start = rand.N(len(ts))
	}
	var errs []error
	for i := range ts {
		t := ts[(start+i)%len(ts)]
		dl, _ := ctx.Deadline()
		tctx, cancel := context.WithTimeout(ctx, time.Until(dl)/time.Duration(len(ts)-i))
		cn, err := c.connectTo(tctx, t)
		cancel()
		if err == nil {
			return cn, nil
		}
		if len(ts) == 1 || ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return nil, err
		}
		c.log.Debug("connect", "addr", t.addr, "err", err)
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// tlsFor returns the TLS configuration for t: the Client's, with t's host
// as the server name unless Options.TLSConfig names one.
func (c *Client) tlsFor(t target) *tls.Config {
	if c.tlsConfig.ServerName != "" {
		return c.tlsConfig
	}
	tc := c.tlsConfig.Clone()
	tc.ServerName = t.host
	return tc
}

// serverHost returns the host of the address of the latest connection:
// where natterd's STUN/TURN service is unless it says otherwise.
func (c *Client) serverHost() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.target.host
}
