package natlab

import (
	"fmt"
	"net/netip"
	"regexp"
)

// NAT is how a site's router maps its LAN's outbound flows to its WAN
// address.
type NAT int

const (
	// EIM is endpoint-independent mapping, what a typical home router
	// does: MASQUERADE, which keeps one outside port for one inside
	// socket whatever the destination (and keeps the port number itself
	// when it is free). Filtering is still address- and port-dependent,
	// as conntrack matches whole 5-tuples.
	EIM NAT = iota
	// Symmetric is endpoint-dependent mapping: MASQUERADE --random-fully
	// picks a fresh random outside port for every new destination, so the
	// address a STUN server reports is useless to any other peer.
	Symmetric
)

func (n NAT) String() string {
	switch n {
	case EIM:
		return "EIM"
	case Symmetric:
		return "symmetric"
	}
	return fmt.Sprintf("NAT(%d)", int(n))
}

// Site is a LAN behind one router: the router's NAT and firewall, and the
// client hosts plugged into the LAN.
type Site struct {
	// NAT is the router's mapping behaviour.
	NAT NAT
	// BlockUDP makes the router drop every forwarded UDP packet, both
	// ways: the site's hosts reach the public segment over TCP only (a
	// corporate firewall).
	BlockUDP bool
	// Hosts are the client hosts' names: 1 to 4 characters from [a-z0-9],
	// unique in the topology. They are numbered across the whole topology
	// in order: the first gets .10 in its LAN, the second .20, and so on.
	Hosts []string
	// LAN is the site's subnet. The zero value is 192.168.1.0/24 for every
	// site, as in real homes: two home LANs with the same addresses, so a
	// host candidate from the other side never works by accident. The
	// router takes the first address (.1).
	LAN netip.Prefix
	// NoWANFirewall leaves out the router's drop of unsolicited inbound
	// traffic on its WAN side. No real home router behaves like that; it
	// exists to demonstrate why the drop is needed (see the README): an
	// early punching packet creates a conntrack entry that makes the
	// router re-map the later outbound flow.
	NoWANFirewall bool
}

// Topology is a lab: the public segment with its server host, and one or
// more sites.
type Topology struct {
	// Name says what the lab is, for logs.
	Name string
	// Sites are the LANs, each behind its own router on the public segment.
	Sites []Site
	// DirectPossible says whether two clients of this topology can reach
	// each other directly (host or server-reflexive candidates, classic
	// hole punching). Where it is false, a working system must relay
	// (TURN) or go through the server. The probe in natlab's tests checks
	// this claim for every named topology.
	DirectPossible bool
}

// SameLAN has hosts "a" and "b" on one LAN behind one EIM home router:
// they reach each other directly with their LAN addresses.
func SameLAN() Topology {
	return Topology{
		Name:           "SameLAN",
		Sites:          []Site{{NAT: EIM, Hosts: []string{"a", "b"}}},
		DirectPossible: true,
	}
}

// TwoHomeRouters has "a" and "b" each behind its own EIM home router (both
// LANs 192.168.1.0/24): hole punching with the addresses a STUN-style
// server reports works.
func TwoHomeRouters() Topology {
	return Topology{
		Name: "TwoHomeRouters",
		Sites: []Site{
			{NAT: EIM, Hosts: []string{"a"}},
			{NAT: EIM, Hosts: []string{"b"}},
		},
		DirectPossible: true,
	}
}

// SymmetricAndHome has "a" behind a symmetric NAT and "b" behind an EIM
// home router. Conntrack filters on the whole 5-tuple (port-restricted),
// so a's fresh mapping towards b is never let in by b's router, and b's
// packets towards a's reported address are not let in by a's: no direct
// path.
func SymmetricAndHome() Topology {
	return Topology{
		Name: "SymmetricAndHome",
		Sites: []Site{
			{NAT: Symmetric, Hosts: []string{"a"}},
			{NAT: EIM, Hosts: []string{"b"}},
		},
	}
}

// BothSymmetric has "a" and "b" each behind a symmetric NAT: no direct
// path.
func BothSymmetric() Topology {
	return Topology{
		Name: "BothSymmetric",
		Sites: []Site{
			{NAT: Symmetric, Hosts: []string{"a"}},
			{NAT: Symmetric, Hosts: []string{"b"}},
		},
	}
}

// UDPBlocked has "a" behind a router that forwards no UDP at all (its TCP
// connections get through) and "b" behind an EIM home router: no direct
// path, and no UDP relay for a either; a can use TCP only.
func UDPBlocked() Topology {
	return Topology{
		Name: "UDPBlocked",
		Sites: []Site{
			{NAT: EIM, BlockUDP: true, Hosts: []string{"a"}},
			{NAT: EIM, Hosts: []string{"b"}},
		},
	}
}

// Topologies returns the five named topologies of issue 4, in order, for
// table-driven tests.
func Topologies() []Topology {
	return []Topology{SameLAN(), TwoHomeRouters(), SymmetricAndHome(), BothSymmetric(), UDPBlocked()}
}

var hostNameRE = regexp.MustCompile(`^[a-z0-9]{1,4}$`)

// defaultLAN is every site's subnet unless Site.LAN says otherwise.
var defaultLAN = netip.MustParsePrefix("192.168.1.0/24")

// Limits that keep addresses and interface names simple.
const (
	maxSites = 50 // routers are .101 to .150 on the public segment
	maxHosts = 24 // clients are .10 to .240 in their LANs
)

// validate checks t and fills in defaults, returning the checked copy.
func (t Topology) validate() (Topology, error) {
	if len(t.Sites) == 0 {
		return t, fmt.Errorf("topology %q: no sites", t.Name)
	}
	if len(t.Sites) > maxSites {
		return t, fmt.Errorf("topology %q: %d sites, at most %d", t.Name, len(t.Sites), maxSites)
	}
	seen := map[string]bool{}
	n := 0
	sites := make([]Site, len(t.Sites))
	for i, s := range t.Sites {
		if len(s.Hosts) == 0 {
			return t, fmt.Errorf("topology %q: site %d has no hosts", t.Name, i)
		}
		if s.NAT != EIM && s.NAT != Symmetric {
			return t, fmt.Errorf("topology %q: site %d: unknown %v", t.Name, i, s.NAT)
		}
		if !s.LAN.IsValid() {
			s.LAN = defaultLAN
		}
		if !s.LAN.Addr().Is4() || s.LAN.Bits() != 24 {
			return t, fmt.Errorf("topology %q: site %d: LAN %v: want an IPv4 /24", t.Name, i, s.LAN)
		}
		s.LAN = s.LAN.Masked()
		for _, h := range s.Hosts {
			if !hostNameRE.MatchString(h) {
				return t, fmt.Errorf("topology %q: host name %q: want 1 to 4 characters from [a-z0-9]", t.Name, h)
			}
			if seen[h] {
				return t, fmt.Errorf("topology %q: host %q twice", t.Name, h)
			}
			seen[h] = true
			n++
		}
		s.Hosts = append([]string(nil), s.Hosts...)
		sites[i] = s
	}
	if n > maxHosts {
		return t, fmt.Errorf("topology %q: %d hosts, at most %d", t.Name, n, maxHosts)
	}
	t.Sites = sites
	return t, nil
}
