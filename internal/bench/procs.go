package bench

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/natterim/natter"
)

// # Spreading a run over processes (--procs N)
//
// One natter-bench process simulating thousands of users is one Go runtime
// (one scheduler, one garbage collector) competing with natterd for the
// machine's cores. With --procs N the parent starts N copies of itself,
// each with --part K/N: part K connects users [K·U/N, (K+1)·U/N) and sends
// at its share of --rate, taking the other users as connected elsewhere.
// All share the run's ID, so each recognises the others' messages.
//
// The protocol between parent and part, one JSON object a line:
//
//	part → parent (stdout): {"ready":"connected"}  its users are logged in
//	parent → part (stdin):  {"go":true}            every part's are: add contacts
//	part → parent (stdout): {"ready":"contacts"}   its users added their contacts
//	parent → part (stdin):  {"start":UNIXNANO}     every part's did: send from t0
//	part → parent (stdout): {"report":{...}}       the part's Result, its raw
//	                                                histograms, tokens and keys
//
// (A contact can be added only once it has signed up, in whichever part.)
// Every part starts sending at the same t0, so the warm-up and the window
// are common. The parent reads the server's figures and every part's CPU
// time (/proc/PID/stat) at the window's edges, merges the parts' counts
// (summed) and latency histograms (merged bucket by bucket), and saves the
// tokens and keys the parts report in the state file, which the parts only
// read. A part's logs go to the parent's stderr with part=K.

// startDelay is how long after the last part is ready sending starts: time
// for the start message to reach every part.
const startDelay = 500 * time.Millisecond

// partMsg is one line between a part and the parent.
type partMsg struct {
	Ready  string      `json:"ready,omitempty"` // the phase done: "connected" or "contacts"
	Go     bool        `json:"go,omitempty"`
	Start  int64       `json:"start,omitempty"` // Unix nanoseconds
	Report *partReport `json:"report,omitempty"`
}

// The phases a part reports done, in order.
const (
	phaseConnected = "connected"
	phaseContacts  = "contacts"
)

// partReport is what a part reports at its end.
type partReport struct {
	Result   *Result                           `json:"result"`
	Ack      HistSnapshot                      `json:"ack"`
	Delivery HistSnapshot                      `json:"delivery"`
	Tokens   map[natter.UserID]string          `json:"tokens,omitempty"`
	Keys     map[natter.UserID]json.RawMessage `json:"keys,omitempty"`
}

// partArgs returns the arguments a part gets beyond the parent's own.
func partArgs(k, n int, runID []byte) []string {
	return []string{"--part", fmt.Sprintf("%d/%d", k, n), "--run-id", hex.EncodeToString(runID)}
}

// parsePart parses --part's K/N.
func parsePart(s string) (k, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	if ok {
		k, err = strconv.Atoi(a)
		if err == nil {
			n, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || n < 1 || k < 0 || k >= n {
		return 0, 0, fmt.Errorf("--part %q: want K/N with 0 <= K < N", s)
	}
	return k, n, nil
}

// runAsPart runs cfg as a part: it says when it is ready on out, waits for
// the start on in, and reports on out at the end.
func runAsPart(ctx context.Context, cfg Config, in io.Reader, out io.Writer) error {
	enc := json.NewEncoder(out)
	dec := json.NewDecoder(in)
	cfg.Barrier = func(ctx context.Context, phase string) (time.Time, error) {
		if err := enc.Encode(partMsg{Ready: phase}); err != nil {
			return time.Time{}, err
		}
		got := make(chan partMsg, 1)
		errc := make(chan error, 1)
		go func() {
			var m partMsg
			if err := dec.Decode(&m); err != nil {
				errc <- fmt.Errorf("waiting for the other parts: %w", err)
				return
			}
			got <- m
		}()
		select {
		case m := <-got:
			if m.Start != 0 {
				return time.Unix(0, m.Start), nil
			}
			return time.Time{}, nil
		case err := <-errc:
			return time.Time{}, err
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
	r, err := runBench(ctx, cfg)
	if err != nil {
		return err
	}
	rep := &partReport{Result: r.res, Ack: r.ack.Snapshot(), Delivery: r.delivery.Snapshot(),
		Tokens: map[natter.UserID]string{}, Keys: map[natter.UserID]json.RawMessage{}}
	for _, u := range r.users[r.lo:r.hi] {
		if t := r.state.token(u.name); t != "" {
			rep.Tokens[u.name] = t
		}
		if k := r.state.keys(u.name); k != nil {
			rep.Keys[u.name] = k
		}
	}
	return enc.Encode(partMsg{Report: rep})
}

// part is one child process, seen from the parent.
type part struct {
	k      int
	cmd    *exec.Cmd
	in     io.WriteCloser
	msgs   chan partMsg // what it printed, closed at its end of output
	report *partReport
	// CPU time at the window's edges, from /proc.
	cpu1, cpu2 float64
	ok1, ok2   bool
}

// runProcs runs cfg spread over cfg.Procs processes of exe (natter-bench
// itself), each run with args (the parent's command line) and its part's.
func runProcs(ctx context.Context, cfg Config, exe string, args []string, stderr io.Writer) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	runID := make([]byte, 8)
	var id [8]byte
	newRunID(&id)
	copy(runID, id[:])
	state, err := loadState(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, log: log} // for serverStats
	res := &Result{Config: resultConfig(&cfg)}
	res.Server.Before = r.serverStats(ctx)
	res.Bench.Before = benchStats(true)

	// The parts end on their own after the run; an interrupt of the
	// parent is passed on to them (they then report the shortened window).
	parts := make([]*part, cfg.Procs)
	stopSignals := context.AfterFunc(ctx, func() {
		for _, p := range parts {
			if p != nil && p.cmd.Process != nil {
				p.cmd.Process.Signal(os.Interrupt)
			}
		}
	})
	defer stopSignals()
	var wg sync.WaitGroup
	defer func() {
		for _, p := range parts {
			if p != nil && p.cmd.ProcessState == nil {
				p.cmd.Process.Kill()
			}
		}
		wg.Wait()
	}()
	if _, ok := stderr.(*os.File); !ok {
		// The parts' logs are copied to stderr by a goroutine each.
		stderr = &lockedWriter{w: stderr}
	}
	for k := range parts {
		cmd := exec.Command(exe, append(append([]string(nil), args...), partArgs(k, cfg.Procs, runID)...)...)
		cmd.Stderr = stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("bench: start part %d: %w", k, err)
		}
		p := &part{k: k, cmd: cmd, in: in, msgs: make(chan partMsg, 2)}
		parts[k] = p
		wg.Go(func() {
			defer close(p.msgs)
			dec := json.NewDecoder(bufio.NewReader(out))
			for {
				var m partMsg
				if err := dec.Decode(&m); err != nil {
					if !errors.Is(err, io.EOF) {
						log.Warn("part's output", "part", p.k, "err", err)
					}
					io.Copy(io.Discard, out)
					cmd.Wait()
					return
				}
				p.msgs <- m
			}
		})
	}
	log.Info("started parts", "procs", cfg.Procs)

	// The barriers: every part's users connected, then every part's
	// contacts added.
	encs := make([]*json.Encoder, len(parts))
	for i, p := range parts {
		encs[i] = json.NewEncoder(p.in)
	}
	var t0 time.Time
	for _, phase := range []string{phaseConnected, phaseContacts} {
		for _, p := range parts {
			select {
			case m, ok := <-p.msgs:
				if !ok || m.Ready != phase {
					return nil, fmt.Errorf("bench: part %d ended before it was %s (its log is above)", p.k, phase)
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		msg := partMsg{Go: true}
		if phase == phaseContacts {
			res.Server.Connected = r.serverStats(ctx)
			res.Bench.Connected = benchStats(true)
			t0 = time.Now().Add(startDelay)
			msg = partMsg{Start: t0.UnixNano()}
		}
		for i, p := range parts {
			if err := encs[i].Encode(msg); err != nil {
				return nil, fmt.Errorf("bench: part %d: %w", p.k, err)
			}
		}
	}
	for _, p := range parts {
		p.in.Close()
	}
	if cfg.Idle {
		return holdProcs(ctx, cfg, r, res, parts, state, t0, &wg)
	}
	t1, t2 := t0.Add(cfg.Warmup), t0.Add(cfg.Warmup+cfg.Duration)
	log.Info("sending", "procs", cfg.Procs, "users", cfg.Users, "rate", cfg.Rate, "warmup", cfg.Warmup, "duration", cfg.Duration)

	// The window's edges, as a single process measures them. An interrupt
	// ends the window early; the parts got it too.
	bg := context.WithoutCancel(ctx)
	sleepUntil(ctx, t1)
	srv1, b1 := r.serverStats(bg), benchStats(false)
	m1, mErr := machineCPU()
	for _, p := range parts {
		p.cpu1, p.ok1 = procCPUOf(p.cmd)
	}
	if !sleepUntil(ctx, t2) {
		t2 = time.Now()
	}
	srv2, b2 := r.serverStats(bg), benchStats(false)
	m2, mErr2 := machineCPU()
	for _, p := range parts {
		p.cpu2, p.ok2 = procCPUOf(p.cmd)
	}
	secs := t2.Sub(t1).Seconds()

	// Collect the reports.
	for _, p := range parts {
		for m := range p.msgs {
			if m.Report != nil {
				p.report = m.Report
			}
		}
		if p.report == nil {
			return nil, fmt.Errorf("bench: part %d ended without a report (its log is above)", p.k)
		}
	}
	wg.Wait()
	res.Server.After = r.serverStats(bg)
	if err := mergeParts(res, parts, state); err != nil {
		return nil, err
	}
	if res.WindowSeconds == 0 {
		res.WindowSeconds = secs
	}
	res.Server.window(srv1, srv2, secs, res.Sends.AckedInWindow, res.Deliveries.InWindow)
	// The bench's CPU: every part's and the parent's.
	parent := &ProcResult{Before: res.Bench.Before, Connected: res.Bench.Connected, After: benchStats(false)}
	parent.window(b1, b2, secs, res.Sends.AckedInWindow, res.Deliveries.InWindow)
	res.Parent = parent
	total := parent.CPUInWindow
	for i, p := range parts {
		pr := &res.Parts[i]
		if p.ok1 && p.ok2 && secs > 0 {
			pr.CPUInWindow = (p.cpu2 - p.cpu1) / secs
		}
		total += pr.CPUInWindow
	}
	res.Bench.CPUInWindow = total
	if d := res.Deliveries.InWindow; d > 0 {
		res.Bench.CPUPerMsg = total * secs / float64(d) * 1e6
	}
	res.Bench.After = parent.After
	if mErr == nil && mErr2 == nil && secs > 0 {
		res.MachineCPU = (m2 - m1) / secs
		res.CPUs = runtime.NumCPU()
	}
	if err := state.save(); err != nil {
		log.Warn("cannot save the state file", "err", err)
	}
	return res, nil
}

// idleMargin is how long the parts of an idle run hold their connections
// after the parent's measurement, at the common start plus Hold.
const idleMargin = 3 * time.Second

// holdProcs ends an idle run spread over processes (--idle --procs N):
// every part holds its connections until t0 plus Hold plus idleMargin; at
// t0 plus Hold the parent reads the server's figures, which give the
// memory per connection of all the parts' connections together.
func holdProcs(ctx context.Context, cfg Config, r *runner, res *Result, parts []*part, state *stateFile, t0 time.Time, wg *sync.WaitGroup) (*Result, error) {
	cfg.Logger.Info("holding idle connections", "procs", cfg.Procs, "users", cfg.Users, "for", cfg.Hold)
	bg := context.WithoutCancel(ctx)
	sleepUntil(ctx, t0.Add(cfg.Hold))
	res.Server.Connected = r.serverStats(bg)
	res.Bench.Connected = benchStats(true)
	for _, p := range parts {
		for m := range p.msgs {
			if m.Report != nil {
				p.report = m.Report
			}
		}
		if p.report == nil {
			return nil, fmt.Errorf("bench: part %d ended without a report (its log is above)", p.k)
		}
	}
	wg.Wait()
	res.Server.After = r.serverStats(bg)
	res.Bench.After = benchStats(false)
	if err := mergeParts(res, parts, state); err != nil {
		return nil, err
	}
	res.perConnection()
	// The parent holds no connection: the parts' own figures are theirs.
	res.Bench.RSSPerConn, res.Bench.HeapPerConn, res.Bench.StackPerConn, res.Bench.GoroutinePerConn = 0, 0, 0, 0
	if err := state.save(); err != nil {
		cfg.Logger.Warn("cannot save the state file", "err", err)
	}
	return res, nil
}

// lockedWriter serialises the writes of several goroutines to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// procCPUOf returns a running child's CPU time.
func procCPUOf(cmd *exec.Cmd) (float64, bool) {
	if cmd.Process == nil {
		return 0, false
	}
	v, err := procCPU(strconv.Itoa(cmd.Process.Pid))
	return v, err == nil
}

// mergeParts adds the parts' reports into res: counts summed, histograms
// merged, errors merged by kind, the timeline second by second; and their
// tokens and keys into state.
func mergeParts(res *Result, parts []*part, state *stateFile) error {
	var ack, delivery Histogram
	errs := map[string]*ErrorCount{}
	res.Parts = make([]PartResult, len(parts))
	for i, p := range parts {
		pr := p.report.Result
		if err := ack.AddSnapshot(p.report.Ack); err != nil {
			return err
		}
		if err := delivery.AddSnapshot(p.report.Delivery); err != nil {
			return err
		}
		s, ps := &res.Setup, &pr.Setup
		s.Resumed += ps.Resumed
		s.LoggedIn += ps.LoggedIn
		s.SignedUp += ps.SignedUp
		s.Failed += ps.Failed
		s.Retries += ps.Retries
		s.ConnectSeconds = max(s.ConnectSeconds, ps.ConnectSeconds)
		s.ContactAdds += ps.ContactAdds
		s.ContactErrors += ps.ContactErrors
		s.ContactsMissing += ps.ContactsMissing
		s.ContactsSeconds = max(s.ContactsSeconds, ps.ContactsSeconds)
		res.WindowSeconds = max(res.WindowSeconds, pr.WindowSeconds)
		res.DrainSeconds = max(res.DrainSeconds, pr.DrainSeconds)
		res.Interrupted = res.Interrupted || pr.Interrupted
		res.Sends.Acked += pr.Sends.Acked
		res.Sends.AckedInWindow += pr.Sends.AckedInWindow
		res.Sends.Errors += pr.Sends.Errors
		res.Sends.Unfinished += pr.Sends.Unfinished
		res.Sends.Skipped += pr.Sends.Skipped
		d, pd := &res.Deliveries, &pr.Deliveries
		d.Delivered += pd.Delivered
		d.InWindow += pd.InWindow
		d.Offline += pd.Offline
		d.Stale += pd.Stale
		d.Foreign += pd.Foreign
		d.Unopened += pd.Unopened
		res.Connections.Disconnects += pr.Connections.Disconnects
		res.Connections.Reconnects += pr.Connections.Reconnects
		res.Connections.SessionsEnded += pr.Connections.SessionsEnded
		for _, e := range pr.Errors {
			if x := errs[e.Kind]; x != nil {
				x.Count += e.Count
			} else {
				errs[e.Kind] = &ErrorCount{Kind: e.Kind, Count: e.Count, Example: e.Example}
			}
		}
		if len(res.Timeline) == 0 {
			res.Timeline = make([]TimelineSec, len(pr.Timeline))
			copy(res.Timeline, pr.Timeline)
		} else if len(pr.Timeline) == len(res.Timeline) {
			for j, t := range pr.Timeline {
				x := &res.Timeline[j]
				x.Delivered += t.Delivered
				x.Slow += t.Slow
				x.MaxMS = max(x.MaxMS, t.MaxMS)
			}
		}
		n := len(parts)
		res.Parts[i] = PartResult{Part: i, Users: (i+1)*res.Config.Users/n - i*res.Config.Users/n, Pid: p.cmd.Process.Pid,
			Acked: pr.Sends.AckedInWindow, Delivered: pr.Deliveries.InWindow}
		if b := pr.Bench.Connected; b != nil {
			res.Parts[i].RSS = b.RSS
		}
		for u, t := range p.report.Tokens {
			state.setToken(u, t)
		}
		for u, k := range p.report.Keys {
			state.setKeys(u, k)
		}
	}
	for _, e := range errs {
		res.Errors = append(res.Errors, *e)
	}
	sortErrors(res.Errors)
	if res.Sends.Acked > res.Deliveries.Delivered {
		res.Deliveries.Missing = res.Sends.Acked - res.Deliveries.Delivered
	}
	if w := res.WindowSeconds; w > 0 {
		res.Sends.AckedPerSec = float64(res.Sends.AckedInWindow) / w
		res.Deliveries.PerSec = float64(res.Deliveries.InWindow) / w
	}
	res.AckLatency = latencyOf(&ack)
	res.DeliveryLatency = latencyOf(&delivery)
	return nil
}

// PartResult is one process of a run spread over processes.
type PartResult struct {
	Part        int     `json:"part"`
	Pid         int     `json:"pid"`
	Users       int     `json:"users"` // its share: see Config.Part
	Acked       uint64  `json:"acked_in_window"`
	Delivered   uint64  `json:"delivered_in_window"`
	RSS         int64   `json:"rss_bytes_connected,omitempty"`
	CPUInWindow float64 `json:"cpu_in_window"`
}

// parentExe returns the path of the running natter-bench, to start parts.
func parentExe() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("bench: --procs needs the path of natter-bench: %w", err)
	}
	return exe, nil
}
