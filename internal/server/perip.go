package server

import (
	"net"
	"sync"
)

// perIP counts open connections by client address, to refuse one address
// more than its share. Addresses are not users: many people can share one
// behind a NAT, so the limit is generous.
type perIP struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newPerIP(max int) *perIP { return &perIP{max: max, n: map[string]int{}} }

// acquire counts a new connection from addr; false means the address is
// over its limit and the connection is to be refused.
func (p *perIP) acquire(addr net.Addr) (string, bool) {
	host := hostOf(addr)
	if p.max <= 0 {
		return host, true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[host] >= p.max {
		return host, false
	}
	p.n[host]++
	return host, true
}

// release uncounts a connection acquired for host.
func (p *perIP) release(host string) {
	if p.max <= 0 {
		return
	}
	p.mu.Lock()
	if p.n[host]--; p.n[host] <= 0 {
		delete(p.n, host)
	}
	p.mu.Unlock()
}

func hostOf(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}
