// Package natlab builds real NAT topologies on one Linux machine, for
// tests that run real natterd and natter processes across real routers.
//
// A lab is a set of network namespaces joined by veth pairs:
//
//   - "inet", the public segment: a bridge on 203.0.113.0/24 (a
//     documentation range; nothing leaves the machine), with .1 as a
//     gateway that forwards nothing;
//   - the server host on that segment, 203.0.113.10 (and .11, a second
//     address for tests that need two destinations), where natterd runs;
//   - one router per Site, WAN 203.0.113.101, .102, ..., LAN .1 of the
//     site's subnet, with iptables MASQUERADE (EIM) or MASQUERADE
//     --random-fully (symmetric), a home router's firewall (nothing
//     unsolicited from the WAN side: conntrack state NEW arriving there is
//     dropped before it can create an entry) and optionally no UDP at all;
//   - one namespace per client host on its site's LAN, default route via
//     its router.
//
// IPv6 is off in every namespace, so the lab is IPv4 only. Labs are
// independent: many can run at once, in one test binary or several.
//
// Tests call SkipIfUnavailable first, then New; the lab is deleted when
// the test ends. Host.Command runs a program inside a namespace. See the
// README for the topologies drawn and for why the WAN-side drop matters.
package natlab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Addresses of the public segment: its gateway and the server's two.
var (
	gatewayIP = netip.AddrFrom4([4]byte{203, 0, 113, 1})
	serverIP1 = netip.AddrFrom4([4]byte{203, 0, 113, 10})
	serverIP2 = netip.AddrFrom4([4]byte{203, 0, 113, 11})
)

const publicBits = 24

// routerWAN is site i's router's address on the public segment.
func routerWAN(i int) netip.Addr { return netip.AddrFrom4([4]byte{203, 0, 113, byte(101 + i)}) }

// nth returns address n of the /24 p.
func nth(p netip.Prefix, n int) netip.Addr {
	a := p.Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}

// setupTimeout bounds the creation of one lab; cleanupTimeout its deletion.
const (
	setupTimeout   = 60 * time.Second
	cleanupTimeout = 30 * time.Second
)

// Host is one machine of the lab: a network namespace.
type Host struct {
	name  string
	ns    string
	addrs []netip.Addr
}

// Name is the host's name in the topology: a client's own name, "server",
// "inet", or "r0", "r1", ... for routers.
func (h *Host) Name() string { return h.name }

// Namespace is the network namespace's name, for `ip netns exec` by hand.
func (h *Host) Namespace() string { return h.ns }

// IP is the host's main address: a client's LAN address, the server's
// first public address, a router's WAN address, the public gateway's.
func (h *Host) IP() netip.Addr { return h.addrs[0] }

// Addrs are all the host's addresses, IP first: the server's two public
// addresses; a router's WAN then LAN address.
func (h *Host) Addrs() []netip.Addr { return append([]netip.Addr(nil), h.addrs...) }

// Command returns a command that runs name with args inside the host's
// namespace (through `ip netns exec`, which execs name, so the process
// is name itself and signals reach it). Set its Env, Dir, Stdout... as for
// any exec.Cmd.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
}

// CommandContext is Command, killed when ctx ends.
func (h *Host) CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
}

// Lab is a running topology.
type Lab struct {
	t       testing.TB
	topo    Topology
	id      string
	inet    *Host
	server  *Host
	routers []*Host
	clients []*Host
	byName  map[string]*Host
	siteOf  map[string]int
	nss     []string

	closeOnce sync.Once
	closeErr  error
}

// New builds topo and returns the lab, deleted when t's test ends (or by
// Close). It first sweeps namespaces left by dead natlab runs. Call
// SkipIfUnavailable before it.
func New(t testing.TB, topo Topology) (*Lab, error) {
	t.Helper()
	topo, err := topo.validate()
	if err != nil {
		return nil, fmt.Errorf("natlab: %w", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
	defer cancel()
	if swept, err := Sweep(ctx); err != nil {
		t.Logf("natlab: sweeping stale namespaces: %v", err)
	} else if len(swept) > 0 {
		t.Logf("natlab: deleted stale namespaces %s", strings.Join(swept, " "))
	}

	l := &Lab{t: t, topo: topo, byName: map[string]*Host{}, siteOf: map[string]int{}}
	// The "inet" namespace goes first and doubles as the lab ID's lock:
	// `ip netns add` fails if a parallel lab took the same random ID.
	for try := 0; ; try++ {
		l.id = labID(os.Getpid())
		_, err := run(ctx, "", "ip", "netns", "add", l.id+"inet")
		if err == nil {
			break
		}
		if try == 5 {
			return nil, fmt.Errorf("natlab: %w", err)
		}
	}
	l.nss = append(l.nss, l.id+"inet")
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("natlab: %v", err)
		}
	})
	if err := l.build(ctx); err != nil {
		return nil, fmt.Errorf("natlab: build %s: %w", topo.Name, err)
	}
	return l, nil
}

// build creates everything but the first namespace, in three steps: the
// namespaces, the veth pairs between them, then one script per namespace
// (sysctls, addresses, routes, bridges, iptables).
func (l *Lab) build(ctx context.Context) error {
	l.inet = &Host{name: "inet", ns: l.id + "inet", addrs: []netip.Addr{gatewayIP}}
	l.server = &Host{name: "server", ns: l.id + "srv", addrs: []netip.Addr{serverIP1, serverIP2}}
	l.byName["server"] = l.server
	for i, s := range l.topo.Sites {
		r := &Host{name: fmt.Sprintf("r%d", i), ns: fmt.Sprintf("%sr%d", l.id, i),
			addrs: []netip.Addr{routerWAN(i), nth(s.LAN, 1)}}
		l.routers = append(l.routers, r)
		for _, name := range s.Hosts {
			h := &Host{name: name, ns: l.id + "h" + name,
				addrs: []netip.Addr{nth(s.LAN, 10*(len(l.clients)+1))}}
			l.clients = append(l.clients, h)
			l.byName[name] = h
			l.siteOf[name] = i
		}
	}

	var nsBatch strings.Builder
	for _, h := range l.all()[1:] {
		fmt.Fprintf(&nsBatch, "netns add %s\n", h.ns)
		l.nss = append(l.nss, h.ns)
	}
	if _, err := run(ctx, nsBatch.String(), "ip", "-batch", "-"); err != nil {
		return err
	}

	// veth pairs, created straight into their namespaces, so their names
	// never meet in the root namespace.
	var links strings.Builder
	fmt.Fprintf(&links, "link add eth0 netns %s type veth peer name psrv netns %s\n", l.server.ns, l.inet.ns)
	for i, r := range l.routers {
		fmt.Fprintf(&links, "link add wan netns %s type veth peer name pr%d netns %s\n", r.ns, i, l.inet.ns)
	}
	port := map[int]int{}
	for _, h := range l.clients {
		i := l.siteOf[h.name]
		fmt.Fprintf(&links, "link add eth0 netns %s type veth peer name lan%d netns %s\n", h.ns, port[i], l.routers[i].ns)
		port[i]++
	}
	if _, err := run(ctx, links.String(), "ip", "-batch", "-"); err != nil {
		return err
	}

	scripts := map[*Host]string{l.inet: l.inetScript(), l.server: l.serverScript()}
	for i, r := range l.routers {
		scripts[r] = l.routerScript(i, port[i])
	}
	for _, h := range l.clients {
		scripts[h] = l.clientScript(h)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(scripts))
	for h, script := range scripts {
		wg.Go(func() {
			if _, err := run(ctx, script, "ip", "netns", "exec", h.ns, "sh", "-eu"); err != nil {
				errs <- fmt.Errorf("configure %s: %w", h.name, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return l.waitLinks(ctx)
}

// waitLinks waits until every link of the lab is up and every bridge port
// forwards. The kernel applies carrier changes through its link watcher,
// which batches them up to a second apart: until then a bridge port stays
// disabled and the first packets of a test vanish.
func (l *Lab) waitLinks(ctx context.Context) error {
	for {
		var notReady []string
		for _, h := range l.all() {
			out, err := run(ctx, "", "ip", "-d", "-o", "-n", h.ns, "link", "show")
			if err != nil {
				return err
			}
			for _, line := range strings.Split(out, "\n") {
				f := strings.Fields(line)
				if len(f) < 2 || f[1] == "lo:" {
					continue
				}
				if !strings.Contains(line, " state UP ") || strings.Contains(line, "NO-CARRIER") ||
					(strings.Contains(line, "bridge_slave") && !strings.Contains(line, "bridge_slave state forwarding")) {
					notReady = append(notReady, h.name+"/"+strings.TrimSuffix(f[1], ":"))
				}
			}
		}
		if len(notReady) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("links not up: %s: %w", strings.Join(notReady, " "), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// all returns every host of the lab, inet first.
func (l *Lab) all() []*Host {
	hs := []*Host{l.inet, l.server}
	hs = append(hs, l.routers...)
	return append(hs, l.clients...)
}

// common starts every namespace's script: a shell helper for optional
// sysctls, IPv6 off, loopback up, bridges not seen by iptables.
const common = `opt() { if [ -e "$1" ]; then echo "$2" > "$1"; fi; }
opt /proc/sys/net/ipv6/conf/all/disable_ipv6 1
opt /proc/sys/net/ipv6/conf/default/disable_ipv6 1
opt /proc/sys/net/bridge/bridge-nf-call-iptables 0
opt /proc/sys/net/bridge/bridge-nf-call-arptables 0
ip link set lo up
`

func (l *Lab) inetScript() string {
	var b strings.Builder
	b.WriteString(common)
	fmt.Fprintf(&b, "ip link add br0 type bridge\nip addr add %s/%d dev br0\nip link set br0 up\n", gatewayIP, publicBits)
	fmt.Fprintf(&b, "ip link set psrv master br0 up\n")
	for i := range l.routers {
		fmt.Fprintf(&b, "ip link set pr%d master br0 up\n", i)
	}
	return b.String()
}

func (l *Lab) serverScript() string {
	var b strings.Builder
	b.WriteString(common)
	for _, a := range l.server.addrs {
		fmt.Fprintf(&b, "ip addr add %s/%d dev eth0\n", a, publicBits)
	}
	fmt.Fprintf(&b, "ip link set eth0 up\nip route add default via %s\n", gatewayIP)
	return b.String()
}

func (l *Lab) clientScript(h *Host) string {
	s := l.topo.Sites[l.siteOf[h.name]]
	var b strings.Builder
	b.WriteString(common)
	fmt.Fprintf(&b, "ip addr add %s/%d dev eth0\nip link set eth0 up\nip route add default via %s\n",
		h.IP(), s.LAN.Bits(), nth(s.LAN, 1))
	return b.String()
}

// routerScript configures site i's router with its n LAN ports.
func (l *Lab) routerScript(i, n int) string {
	s := l.topo.Sites[i]
	r := l.routers[i]
	var b strings.Builder
	b.WriteString(common)
	b.WriteString("echo 1 > /proc/sys/net/ipv4/ip_forward\n")
	b.WriteString("opt /proc/sys/net/ipv4/conf/all/rp_filter 0\nopt /proc/sys/net/ipv4/conf/default/rp_filter 0\n")
	fmt.Fprintf(&b, "ip addr add %s/%d dev wan\nip link set wan up\nip route add default via %s\n", r.IP(), publicBits, gatewayIP)
	fmt.Fprintf(&b, "ip link add lan type bridge\nip addr add %s/%d dev lan\nip link set lan up\n", r.Addrs()[1], s.LAN.Bits())
	for p := range n {
		fmt.Fprintf(&b, "ip link set lan%d master lan up\n", p)
	}
	b.WriteString("iptables-restore <<'EOF'\n")
	b.WriteString(routerRules(s))
	b.WriteString("EOF\n")
	return b.String()
}

// routerRules is a site router's iptables, in iptables-restore's format.
func routerRules(s Site) string {
	var b strings.Builder
	b.WriteString("*mangle\n")
	if !s.NoWANFirewall {
		// A home router's firewall: nothing unsolicited from the WAN. Here,
		// after conntrack has classified the packet but before the entry is
		// confirmed, and for the router's own address (INPUT) as well as
		// for forwarding: an unsolicited hole-punching packet then leaves
		// no conntrack entry behind to collide with the LAN host's later
		// outbound flow.
		b.WriteString("-A PREROUTING -i wan -m conntrack --ctstate NEW -j DROP\n")
	}
	b.WriteString("COMMIT\n*nat\n")
	switch s.NAT {
	case Symmetric:
		b.WriteString("-A POSTROUTING -o wan -j MASQUERADE --random-fully\n")
	default:
		b.WriteString("-A POSTROUTING -o wan -j MASQUERADE\n")
	}
	b.WriteString("COMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	if s.BlockUDP {
		b.WriteString("-A FORWARD -p udp -j DROP\n")
	}
	b.WriteString("-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n")
	b.WriteString("-A FORWARD -i lan -o wan -j ACCEPT\n")
	b.WriteString("-A FORWARD -i lan -o lan -j ACCEPT\n")
	b.WriteString("COMMIT\n")
	return b.String()
}

// Topology is the lab's topology, with defaults filled in.
func (l *Lab) Topology() Topology { return l.topo }

// Host returns the client host, or "server". It panics on a name the
// topology does not have: that is a bug in the test.
func (l *Lab) Host(name string) *Host {
	h, ok := l.byName[name]
	if !ok {
		panic(fmt.Sprintf("natlab: topology %s has no host %q", l.topo.Name, name))
	}
	return h
}

// Hosts returns the client hosts in topology order.
func (l *Lab) Hosts() []*Host { return append([]*Host(nil), l.clients...) }

// Server is the host on the public segment where natterd runs.
func (l *Lab) Server() *Host { return l.server }

// ServerIP is the server's main public address, 203.0.113.10.
func (l *Lab) ServerIP() netip.Addr { return l.server.IP() }

// Router returns the router in front of client host name; its IP is its
// public (WAN) address, the one peers and the server see for the host.
func (l *Lab) Router(name string) *Host {
	l.Host(name)
	return l.routers[l.siteOf[name]]
}

// Internet is the public segment's namespace, where the bridge every
// router and the server plug into lives (for tcpdump on br0).
func (l *Lab) Internet() *Host { return l.inet }

// SameSite reports whether client hosts a and b share a LAN.
func (l *Lab) SameSite(a, b string) bool {
	l.Host(a)
	l.Host(b)
	return l.siteOf[a] == l.siteOf[b]
}

// Namespaces returns the names of the lab's network namespaces.
func (l *Lab) Namespaces() []string { return append([]string(nil), l.nss...) }

// Diagnostics returns each router's iptables counters and conntrack table,
// for a failing test's log. The lab logs it itself at cleanup when the test
// failed.
func (l *Lab) Diagnostics(ctx context.Context) string {
	var b strings.Builder
	for _, r := range l.routers {
		out, err := run(ctx, "", "ip", "netns", "exec", r.ns, "sh", "-c",
			"iptables-save -c; cat /proc/net/nf_conntrack 2>/dev/null || true")
		fmt.Fprintf(&b, "== router %s (%s, WAN %s)\n%s", r.name, r.ns, r.IP(), out)
		if err != nil {
			fmt.Fprintf(&b, "(%v)\n", err)
		}
	}
	return b.String()
}

// Close deletes the lab's namespaces, killing any process still running in
// them. New arranges for it to run when the test ends; calling it again
// does nothing.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if l.t.Failed() && len(l.routers) > 0 {
			l.t.Logf("natlab %s (%s) at failure:\n%s", l.topo.Name, l.id, l.Diagnostics(ctx))
		}
		if err := deleteNamespaces(ctx, l.nss); err != nil {
			l.closeErr = fmt.Errorf("delete lab %s: %w", l.id, err)
		}
	})
	return l.closeErr
}
