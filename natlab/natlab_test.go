package natlab_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter/natlab"
)

// newLab skips without root and tools, and builds topo.
func newLab(t *testing.T, topo natlab.Topology) *natlab.Lab {
	t.Helper()
	natlab.SkipIfUnavailable(t)
	start := time.Now()
	lab, err := natlab.New(t, topo)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s built in %v: namespaces %s", topo.Name, time.Since(start).Round(time.Millisecond),
		strings.Join(lab.Namespaces(), " "))
	return lab
}

// TestTopologies proves each named topology with the probe: the mapping
// each client's router gives (the same outside address towards every
// destination, or not, or no UDP at all), TCP to the server from every
// client, and whether classic hole punching between the two clients works
// both ways.
func TestTopologies(t *testing.T) {
	cases := []struct {
		topo    natlab.Topology
		mapping map[string]string
		punch   bool
	}{
		{natlab.SameLAN(), map[string]string{"a": "independent", "b": "independent"}, true},
		{natlab.TwoHomeRouters(), map[string]string{"a": "independent", "b": "independent"}, true},
		{natlab.SymmetricAndHome(), map[string]string{"a": "dependent", "b": "independent"}, false},
		{natlab.BothSymmetric(), map[string]string{"a": "dependent", "b": "dependent"}, false},
		{natlab.UDPBlocked(), map[string]string{"a": "blocked", "b": "independent"}, false},
	}
	if len(cases) != len(natlab.Topologies()) {
		t.Fatalf("%d cases for %d named topologies", len(cases), len(natlab.Topologies()))
	}
	for _, c := range cases {
		t.Run(c.topo.Name, func(t *testing.T) {
			t.Parallel()
			if c.topo.DirectPossible != c.punch {
				t.Errorf("DirectPossible = %v, but punching should give %v", c.topo.DirectPossible, c.punch)
			}
			lab := newLab(t, c.topo)
			res := runProbe(t, lab, probeOptions{window: 3 * time.Second})
			for _, h := range lab.Hosts() {
				r := res[h.Name()]
				router := lab.Router(h.Name()).IP()
				t.Logf("%s (LAN %s, router %s): local port %d, mapped %v %s; TCP %v %s; punch %+v",
					h.Name(), h.IP(), router, r.Port, r.Mapped, r.MappedErr, r.TCP, r.TCPErr, r.Punch)
				if got, want := mapping(r), c.mapping[h.Name()]; got != want {
					t.Errorf("%s: mapping %s (%v), want %s", h.Name(), got, r.Mapped, want)
				}
				for _, a := range r.Mapped {
					if a.IsValid() && a.Addr() != router {
						t.Errorf("%s: echo saw %v, want its router's address %v", h.Name(), a, router)
					}
				}
				if r.TCPErr != "" || r.TCP.Addr() != router {
					t.Errorf("%s: TCP to the server: saw %v (%s), want from %v", h.Name(), r.TCP, r.TCPErr, router)
				}
				if c.punch && !r.Punch.OK() {
					t.Errorf("%s: hole punching failed: %+v", h.Name(), r.Punch)
				}
				if !c.punch && (r.Punch.Heard || r.Punch.Acked) {
					t.Errorf("%s: hole punching got through: %+v", h.Name(), r.Punch)
				}
			}
		})
	}
}

// TestConntrackLesson shows why the routers drop unsolicited inbound
// traffic on their WAN side. Between two EIM home routers, a punches first
// and b one second later. With the drop, a's early punches die at b's
// router and b's later ones open the path. Without it, a's early punches
// leave a conntrack entry on b's router whose reply tuple is exactly b's
// future flow, so b's router maps that flow to a new outside port (seen in
// its conntrack table), and punching fails where no real home router would
// make it fail.
func TestConntrackLesson(t *testing.T) {
	noFirewall := natlab.TwoHomeRouters()
	noFirewall.Name = "TwoHomeRoutersNoWANFirewall"
	for i := range noFirewall.Sites {
		noFirewall.Sites[i].NoWANFirewall = true
	}
	for _, c := range []struct {
		topo  natlab.Topology
		punch bool
	}{
		{natlab.TwoHomeRouters(), true},
		{noFirewall, false},
	} {
		t.Run(c.topo.Name, func(t *testing.T) {
			t.Parallel()
			lab := newLab(t, c.topo)
			res := runProbe(t, lab, probeOptions{stagger: time.Second, window: 3 * time.Second})
			for _, h := range lab.Hosts() {
				r := res[h.Name()]
				t.Logf("%s: mapped %v; punch %+v", h.Name(), r.Mapped, r.Punch)
				if r.Punch.OK() != c.punch {
					t.Errorf("%s: punching worked: %v, want %v", h.Name(), r.Punch.OK(), c.punch)
				}
			}
			// The outside port b's router gave b's flow towards a.
			a, b := res["a"], res["b"]
			table, err := lab.Router("b").Command("cat", "/proc/net/nf_conntrack").Output()
			if err != nil {
				t.Logf("no conntrack table to look at (%v)", err)
				return
			}
			port, ok := outsidePort(string(table), lab.Host("b").IP(), b.Port, a.Mapped[0])
			if !ok {
				t.Fatalf("no conntrack entry for b's flow to %v in\n%s", a.Mapped[0], table)
			}
			remapped := port != b.Mapped[0].Port()
			t.Logf("b's flow to a goes out from port %d; its echo mapping is %v", port, b.Mapped[0])
			if remapped == c.punch {
				t.Errorf("b's router re-mapped b's flow to a: %v, want %v; table:\n%s", remapped, !c.punch, table)
			}
		})
	}
}

// outsidePort finds, in a /proc/net/nf_conntrack table, the UDP flow from
// host:port to dst and returns the router's outside port for it (the
// destination port of the reply direction).
func outsidePort(table string, host netip.Addr, port uint16, dst netip.AddrPort) (uint16, bool) {
	orig := fmt.Sprintf("src=%s dst=%s sport=%d dport=%d ", host, dst.Addr(), port, dst.Port())
	for _, line := range strings.Split(table, "\n") {
		if !strings.Contains(line, " udp ") || !strings.Contains(line, orig) {
			continue
		}
		f := strings.Fields(line[strings.Index(line, orig)+len(orig):])
		for _, kv := range f {
			if v, ok := strings.CutPrefix(kv, "dport="); ok {
				p, err := strconv.ParseUint(v, 10, 16)
				return uint16(p), err == nil
			}
		}
	}
	return 0, false
}

// TestNoHairpin checks what the README says: the routers do not hairpin,
// so two hosts on one LAN cannot reach each other through their public
// mappings (ICE must use their host candidates).
func TestNoHairpin(t *testing.T) {
	t.Parallel()
	lab := newLab(t, natlab.SameLAN())
	res := runProbe(t, lab, probeOptions{window: time.Second, public: true})
	for _, h := range lab.Hosts() {
		if r := res[h.Name()]; r.Punch.Heard || r.Punch.Acked {
			t.Errorf("%s: punching through the router's public address worked: %+v", h.Name(), r.Punch)
		}
	}
}

// TestHostsAndCleanup checks the addressing, Command, and that the lab
// leaves no namespace behind.
func TestHostsAndCleanup(t *testing.T) {
	lab := newLab(t, natlab.TwoHomeRouters())
	want := map[string]string{
		"a": "192.168.1.10/24", "b": "192.168.1.20/24", "server": "203.0.113.10/24",
	}
	for name, addr := range want {
		h := lab.Host(name)
		out, err := h.Command("ip", "-4", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", name, err, out)
		}
		if !strings.Contains(string(out), " "+addr+" ") {
			t.Errorf("%s: eth0 is %q, want %s", name, out, addr)
		}
		if h.IP().String() != strings.TrimSuffix(addr, "/24") {
			t.Errorf("%s: IP() = %v, want %s", name, h.IP(), addr)
		}
	}
	if got := lab.ServerIP(); got != netip.MustParseAddr("203.0.113.10") {
		t.Errorf("ServerIP = %v", got)
	}
	if a, b := lab.Router("a").IP(), lab.Router("b").IP(); a.String() != "203.0.113.101" || b.String() != "203.0.113.102" {
		t.Errorf("routers at %v and %v", a, b)
	}
	// A process still running inside is killed at Close.
	sleeper := lab.Host("a").Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	nss := lab.Namespaces()
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Wait(); err == nil {
		t.Error("sleep inside the lab ended normally; want killed")
	}
	left := namespaces(t)
	for _, ns := range nss {
		if slices.Contains(left, ns) {
			t.Errorf("namespace %s left after Close", ns)
		}
	}
}

// TestSweep checks that New's sweep deletes namespaces of dead processes
// and keeps those of live ones.
func TestSweep(t *testing.T) {
	natlab.SkipIfUnavailable(t)
	// Above any pid_max (2^22), so no process has it.
	dead := "nl" + strconv.FormatInt(1<<22+1, 36) + "-zzinet"
	live := "nl" + strconv.FormatInt(int64(os.Getpid()), 36) + "-zzsrv"
	for _, ns := range []string{dead, live} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	swept, err := natlab.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Another test binary's sweep may have taken dead first.
	if slices.Contains(swept, live) {
		t.Errorf("swept %v, including %s of this live process", swept, live)
	}
	left := namespaces(t)
	if slices.Contains(left, dead) || !slices.Contains(left, live) {
		t.Errorf("namespaces after the sweep: %v", left)
	}
}

func namespaces(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// TestBadTopology needs no root: topologies are checked before anything
// is built.
func TestBadTopology(t *testing.T) {
	for _, topo := range []natlab.Topology{
		{Name: "empty"},
		{Name: "no hosts", Sites: []natlab.Site{{}}},
		{Name: "long name", Sites: []natlab.Site{{Hosts: []string{"alice"}}}},
		{Name: "twice", Sites: []natlab.Site{{Hosts: []string{"a"}}, {Hosts: []string{"a"}}}},
		{Name: "IPv6 LAN", Sites: []natlab.Site{{Hosts: []string{"a"}, LAN: netip.MustParsePrefix("fd00::/64")}}},
		{Name: "unknown NAT", Sites: []natlab.Site{{NAT: 7, Hosts: []string{"a"}}}},
	} {
		if _, err := natlab.New(t, topo); err == nil {
			t.Errorf("%s: New succeeded", topo.Name)
		} else {
			t.Logf("%s: %v", topo.Name, err)
		}
	}
}

// Example_natterd shows how an end-to-end test runs natterd and natter in
// a lab. The paths stand for binaries the test has built (go build into
// t.TempDir()); there is no output to check.
func Example_natterd() {
	var t *testing.T // the test's
	natterd, natter := "/path/to/natterd", "/path/to/natter"

	natlab.SkipIfUnavailable(t)
	lab, err := natlab.New(t, natlab.TwoHomeRouters())
	if err != nil {
		t.Fatal(err)
	}
	ip := lab.ServerIP().String()
	data := t.TempDir()
	srv := lab.Server().Command(natterd, "--data", data, "--listen", ip+":7443",
		"--http", "", "--hosts", ip)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() }) // runs before the lab's own cleanup

	// a is behind its home router; natterd sees it as lab.Router("a").IP().
	listen := lab.Host("a").Command(natter, "--server", ip+":7443", "--home", t.TempDir(), "listen", "--json")
	_ = listen
}
