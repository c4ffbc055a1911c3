// Package natstest starts nats-server processes for tests: a server of the
// test's own, on a free port, with JetStream in a temporary folder, that
// the test can stop and start again (a NATS restart mid-test). Tests that
// cannot find nats-server end through internal/testenv.Unavailable (a skip,
// or a failure under CI).
package natstest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/natterim/natter/internal/testenv"
)

// Server is one test's nats-server process.
type Server struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	conf string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts a nats-server with JetStream, on 127.0.0.1 and a free port,
// with the extra configuration lines given (e.g. "max_payload: 1024"). It
// is stopped when the test ends.
func Start(t testing.TB, conf string) *Server {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nats-server"); serr != nil {
			testenv.Unavailable(t, "nats-server is not installed: %v", err)
		}
		bin = "/usr/sbin/nats-server"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: bin, port: port, dir: dir, conf: path}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's nats:// URL.
func (s *Server) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// Restart starts the server (again, after Stop: same port, same store
// folder) and waits until it takes connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "-c", s.conf, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port),
		"-js", "-sd", filepath.Join(s.dir, "js"), "-l", filepath.Join(s.dir, "nats.log"))
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "nats.log"))
			s.t.Fatalf("nats-server exited: %s", log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server does not take connections on port %d: %v", s.port, err)
		}
	}
}

// Stop ends the server (SIGINT, then SIGKILL after 5 s) and waits for it.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}
