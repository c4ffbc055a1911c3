package bench

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

const usage = `usage: natter-bench --server HOST:PORT (--ca FILE | --insecure-fingerprint HEX) [flags]

natter-bench is natter's load generator. It signs up (or logs in, or resumes)
--users users named PREFIX-0 … PREFIX-(N-1), gives each --contacts approved
contacts, connects them all, and then has them message each other at --rate
messages per second in total (0: as fast as acknowledgements allow, with
--inflight sends waiting per user) for --warmup then --duration. It prints
acknowledged sends/s, delivered msgs/s, p50/p99/p99.9 delivery and send-ack
latency, errors, and the server's and its own RSS and CPU.

With --idle it only connects the users and holds them for --hold, then
reports memory per connection (the server's with --server-pid or --admin).

Keep --state: it keeps each user's session token and device keys (as a
client keeps them in its home), so the next run resumes every user instead
of paying for an argon2id hash per user, and publishes no keys again.

With --procs N the users are spread over N processes of natter-bench, each
with its share of --users and --rate; they start sending at the same moment,
and the parent merges their figures (and reports each one's CPU). With
--idle they all hold their connections while the parent measures, so a
run can hold more connections than one process may open files.

Examples:
  natter-bench --server 127.0.0.1:7443 --ca data/cert.pem --users 1000 --contacts 10 \
      --rate 5000 --duration 30s --state bench.state --admin 127.0.0.1:9090
  natter-bench --server 127.0.0.1:7443 --ca data/cert.pem --users 4000 --contacts 10 \
      --rate 8000 --procs 4 --warmup 40s --duration 20s --state bench.state --server-pid 1234 --timeline
  natter-bench --server 127.0.0.1:7443 --ca data/cert.pem --users 19000 --contacts 0 \
      --idle --hold 130s --procs 2 --sources 127.0.0.1-127.0.0.8 --state bench.state --admin 127.0.0.1:9090

Flags:
`

// Options are the command's flags beyond the Config.
type Options struct {
	JSON     bool
	LogLevel slog.Level
	// Part is set in the processes a --procs run starts (--part K/N).
	Part bool
}

// ParseFlags turns natter-bench's command line into a Config. Messages go
// to stderr. It returns flag.ErrHelp for -h.
func ParseFlags(args []string, stderr io.Writer) (Config, Options, error) {
	fs := flag.NewFlagSet("natter-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	var cfg Config
	var opt Options
	var ca, pin, serverName, sources, level string
	fs.StringVar(&cfg.Addr, "server", "", "natterd's TLS/TCP address `HOST:PORT`")
	fs.StringVar(&ca, "ca", "", "trust the server certificate(s) in PEM `FILE` (natterd's DATA/cert.pem)")
	fs.StringVar(&pin, "insecure-fingerprint", "", "trust only a server certificate with this SHA-256 `HEX` (natterd logs it at start)")
	fs.StringVar(&serverName, "server-name", "", "name to verify the certificate against (default: the host of --server)")
	fs.IntVar(&cfg.Users, "users", 100, "number of users, each one connection")
	fs.IntVar(&cfg.Contacts, "contacts", 10, "approved contacts per user (a circulant graph)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "messages per second, all users together (0: as fast as acks allow)")
	fs.IntVar(&cfg.Inflight, "inflight", defaultInflight, "sends waiting for their ack per user")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measurement window")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "sending before the window, not measured; the window also waits for every user's first acknowledgement (sealed sessions set up)")
	fs.DurationVar(&cfg.Drain, "drain", defaultDrain, "longest wait after the window for acks and deliveries")
	fs.IntVar(&cfg.Size, "size", 64, fmt.Sprintf("message body size in `BYTES` (at least %d)", BodyMin))
	fs.BoolVar(&cfg.Receipts, "receipts", false, "receivers send delivered receipts (more writes per message)")
	fs.BoolVar(&cfg.Timeline, "timeline", false, "print the window second by second: messages delivered, those over 10ms, the slowest")
	fs.StringVar(&sources, "sources", "", "local `IPS` to connect from, in turn: comma-separated, A-B ranges allowed (e.g. 127.0.0.1-127.0.0.8)")
	fs.BoolVar(&cfg.Idle, "idle", false, "only connect the users and hold them; report memory per connection")
	fs.DurationVar(&cfg.Hold, "hold", defaultHold, "with --idle, how long to hold before measuring (Go collects garbage at least every 2m)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "read the server's RSS and CPU time from /proc/`PID`")
	fs.StringVar(&cfg.Admin, "admin", "", "read the server's RSS, heap, CPU and connections from http://`HOST:PORT`/metrics")
	fs.StringVar(&cfg.Prefix, "prefix", defaultPrefix, "user names are PREFIX-0 … PREFIX-(N-1)")
	fs.StringVar(&cfg.Password, "password", "natter-bench-password", "every user's password")
	fs.StringVar(&cfg.StateFile, "state", "", "`FILE` caching the users' session tokens between runs")
	fs.IntVar(&cfg.Parallel, "parallel", defaultParallel, "concurrent logins and contact operations during setup")
	fs.IntVar(&cfg.Procs, "procs", 1, "spread the users over `N` processes of natter-bench (each with its share of --users and --rate; results merged)")
	var part, runID string
	fs.StringVar(&part, "part", "", "internal: run part `K/N` of a --procs run (set by the parent)")
	fs.StringVar(&runID, "run-id", "", "internal: the run's ID in `HEX` (set by the parent of a --procs run)")
	fs.BoolVar(&opt.JSON, "json", false, "print one JSON object instead of the summary")
	fs.StringVar(&level, "log-level", "info", "progress logs on stderr: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return cfg, opt, err
	}
	bad := func(format string, a ...any) (Config, Options, error) {
		err := fmt.Errorf(format, a...)
		fmt.Fprintf(stderr, "natter-bench: %v\n", err)
		return cfg, opt, err
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	if cfg.Addr == "" {
		return bad("--server is required")
	}
	if err := opt.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return bad("--log-level: %v", err)
	}
	var err error
	if cfg.TLS, err = tlsConfig(ca, pin, serverName); err != nil {
		return bad("%v", err)
	}
	if cfg.Sources, err = ParseSources(sources); err != nil {
		return bad("--sources: %v", err)
	}
	if part != "" {
		if cfg.Part, cfg.Parts, err = parsePart(part); err != nil {
			return bad("%v", err)
		}
		if cfg.RunID, err = hex.DecodeString(runID); err != nil || len(cfg.RunID) != 8 {
			return bad("--run-id %q: want 16 hex digits", runID)
		}
		// The parent reads the server's figures and keeps the state file.
		opt.Part, cfg.Procs, cfg.ServerPID, cfg.Admin = true, 0, 0, ""
	}
	return cfg, opt, nil
}

// tlsConfig builds the client TLS configuration from --ca or
// --insecure-fingerprint.
func tlsConfig(ca, pin, serverName string) (*tls.Config, error) {
	c := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS13}
	switch {
	case ca != "" && pin != "":
		return nil, errors.New("--ca and --insecure-fingerprint exclude each other")
	case ca != "":
		b, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--ca: no PEM certificate in %s", ca)
		}
	case pin != "":
		want := strings.ToLower(strings.ReplaceAll(pin, ":", ""))
		if _, err := hex.DecodeString(want); err != nil || len(want) != 64 {
			return nil, errors.New("--insecure-fingerprint: want 64 hex digits (a SHA-256)")
		}
		// The chain is not checked, only the leaf's fingerprint: what the
		// natter command does when it pins a self-signed certificate.
		c.InsecureSkipVerify = true
		c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("server sent no certificate")
			}
			sum := sha256.Sum256(raw[0])
			if got := hex.EncodeToString(sum[:]); got != want {
				return fmt.Errorf("server certificate sha256 %s, want %s", got, want)
			}
			return nil
		}
	}
	return c, nil
}

// ParseSources parses a comma-separated list of IP addresses and inclusive
// IPv4 ranges (127.0.0.1-127.0.0.8).
func ParseSources(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := netip.ParseAddr(lo)
		if err != nil {
			return nil, err
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b, err := netip.ParseAddr(hi)
		if err != nil {
			return nil, err
		}
		if !a.Is4() || !b.Is4() || b.Less(a) {
			return nil, fmt.Errorf("bad range %q: want two IPv4 addresses, low first", part)
		}
		for ; a.Compare(b) <= 0; a = a.Next() {
			out = append(out, a)
			if len(out) > 1<<16 {
				return nil, fmt.Errorf("range %q is too large", part)
			}
		}
	}
	return out, nil
}

// Main is natter-bench's main: it parses args (without the program name),
// runs the benchmark and prints its result to stdout, logs to stderr. It
// returns the exit status: 0 after a run (whatever its figures), 1 if the
// run could not be made or was interrupted (an interrupt during the window
// still prints the figures of the shortened window), 2 for a usage error.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, opt, err := ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: opt.LogLevel}))
	if opt.Part {
		cfg.Logger = cfg.Logger.With("part", cfg.Part)
		checkFiles(cfg.Logger, cfg.Users/cfg.Parts+1)
		if err := runAsPart(ctx, cfg, stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "natter-bench: part %d: %v\n", cfg.Part, err)
			return 1
		}
		return 0
	}
	checkFiles(cfg.Logger, cfg.Users/max(cfg.Procs, 1))
	var res *Result
	if cfg.Procs > 1 {
		var exe string
		if exe, err = parentExe(); err == nil {
			res, err = runProcs(ctx, cfg, exe, args, stderr)
		}
	} else {
		res, err = Run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "natter-bench: %v\n", err)
		return 1
	}
	if opt.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		err = res.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "natter-bench: %v\n", err)
		return 1
	}
	if res.Interrupted {
		fmt.Fprintln(stderr, "natter-bench: interrupted; the figures cover the shortened window")
		return 1
	}
	return 0
}

// checkFiles warns when the process may open too few files for users
// connections (Go raises the soft limit to the hard one at start).
func checkFiles(log *slog.Logger, users int) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	if need := uint64(users) + 64; lim.Cur < need {
		log.Warn("open-file limit too low for one connection per user", "limit", lim.Cur, "need", need)
	}
}
