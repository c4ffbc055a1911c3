package test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// natterdBin builds cmd/natterd once per test binary run.
var natterdBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "natterd-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "natterd")
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build natterd: %w", err)
	}
	cmd := exec.Command(gobin, "build", "-o", bin, "../cmd/natterd")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build natterd: %v\n%s", err, out)
	}
	return bin, nil
})

// proc is a natterd running as a child process.
type proc struct {
	cmd  *exec.Cmd
	addr string
	tls  *tls.Config
}

var listenRE = regexp.MustCompile(`msg=listening kind=tls addr=(\S+)`)

// startProc runs natterd on dataDir at addr ("127.0.0.1:0" for any port).
func startProc(t *testing.T, dataDir, addr string) *proc {
	t.Helper()
	bin, err := natterdBin()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--data", dataDir, "--listen", addr, "--http", "", "--admin", "", "--udp", "",
		"--max-msgs-per-sec", "-1") // the crash test floods from each sender
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	p := &proc{cmd: cmd}
	select {
	case p.addr = <-found:
	case <-time.After(20 * time.Second):
		t.Fatal("natterd did not log its address")
	}
	pem, err := os.ReadFile(filepath.Join(dataDir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	p.tls = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	return p
}

func (p *proc) hello(t *testing.T) *raw {
	t.Helper()
	r := dialTo(t, p.addr, p.tls)
	r.send(wire.Hello{V: wire.Version})
	r.expect(wire.TWelcome)
	return r
}

func (p *proc) signup(t *testing.T, user string) *raw {
	t.Helper()
	r := p.hello(t)
	r.device = natter.NewDeviceID()
	a := r.call(wire.Signup{User: natter.UserID(user), Password: "password-" + user, Device: r.device}, wire.TAuthed).(*wire.Authed)
	r.user, r.token = a.User, a.Token
	r.drainLogin()
	return r
}

// TestSIGKILLLosesNothingAcknowledged kills natterd with SIGKILL while many
// sends are in flight, restarts it, and checks that every acknowledged
// message reaches its recipient exactly once, and that retrying the
// unacknowledged ones (as the SDK does) stores none twice.
func TestSIGKILLLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills natterd")
	}
	dir := t.TempDir()
	p := startProc(t, dir, "127.0.0.1:0")
	const senders = 8
	bob := p.signup(t, "bob")
	var ss []*raw
	for i := range senders {
		s := p.signup(t, fmt.Sprintf("sender%d", i))
		befriend(t, s, bob)
		ss = append(ss, s)
	}
	bobDevice := bob.device
	bob.call(wire.Logout{}, wire.TOK)

	// Each sender pipelines sends without waiting, and records the acks.
	type result struct {
		sent  []natter.MessageID
		acked map[natter.MessageID]bool
	}
	results := make([]result, senders)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, s := range ss {
		results[i].acked = map[natter.MessageID]bool{}
		var mu sync.Mutex
		wg.Go(func() { // writer: at most window sends unacknowledged
			const window = 256
			for n := 0; ; n++ {
				for {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					inFlight := len(results[i].sent) - len(results[i].acked)
					mu.Unlock()
					if inFlight < window {
						break
					}
					time.Sleep(200 * time.Microsecond)
				}
				id := natter.MessageID(fmt.Sprintf("s%d-%06d", i, n))
				b, _ := wire.Encode(wire.Send{Ref: uint64(n + 1), ID: id, To: "bob", Body: []byte("body of " + string(id))})
				mu.Lock()
				results[i].sent = append(results[i].sent, id)
				mu.Unlock()
				s.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := s.c.Write(b); err != nil {
					return
				}
			}
		})
		wg.Go(func() { // reader
			for {
				s.c.SetReadDeadline(time.Now().Add(20 * time.Second))
				f, err := s.r.ReadFrame()
				if err != nil {
					return
				}
				if f.Type != wire.TSendAck {
					continue
				}
				v, err := wire.Decode(f)
				if err != nil {
					continue
				}
				mu.Lock()
				results[i].acked[v.(*wire.SendAck).ID] = true
				mu.Unlock()
			}
		})
	}
	// Kill at the worst moment: in the middle of the flood.
	time.Sleep(1500 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	close(stop)
	for _, s := range ss {
		s.c.Close()
	}
	wg.Wait()

	acked, sent := 0, 0
	for _, r := range results {
		acked += len(r.acked)
		sent += len(r.sent)
	}
	t.Logf("before SIGKILL: %d sends written, %d acknowledged", sent, acked)
	if acked == 0 || acked == sent {
		t.Fatalf("the kill should land with sends in flight: %d acknowledged of %d", acked, sent)
	}

	// Restart on the same data; bob collects his inbox.
	p2 := startProc(t, dir, "127.0.0.1:0")
	got := collectInbox(t, p2, "bob", bobDevice)
	for i, r := range results {
		for id := range r.acked {
			switch got[id] {
			case 1:
			case 0:
				t.Errorf("acknowledged message %s (sender%d) lost", id, i)
			default:
				t.Errorf("acknowledged message %s delivered %d times", id, got[id])
			}
		}
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("message %s delivered %d times", id, n)
		}
	}

	// The senders retry, with the same IDs, every send not acknowledged and
	// the last acknowledged ones; bob must then hold each written message
	// exactly once.
	for i := range ss {
		s := p2.hello(t)
		s.call(wire.Login{User: natter.UserID(fmt.Sprintf("sender%d", i)), Password: fmt.Sprintf("password-sender%d", i), Device: ss[i].device}, wire.TAuthed)
		sent := results[i].sent
		for j, id := range sent {
			if results[i].acked[id] && j < len(sent)-2*256 {
				continue
			}
			s.call(wire.Send{ID: id, To: "bob", Body: []byte("body of " + string(id))}, wire.TSendAck)
		}
	}
	all := collectInbox(t, p2, "bob", "fresh-device")
	for _, r := range results {
		for _, id := range r.sent {
			if all[id] != 1 {
				t.Errorf("after retries, %s held %d times", id, all[id])
			}
		}
	}
	t.Logf("after restart: %d acknowledged all present once; %d written, all present once after retries", acked, sent)
}

// collectInbox logs user in on device and returns how many times each
// message ID arrived in the stored inbox.
func collectInbox(t *testing.T, p *proc, user string, device natter.DeviceID) map[natter.MessageID]int {
	t.Helper()
	r := p.hello(t)
	r.call(wire.Login{User: natter.UserID(user), Password: "password-" + user, Device: device}, wire.TAuthed)
	_, inbox := r.drainLogin()
	got := map[natter.MessageID]int{}
	for _, f := range inbox {
		for _, g := range f.Groups {
			for _, m := range g.Messages {
				got[m.ID]++
			}
		}
	}
	r.c.Close()
	return got
}

// pipelineAndKill writes frames (requests with refs base, base+1, ...) on
// r without waiting, records which the server acknowledges with OK, and
// kills p with SIGKILL once a third of them are acknowledged. It waits for
// p to exit and returns the indexes acknowledged before the kill.
func pipelineAndKill(t *testing.T, p *proc, r *raw, base uint64, frames [][]byte) map[int]bool {
	t.Helper()
	n := len(frames)
	go func() {
		for _, b := range frames {
			r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := r.c.Write(b); err != nil {
				return
			}
		}
	}()
	acked := map[int]bool{}
	killed := false
	for {
		v, err := r.read(10 * time.Second)
		if err != nil {
			if !killed {
				t.Fatalf("read before the kill: %v", err)
			}
			break
		}
		switch m := v.(type) {
		case *wire.OK:
			acked[int(m.Ref-base)] = true
		case *wire.Error:
			t.Fatalf("request %d: %s: %s", m.Ref-base, m.Code, m.Message)
		}
		if !killed && len(acked) >= n/3 {
			p.cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
		if len(acked) == n {
			t.Fatal("every request was acknowledged before the kill landed; make them slower")
		}
	}
	p.cmd.Wait()
	t.Logf("%d of %d requests acknowledged before SIGKILL", len(acked), n)
	return acked
}
