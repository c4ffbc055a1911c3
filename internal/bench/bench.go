// Package bench is natter's load generator, run by cmd/natter-bench. It is
// built on the client SDK like any other client, so what it measures is what
// apps see: N users, each with K approved contacts, connect to one natterd
// (spread over several source addresses), then send each other messages at
// a given total rate, or as fast as acknowledgements allow, for a given
// time.
//
// # What it measures
//
// The sender writes its clock (Unix nanoseconds) into each message body;
// the receiver subtracts it from its own clock when the SDK hands it the
// MessageEvent, so delivery latency is end to end: SDK send queue, TLS,
// the server's durable store and routing, and the receiving SDK's
// de-duplication and ordering. Send-ack latency is the time Client.Send
// takes, that is until the message is durable on the server. Both are
// kept in log-linear histograms (see Histogram) and reported as p50, p90,
// p99, p99.9 and max over the measurement window, which follows a
// warm-up. Throughput is the number of acknowledgements and deliveries that
// happened inside the window divided by its length.
//
// It also reads the memory and CPU time of the server (from /proc by PID,
// or from its admin /metrics) and of itself before connecting, once
// connected and after the run, so that idle runs (Config.Idle) give the
// memory cost of one connection.
//
// A run can be spread over several processes (Config.Procs; procs.go).
//
// # Accounts
//
// Users are named Prefix-0 … Prefix-(N-1), each with a device ID derived
// from its name so that its inbox cursor survives across runs. Setup signs
// users up (argon2id: tens of milliseconds of server CPU each) with bounded
// parallelism, or logs them in if they exist, and keeps their session
// tokens and their devices' keyrings in Config.StateFile, so that the next
// run resumes every session without hashing a password and finds its
// devices' keys already published (a real client keeps both in its home). The contact graph is circulant: user i's
// contacts are i±1 … i±K/2 (and i+N/2 when K is odd). Both ends of every
// edge send an Add (the second Add approves), so the graph converges
// whatever was done before; contacts already approved are skipped.
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natterim/natter"
)

// Config describes a run. Addr, TLS, Users and Password are required; the
// zero value of the rest means the default given.
type Config struct {
	Addr string      // natterd's TLS/TCP address
	TLS  *tls.Config // how to trust the server

	Users    int     // number of users (and connections)
	Contacts int     // approved contacts per user; < Users; odd needs an even Users
	Rate     float64 // messages per second, all users together; 0 = as fast as acks allow
	Inflight int     // sends waiting for their ack per user; default 1
	Duration time.Duration
	Warmup   time.Duration
	// Drain bounds the wait, after the window, for sends still waiting
	// for their ack and messages still on their way. Default 10s.
	Drain    time.Duration
	Size     int  // message body size in bytes; at least (and default) BodyMin
	Receipts bool // receivers send "delivered" receipts (client.Options.AutoDeliveredReceipts)
	// Timeline reports, per second of the window, the messages delivered,
	// those slower than 10 ms and the slowest.
	Timeline bool

	// Sources are the local addresses connections are made from, in turn
	// (each gives about 28,000 ephemeral ports towards one server
	// address). Default: the system's choice.
	Sources []netip.Addr

	// Idle connects every user, builds the contact graph, then holds the
	// connections for Hold (default 10s) without sending, and reports
	// memory per connection.
	Idle bool
	Hold time.Duration

	ServerPID int    // read the server's RSS and CPU time from /proc/PID
	Admin     string // read the server's /metrics at this host:port

	Prefix    string // user names are Prefix-i; default "bench"
	Password  string // every user's password (at least 8 bytes)
	StateFile string // user → session token cache; "" keeps none
	Parallel  int    // concurrent logins and contact operations; default 64

	Logger *slog.Logger // progress and problems; default none

	// Procs, above 1, spreads the users over that many processes of
	// natter-bench, each with its share of the users and of Rate (Main
	// starts them; see procs.go). Run itself runs one process's part.
	Procs int
	// Part and Parts make this run part Part (from 0) of a run spread over
	// Parts processes: it connects users [Part·Users/Parts,
	// (Part+1)·Users/Parts) only, sends at its share of Rate, takes the
	// other users as connected elsewhere, and leaves the state file and
	// the server's figures to the parent.
	Part, Parts int
	// RunID, if not empty (8 bytes), is the run's ID, which every part of
	// a run shares so that each recognises the others' messages.
	RunID []byte
	// Barrier, if not nil, is called when this process's users are
	// connected (phase "connected") and when they have added their
	// contacts ("contacts"), and returns when every part of the run is as
	// far; the second call returns when sending starts: the same moment
	// for every part.
	Barrier func(ctx context.Context, phase string) (time.Time, error)
}

// Defaults.
const (
	defaultInflight = 1
	defaultDrain    = 10 * time.Second
	defaultHold     = 10 * time.Second
	defaultParallel = 64
	defaultPrefix   = "bench"
	// sendTimeout bounds one Send; a send still waiting then is an error.
	sendTimeout = 30 * time.Second
	// readyTimeout bounds the wait for a login's contact list and inbox.
	readyTimeout = 60 * time.Second
	// opTimeout bounds one request of the setup.
	opTimeout = 60 * time.Second
	// progressEvery is how often long phases log their progress.
	progressEvery = 5 * time.Second
	// drainQuiet is how long a part of a run spread over processes waits
	// without a delivery before it ends its drain.
	drainQuiet = time.Second
)

func (c *Config) check() error {
	switch {
	case c.Addr == "":
		return errors.New("bench: no server address")
	case c.Users < 1:
		return errors.New("bench: need at least one user")
	case c.Contacts < 0 || c.Contacts >= c.Users && c.Contacts > 0:
		return fmt.Errorf("bench: %d contacts per user needs more than %d users", c.Contacts, c.Users)
	case c.Contacts%2 == 1 && c.Users%2 == 1:
		return fmt.Errorf("bench: an odd number of contacts (%d) needs an even number of users (%d)", c.Contacts, c.Users)
	case !c.Idle && c.Contacts == 0:
		return errors.New("bench: users need contacts to send messages (or run with Idle)")
	case !c.Idle && c.Duration <= 0:
		return errors.New("bench: no duration")
	case c.Rate < 0:
		return errors.New("bench: negative rate")
	case len(c.Password) < 8:
		return errors.New("bench: the password must be at least 8 bytes")
	case c.Procs > c.Users || c.Parts > c.Users:
		return fmt.Errorf("bench: %d users cannot be spread over %d processes", c.Users, max(c.Procs, c.Parts))
	case c.Parts > 0 && (c.Part < 0 || c.Part >= c.Parts):
		return fmt.Errorf("bench: part %d of %d", c.Part, c.Parts)
	case c.RunID != nil && len(c.RunID) != 8:
		return errors.New("bench: a run ID is 8 bytes")
	}
	if c.Parts <= 0 {
		c.Part, c.Parts = 0, 1
	}
	if c.Inflight <= 0 {
		c.Inflight = defaultInflight
	}
	if c.Drain <= 0 {
		c.Drain = defaultDrain
	}
	if c.Hold <= 0 {
		c.Hold = defaultHold
	}
	if c.Parallel <= 0 {
		c.Parallel = defaultParallel
	}
	if c.Prefix == "" {
		c.Prefix = defaultPrefix
	}
	if c.Size < BodyMin {
		c.Size = BodyMin
	}
	if err := natter.ValidateUserID(userName(c.Prefix, c.Users-1)); err != nil {
		return fmt.Errorf("bench: prefix %q: %w", c.Prefix, err)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// runner is the state of one run.
type runner struct {
	cfg   Config
	log   *slog.Logger
	users []*user
	// lo and hi bound the indices of this process's users (all of them
	// unless the run is spread over processes).
	lo, hi int
	state  *stateFile
	run    [8]byte // this run's ID, in every body, to tell old messages apart
	res    *Result

	// The measurement window in Unix nanoseconds; zero until the run starts.
	winStart, winEnd atomic.Int64

	stopping atomic.Bool // senders issue no new sends
	// warm counts the senders whose first send was acknowledged: their
	// sealed sessions exist, and the window waits for all of them.
	warm atomic.Int32

	ack, delivery Histogram                // for sends started in the window
	timeline      atomic.Pointer[timeline] // with Config.Timeline; set when the window opens

	acked, ackedInWin         atomic.Uint64
	sendErrs, unfinished      atomic.Uint64
	skipped                   atomic.Uint64
	delivered, deliveredInWin atomic.Uint64
	deliveredOffline          atomic.Uint64
	stale, foreign            atomic.Uint64
	unopened                  atomic.Uint64
	disconnects, reconnects   atomic.Uint64
	sessionsEnded             atomic.Uint64

	errMu   sync.Mutex
	errs    map[string]uint64
	errText map[string]string
}

// Run runs the benchmark described by cfg and returns its figures. It
// returns an error only if the run could not be made (the server cannot be
// reached, setup failed for every user, ...); problems during the run are
// counted in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	r, err := runBench(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return r.res, nil
}

// runBench is Run, returning the runner for what a part reports beyond the
// Result (procs.go).
func runBench(ctx context.Context, cfg Config) (*runner, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, log: cfg.Logger, errs: map[string]uint64{}, errText: map[string]string{}}
	r.lo, r.hi = cfg.Part*cfg.Users/cfg.Parts, (cfg.Part+1)*cfg.Users/cfg.Parts
	if cfg.RunID != nil {
		copy(r.run[:], cfg.RunID)
	} else {
		newRunID(&r.run)
	}
	r.res = &Result{Config: resultConfig(&cfg)}
	if cfg.Parts > 1 {
		// This process's share of the rate.
		r.cfg.Rate = cfg.Rate * float64(r.hi-r.lo) / float64(cfg.Users)
	}
	var err error
	if r.state, err = loadState(cfg.StateFile); err != nil {
		return nil, err
	}
	r.state.readOnly = cfg.Parts > 1 // the parent saves what the parts report
	r.users = makeUsers(&cfg)
	defer r.closeAll()

	r.res.Server.Before = r.serverStats(ctx)
	r.res.Bench.Before = benchStats(true)

	if err := r.connectAll(ctx); err != nil {
		return nil, err
	}
	r.saveState()
	// And again however the run ends (an interrupt, an error): the
	// keyrings hold the private halves of the prekeys published during
	// the run, which the server hands out to the next run's senders.
	// (A natter-bench killed outright loses them: its next run's messages
	// sealed to them do not open, counted as "open" errors; delete the
	// keys from the state file then.)
	defer r.saveState()
	r.res.Setup.perLogin(r.res.Server.Before, r.serverStats(ctx))
	if cfg.Barrier != nil {
		if _, err := cfg.Barrier(ctx, phaseConnected); err != nil {
			return nil, err
		}
	}
	if cfg.Contacts > 0 {
		if err := r.addContacts(ctx); err != nil {
			return nil, err
		}
		if cfg.Parts == 1 {
			if err := r.checkContacts(ctx); err != nil {
				return nil, err
			}
		}
	}

	if cfg.Idle {
		hold := time.After(cfg.Hold)
		if cfg.Barrier != nil {
			// A part holds until the parent has measured, at the common
			// start plus Hold (runProcs).
			t0, err := cfg.Barrier(ctx, phaseContacts)
			if err != nil {
				return nil, err
			}
			hold = time.After(time.Until(t0.Add(cfg.Hold + idleMargin)))
		}
		r.log.Info("holding idle connections", "users", r.hi-r.lo, "for", cfg.Hold)
		select {
		case <-hold:
		case <-ctx.Done(): // measure now
			r.res.Interrupted = true
			ctx = context.WithoutCancel(ctx)
		}
		r.res.Server.Connected = r.serverStats(ctx)
		r.res.Bench.Connected = benchStats(true)
		r.res.Server.After = r.res.Server.Connected
		r.res.Bench.After = r.res.Bench.Connected
		r.finish()
		return r, nil
	}

	r.res.Server.Connected = r.serverStats(ctx)
	r.res.Bench.Connected = benchStats(true)
	t0 := time.Now()
	if cfg.Barrier != nil {
		if t0, err = cfg.Barrier(ctx, phaseContacts); err != nil {
			return nil, err
		}
	}
	if err := r.load(ctx, t0); err != nil {
		return nil, err
	}
	if cfg.Contacts > 0 && cfg.Parts > 1 {
		// Only now are the other parts' adds surely done.
		if err := r.checkContacts(context.WithoutCancel(ctx)); err != nil {
			return nil, err
		}
	}
	r.res.Bench.After = benchStats(false)
	r.finish()
	return r, nil
}

// saveState writes the users' tokens and keyrings to the state file.
func (r *runner) saveState() {
	r.saveKeys()
	if err := r.state.save(); err != nil {
		r.log.Warn("cannot save the state file", "err", err)
	}
}

// finish fills the Result from the counters.
func (r *runner) finish() {
	res := r.res
	res.Sends.Acked = r.acked.Load()
	res.Sends.AckedInWindow = r.ackedInWin.Load()
	res.Sends.Errors = r.sendErrs.Load()
	res.Sends.Unfinished = r.unfinished.Load()
	res.Sends.Skipped = r.skipped.Load()
	res.Deliveries.Delivered = r.delivered.Load()
	res.Deliveries.InWindow = r.deliveredInWin.Load()
	res.Deliveries.Offline = r.deliveredOffline.Load()
	res.Deliveries.Stale = r.stale.Load()
	res.Deliveries.Foreign = r.foreign.Load()
	res.Deliveries.Unopened = r.unopened.Load()
	if res.Sends.Acked > res.Deliveries.Delivered {
		res.Deliveries.Missing = res.Sends.Acked - res.Deliveries.Delivered
	}
	res.Connections.Disconnects = r.disconnects.Load()
	res.Connections.Reconnects = r.reconnects.Load()
	res.Connections.SessionsEnded = r.sessionsEnded.Load()
	if w := res.WindowSeconds; w > 0 {
		res.Sends.AckedPerSec = float64(res.Sends.AckedInWindow) / w
		res.Deliveries.PerSec = float64(res.Deliveries.InWindow) / w
	}
	res.AckLatency = latencyOf(&r.ack)
	res.DeliveryLatency = latencyOf(&r.delivery)
	if tl := r.timeline.Load(); tl != nil {
		res.Timeline = tl.result()
	}
	r.errMu.Lock()
	for k, n := range r.errs {
		res.Errors = append(res.Errors, ErrorCount{Kind: k, Count: n, Example: r.errText[k]})
	}
	r.errMu.Unlock()
	sortErrors(res.Errors)
	res.perConnection()
}

// closeAll closes every Client and waits for their event loops.
func (r *runner) closeAll() {
	start := time.Now()
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for _, u := range r.users {
		if u.c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			u.c.Close()
			<-u.done
		})
	}
	wg.Wait()
	if n := len(r.users); n > 100 {
		r.log.Info("closed connections", "users", n, "took", time.Since(start).Round(time.Millisecond))
	}
}
