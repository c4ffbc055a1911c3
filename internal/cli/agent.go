package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

// A home is one device, and the server keeps one connection per device. So
// while a long-lived command (natter listen, natter chat, the terminal UI)
// is online with a home, another natter command of the same home does not
// connect to the server itself: it hands its command line to the running
// process over a Unix socket in the home (the agent, as tailscale's CLI
// talks to tailscaled), which runs it on its own connection and streams the
// output back. The user's presence does not flap, the peer-to-peer channels
// stay up, and every message is received, shown and logged by one process.
//
// The socket lives in the home (mode 0700, so only its owner can connect)
// and is made before the long-lived command connects: a command that comes
// meanwhile waits for the connection. Only the holder of online.lock makes
// it, so a socket file it finds at start was left by a process that died,
// and is replaced.
//
// The protocol is private to one version of natter: the command sends one
// JSON line (agentRequest); the agent answers with frames of a kind byte,
// a 4-byte big-endian length and the payload: standard output, standard
// error, and last the exit status.
const agentSocket = "agent.sock"

// Frame kinds from the agent.
const (
	agentOut  byte = 1
	agentErr  byte = 2
	agentExit byte = 3
	// agentGone: the long-lived command is ending and ran nothing; the
	// command connects to the server itself.
	agentGone byte = 4
)

// agentRequest is a command handed to the agent.
type agentRequest struct {
	Args []string          `json:"args"` // the command line, without the program name
	Cwd  string            `json:"cwd"`  // the caller's working folder, for relative paths
	Env  map[string]string `json:"env"`  // the caller's NATTER_* variables and TZ
}

// agentEnv lists the variables a handed-over command sees from its caller.
var agentEnv = []string{"NATTER_HOME", "NATTER_SERVER", "NO_COLOR", "TZ"}

// agentPath returns where the home's agent socket is: in the home, or, when
// that path is too long for a Unix socket address (about 104 bytes), in a
// private folder of the temporary folder named after the home.
func (h home) agentPath() (string, error) {
	p := h.path(agentSocket)
	if len(p) < 100 {
		return p, nil
	}
	abs, err := filepath.Abs(h.dir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("natter-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("agent socket folder: %w", err)
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		return "", fmt.Errorf("agent socket folder %s is not a private folder", dir)
	}
	return filepath.Join(dir, hex.EncodeToString(sum[:8])+".sock"), nil
}

// agent serves the home's socket for a long-lived command: it runs the
// commands handed to it on the command's current connection.
type agent struct {
	ln     net.Listener
	path   string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	parent *runner // the long-lived command: its streams and clock

	running sync.WaitGroup // the handed-over commands under way

	mu       sync.Mutex
	c        *client.Client // the current connection, nil between sessions
	s        storedSession
	ready    chan struct{} // closed while c is set
	ended    bool
	watchers map[int]func(client.Event)
	nextW    int
	// onSent, if set (the terminal UI), hears of each message a
	// handed-over command sent, so that the open conversation shows it.
	onSent func(to natter.UserID, text string, res client.SendResult)
}

// setOnSent sets onSent.
func (a *agent) setOnSent(fn func(to natter.UserID, text string, res client.SendResult)) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onSent = fn
}

// sent tells onSent of a message a handed-over command sent.
func (a *agent) sent(to natter.UserID, text string, res client.SendResult) {
	a.mu.Lock()
	fn := a.onSent
	a.mu.Unlock()
	if fn != nil {
		fn(to, text, res)
	}
}

// startAgent makes the home's agent socket for r, which holds online.lock.
func (r *runner) startAgent() error {
	path, err := r.home.agentPath()
	if err != nil {
		return err
	}
	os.Remove(path) // left by a process that died: online.lock is ours
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("agent socket: %w", err)
	}
	os.Chmod(path, 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	a := &agent{ln: ln, path: path, cancel: cancel, parent: r, ready: make(chan struct{}), watchers: map[int]func(client.Event){}}
	a.wg.Add(1)
	go a.accept(ctx)
	r.agent = a
	return nil
}

// set makes c the connection handed-over commands use.
func (a *agent) set(c *client.Client, s storedSession) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.c, a.s = c, s
	close(a.ready)
}

// unset says the connection set last is closing: commands that come now
// wait for the next one.
func (a *agent) unset() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.c != nil {
		a.c = nil
		a.ready = make(chan struct{})
	}
}

// get waits for the current connection.
func (a *agent) get(ctx context.Context) (*client.Client, storedSession, error) {
	for {
		a.mu.Lock()
		c, s, ready, ended := a.c, a.s, a.ready, a.ended
		a.mu.Unlock()
		if ended {
			return nil, s, withCode("busy", "the natter listen or chat of this home ended while this command waited for it")
		}
		if c != nil {
			return c, s, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, s, ctx.Err()
		}
	}
}

// watch has fn see every event of the long-lived command's connection
// until the returned function is called.
func (a *agent) watch(fn func(client.Event)) (stop func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := a.nextW
	a.nextW++
	a.watchers[id] = fn
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.watchers, id)
	}
}

// publish shows ev to the handed-over commands that watch events.
func (a *agent) publish(ev client.Event) {
	if a == nil {
		return
	}
	a.mu.Lock()
	fns := make([]func(client.Event), 0, len(a.watchers))
	for _, fn := range a.watchers {
		fns = append(fns, fn)
	}
	a.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// stop ends the agent: it takes no more commands (those that come now
// run by themselves), lets the ones under way finish on the connection,
// which the caller closes only after, and removes the socket. It may be
// called more than once.
func (a *agent) stop() {
	if a == nil {
		return
	}
	a.mu.Lock()
	if a.ended {
		a.mu.Unlock()
		return
	}
	a.ended = true
	if a.c == nil {
		close(a.ready) // commands waiting for a connection give up
		a.ready = make(chan struct{})
	}
	a.mu.Unlock()
	a.ln.Close()
	os.Remove(a.path)
	a.running.Wait()
	a.cancel()
	a.wg.Wait()
}

// begin registers a handed-over command, unless the agent is ending.
func (a *agent) begin() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ended {
		return false
	}
	a.running.Add(1)
	return true
}

func (a *agent) accept(ctx context.Context) {
	defer a.wg.Done()
	for {
		conn, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.serve(ctx, conn)
		}()
	}
}

// serve runs one handed-over command.
func (a *agent) serve(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return
	}
	var req agentRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return
	}
	fw := &frameWriter{w: conn}
	if !a.begin() {
		fw.frame(agentGone, nil)
		return
	}
	defer a.running.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // the caller went away (Ctrl-C): end its command
		io.Copy(io.Discard, br)
		cancel()
	}()
	sub := &runner{
		stdio:  Stdio{In: strings.NewReader(""), Out: fw.stream(agentOut), Err: fw.stream(agentErr)},
		getenv: func(k string) string { return req.Env[k] },
		now:    a.parent.now,
		via:    a,
		cwd:    req.Cwd,
	}
	code := sub.main(ctx, req.Args)
	sub.closeHistory()
	sub.releaseLocks()
	fw.frame(agentExit, []byte{byte(code)})
}

// frameWriter writes the agent's frames; its streams may be written from
// several goroutines.
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *frameWriter) frame(kind byte, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var h [5]byte
	h[0] = kind
	binary.BigEndian.PutUint32(h[1:], uint32(len(p)))
	if _, err := f.w.Write(h[:]); err != nil {
		return err
	}
	_, err := f.w.Write(p)
	return err
}

func (f *frameWriter) stream(kind byte) io.Writer { return streamWriter{f, kind} }

type streamWriter struct {
	f    *frameWriter
	kind byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	if err := s.f.frame(s.kind, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// handOver runs the command line args in the home's agent, if a long-lived
// command serves it: ok is false when none does, and the command runs here.
func (r *runner) handOver(ctx context.Context, args []string) (code int, ok bool) {
	conn, err := r.dialAgent(ctx)
	if err != nil {
		return 0, false // no agent (or one that died): connect ourselves
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	cwd, _ := os.Getwd()
	req := agentRequest{Args: args, Cwd: cwd, Env: map[string]string{}}
	for _, k := range agentEnv {
		if v := r.getenv(k); v != "" {
			req.Env[k] = v
		}
	}
	if req.Env["NATTER_HOME"] == "" {
		req.Env["NATTER_HOME"] = r.home.dir
	}
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return 0, false
	}
	br := bufio.NewReader(conn)
	for {
		kind, p, err := readAgentFrame(br)
		if err != nil {
			if ctx.Err() != nil {
				return ExitError, true
			}
			return r.report(fmt.Errorf("the natter listen or chat of this home ended while it ran this command: %w", err)), true
		}
		switch kind {
		case agentOut:
			r.stdio.Out.Write(p)
		case agentErr:
			r.stdio.Err.Write(p)
		case agentExit:
			if len(p) == 1 {
				return int(p[0]), true
			}
			return ExitError, true
		case agentGone:
			return 0, false // it ran nothing: connect ourselves
		}
	}
}

// readAgentFrame reads one of the agent's frames.
func readAgentFrame(r io.Reader) (kind byte, p []byte, err error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	p = make([]byte, binary.BigEndian.Uint32(h[1:]))
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	return h[0], p, nil
}

// dialAgent connects to the home's agent socket.
func (r *runner) dialAgent(ctx context.Context) (net.Conn, error) {
	path, err := r.home.agentPath()
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "unix", path)
}

// agentRunning reports whether a long-lived command serves the home.
func (r *runner) agentRunning(ctx context.Context) bool {
	conn, err := r.dialAgent(ctx)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// abs resolves a path the user gave against their working folder (which,
// for a command handed to the agent, is the caller's).
func (r *runner) abs(path string) string {
	if filepath.IsAbs(path) || r.cwd == "" {
		return path
	}
	return filepath.Join(r.cwd, path)
}
