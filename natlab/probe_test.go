package natlab_test

// The NAT-behaviour probe: this test binary runs itself inside the lab's
// namespaces, in the role named by $NATLAB_PROBE (see TestMain), and the
// tests drive those processes over their standard input and output, one
// JSON value a line.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter/internal/testenv"
	"github.com/natterim/natter/natlab"
	"github.com/natterim/natter/natlab/internal/probe"
)

// Environment of a probe process.
const (
	envRole = "NATLAB_PROBE"     // "echo" or "client"
	envUDP  = "NATLAB_PROBE_UDP" // comma-separated echo endpoints (UDP)
	envTCP  = "NATLAB_PROBE_TCP" // the echo endpoint over TCP
)

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case "":
		os.Exit(testenv.Main(m)) // says what skipped, even without -v
	case "echo":
		os.Exit(report(echoMain()))
	case "client":
		os.Exit(report(clientMain()))
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", envRole, os.Getenv(envRole))
		os.Exit(2)
	}
}

func report(err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	return 0
}

func endpoints() ([]netip.AddrPort, netip.AddrPort, error) {
	var udp []netip.AddrPort
	for _, s := range strings.Split(os.Getenv(envUDP), ",") {
		a, err := netip.ParseAddrPort(s)
		if err != nil {
			return nil, netip.AddrPort{}, fmt.Errorf("%s: %w", envUDP, err)
		}
		udp = append(udp, a)
	}
	tcp, err := netip.ParseAddrPort(os.Getenv(envTCP))
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("%s: %w", envTCP, err)
	}
	return udp, tcp, nil
}

// echoMain serves the echo endpoints, says "ready", and stops when its
// standard input closes.
func echoMain() error {
	udp, tcp, err := endpoints()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, len(udp)+1)
	var wg sync.WaitGroup
	for _, a := range udp {
		pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(a))
		if err != nil {
			return err
		}
		wg.Go(func() { errs <- probe.ServeUDP(ctx, pc) })
	}
	ln, err := net.Listen("tcp4", tcp.String())
	if err != nil {
		return err
	}
	wg.Go(func() { errs <- probe.ServeTCP(ctx, ln) })
	fmt.Println("ready")
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// clientReport is what a probe client learnt from the echo endpoints.
type clientReport struct {
	Port      uint16           `json:"port"` // its UDP socket's local port
	Mapped    []netip.AddrPort `json:"mapped"`
	MappedErr string           `json:"mapped_err,omitempty"`
	TCP       netip.AddrPort   `json:"tcp"`
	TCPErr    string           `json:"tcp_err,omitempty"`
}

// punchOrder tells a probe client whom to punch: after Delay, for Window.
type punchOrder struct {
	Peer   netip.AddrPort `json:"peer"`
	ID     string         `json:"id"`
	Delay  time.Duration  `json:"delay"`
	Window time.Duration  `json:"window"`
}

// clientMain asks the echo endpoints from one UDP socket, reports, then
// punches from that same socket as ordered, and reports the result.
func clientMain() error {
	udp, tcp, err := endpoints()
	if err != nil {
		return err
	}
	pc, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return err
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	mapped, err := probe.Mapped(ctx, pc, udp)
	cancel()
	rep := clientReport{Port: uint16(pc.LocalAddr().(*net.UDPAddr).Port), Mapped: mapped}
	if err != nil {
		rep.MappedErr = err.Error()
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	rep.TCP, err = probe.MappedTCP(ctx, tcp)
	cancel()
	if err != nil {
		rep.TCPErr = err.Error()
	}
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(rep); err != nil {
		return err
	}
	var order punchOrder
	if err := json.NewDecoder(os.Stdin).Decode(&order); err != nil {
		return fmt.Errorf("read punch order: %w", err)
	}
	time.Sleep(order.Delay)
	ctx, cancel = context.WithTimeout(context.Background(), order.Window)
	defer cancel()
	res, err := probe.Punch(ctx, pc, order.Peer, order.ID, 50*time.Millisecond, 500*time.Millisecond)
	if err != nil {
		return err
	}
	return out.Encode(res)
}

// proc is a probe process in a lab host, driven by the test.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *json.Decoder
	lines  *bufio.Reader
	stderr bytes.Buffer
}

// startProbe runs this test binary in role inside h. It is stopped when the
// test ends, before the lab is deleted.
func startProbe(t *testing.T, h *natlab.Host, role string, udp []netip.AddrPort, tcp netip.AddrPort) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var eps []string
	for _, a := range udp {
		eps = append(eps, a.String())
	}
	p := &proc{t: t, name: role + "@" + h.Name(), cmd: h.Command(exe)}
	p.cmd.Env = append(os.Environ(), envRole+"="+role, envUDP+"="+strings.Join(eps, ","), envTCP+"="+tcp.String(),
		// Under -race, a process sleeps a second at exit by default.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.lines = bufio.NewReader(out)
	p.stdout = json.NewDecoder(p.lines)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	t.Cleanup(p.stop)
	return p
}

// stop closes the process's input and waits for it, killing it if it takes
// more than a few seconds.
func (p *proc) stop() {
	p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			p.t.Errorf("%s: %v; stderr:\n%s", p.name, err, p.stderr.String())
		}
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
		p.t.Errorf("%s did not stop; stderr:\n%s", p.name, p.stderr.String())
	}
}

// recv decodes the process's next output line into v.
func (p *proc) recv(v any) {
	p.t.Helper()
	if err := p.stdout.Decode(v); err != nil {
		p.t.Fatalf("%s: read: %v; stderr:\n%s", p.name, err, p.stderr.String())
	}
}

// send writes v to the process as a JSON line.
func (p *proc) send(v any) {
	p.t.Helper()
	if err := json.NewEncoder(p.stdin).Encode(v); err != nil {
		p.t.Fatalf("%s: write: %v", p.name, err)
	}
}

// probeResult is one client's view of the lab.
type probeResult struct {
	clientReport
	Punch probe.PunchResult
}

// probeOptions shape a probe run.
type probeOptions struct {
	// stagger delays the second client's punching, after the first starts.
	stagger time.Duration
	// window is how long each client punches.
	window time.Duration
	// public makes clients on a shared LAN aim at each other's public
	// mapping too, not their LAN address (to test hairpinning).
	public bool
}

// runProbe runs the echo on the server and a probe client on each client
// host: mapped addresses from three echo endpoints (two ports of one
// server address, and the second address), then every client punches the
// next one (a → b → a for two) at the address it would learn from a
// rendezvous server: the LAN address on a shared LAN, otherwise the
// address the first echo endpoint saw (or, with no echo answer, its
// router's address and its local port: the best guess anyone has).
func runProbe(t *testing.T, lab *natlab.Lab, o probeOptions) map[string]probeResult {
	t.Helper()
	srv := lab.Server().Addrs()
	udp := []netip.AddrPort{
		netip.AddrPortFrom(srv[0], 3478), netip.AddrPortFrom(srv[0], 3479), netip.AddrPortFrom(srv[1], 3478),
	}
	tcp := netip.AddrPortFrom(srv[0], 3478)
	echo := startProbe(t, lab.Server(), "echo", udp, tcp)
	if line, err := echo.lines.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("echo: %q, %v; stderr:\n%s", line, err, echo.stderr.String())
	}

	hosts := lab.Hosts()
	procs := make([]*proc, len(hosts))
	res := map[string]probeResult{}
	for i, h := range hosts {
		procs[i] = startProbe(t, h, "client", udp, tcp)
	}
	for i, h := range hosts {
		var r probeResult
		procs[i].recv(&r.clientReport)
		res[h.Name()] = r
	}
	for i, h := range hosts {
		peer := hosts[(i+1)%len(hosts)]
		pr := res[peer.Name()]
		var to netip.AddrPort
		switch {
		case lab.SameSite(h.Name(), peer.Name()) && !o.public:
			to = netip.AddrPortFrom(peer.IP(), pr.Port)
		case pr.Mapped[0].IsValid():
			to = pr.Mapped[0]
		default:
			to = netip.AddrPortFrom(lab.Router(peer.Name()).IP(), pr.Port)
		}
		var delay time.Duration
		if i > 0 {
			delay = o.stagger
		}
		procs[i].send(punchOrder{Peer: to, ID: h.Name(), Delay: delay, Window: o.window})
	}
	for i, h := range hosts {
		r := res[h.Name()]
		procs[i].recv(&r.Punch)
		res[h.Name()] = r
	}
	return res
}

// mapping classifies the NAT mapping behaviour a client saw.
func mapping(r probeResult) string {
	all, same := true, true
	for _, a := range r.Mapped {
		all = all && a.IsValid()
		same = same && a == r.Mapped[0]
	}
	switch {
	case !all:
		return "blocked" // some echo endpoint never answered
	case same:
		return "independent"
	default:
		return "dependent"
	}
}
