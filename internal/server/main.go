package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/natterim/natter/internal/hub"
	"github.com/natterim/natter/internal/sqlite"
)

// Main is natterd's main: it parses os.Args, runs the server until SIGTERM
// or SIGINT, and returns the exit status (0 after a clean stop, 1 on an
// error, 2 for a usage error).
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return run(ctx, os.Args[1:], os.Stderr, true)
}

// Run is Main with its inputs given: args without the program name, and
// where logs go. Unlike Main it leaves the process's settings alone
// (GOMAXPROCS), so that tests can run several servers in one process.
func Run(ctx context.Context, args []string, stderr io.Writer) int {
	return run(ctx, args, stderr, false)
}

func run(ctx context.Context, args []string, stderr io.Writer, ownProcess bool) int {
	cfg, level, err := ParseFlags(args, stderr)
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		return 2
	}
	if ownProcess {
		// The password-hashing workers each hold a GOMAXPROCS slot while
		// they hash, at a low priority (auth.NewHasher): give routing its
		// one slot per CPU on top of theirs.
		if cfg.HashWorkers <= 0 {
			cfg.HashWorkers = runtime.GOMAXPROCS(0)
		}
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + cfg.HashWorkers)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	s, err := New(ctx, cfg)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			cfg.Logger.Error("cannot start", "err", err,
				"hint", "another process (another natterd?) has this address: stop it, or give this natterd other ports or another --bind address")
		} else {
			cfg.Logger.Error("cannot start", "err", err)
		}
		return 1
	}
	if err := s.Serve(ctx); err != nil {
		cfg.Logger.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}

// ParseFlags turns natterd's command line into a Config.
func ParseFlags(args []string, stderr io.Writer) (Config, slog.Level, error) {
	fs := flag.NewFlagSet("natterd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	var hosts, level, acmeDomains string
	var archive bool
	fs.StringVar(&cfg.DataDir, "data", "./natter-data", "folder for the database and the self-generated TLS certificate")
	fs.StringVar(&cfg.Bind, "bind", "", "IP address for every listener whose address names no host (--listen, --http, --udp); \"\": every interface")
	fs.StringVar(&cfg.Listen, "listen", ":7443", "TLS/TCP address for native clients (port 0 picks a free port)")
	fs.StringVar(&cfg.HTTP, "http", ":8443", "HTTPS/WebSocket address for browsers (\"\" disables)")
	fs.StringVar(&cfg.Admin, "admin", "127.0.0.1:9090", "admin address for /healthz and /metrics (\"\" disables)")
	fs.StringVar(&cfg.UDP, "udp", ":3478", "UDP address of the STUN/TURN service for peer-to-peer (\"\" disables)")
	fs.StringVar(&cfg.RelayIP, "relay-ip", "", "IPv4 address TURN relays are advertised on (default: --udp's IP, else this host's first global IPv4)")
	fs.StringVar(&cfg.CertFile, "tls-cert", "", "TLS certificate chain file (PEM); default: ACME with --acme-domain, else self-generated in --data")
	fs.StringVar(&cfg.KeyFile, "tls-key", "", "TLS private key file (PEM), with --tls-cert")
	fs.StringVar(&cfg.CertFile, "cert", "", "old name of --tls-cert")
	fs.StringVar(&cfg.KeyFile, "key", "", "old name of --tls-key")
	fs.StringVar(&hosts, "hosts", "", "comma-separated extra host names/IPs for the self-generated certificate")
	fs.StringVar(&acmeDomains, "acme-domain", "", "comma-separated public DNS names to get certificates for over ACME (TLS-ALPN-01: --http must be reachable on port 443 of each)")
	fs.StringVar(&cfg.ACMEDirectory, "acme-directory", DefaultACMEDirectory, "ACME directory URL, with --acme-domain")
	fs.StringVar(&cfg.ACMEEmail, "acme-email", "", "contact e-mail address for the ACME account (optional)")
	fs.StringVar(&cfg.ACMECAFile, "acme-ca", "", "PEM file of CA roots to trust for the ACME directory's HTTPS (a private ACME CA); default: the system's")
	fs.DurationVar(&cfg.Keepalive, "keepalive", 60*time.Second, "drop clients silent for this long")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 10*time.Second, "time allowed for the TLS handshake and hello")
	fs.IntVar(&cfg.MaxFrame, "max-frame", 0, "largest frame accepted, in bytes (default 1 MiB)")
	fs.IntVar(&cfg.HashWorkers, "hash-workers", 0, "argon2id workers (default: number of CPUs)")
	fs.BoolVar(&cfg.NoGroupCommit, "no-group-commit", false, "commit every write on its own (slower; for comparison)")
	fs.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", sqlite.DefaultCheckpointInterval, "how often the store copies its write-ahead log back into the database file")
	fs.StringVar(&cfg.Store, "store", "", "the store: \"\" for the SQLite file in --data, or a postgres:// URL of a PostgreSQL database that several natterd share")
	fs.StringVar(&cfg.Bus, "bus", "", "the bus and live-session registry: \"\" for in-process (one node), or nats:// URLs (comma-separated) of NATS with JetStream that several natterd share")
	fs.StringVar(&cfg.Node, "node", "", "node name (default random)")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", 4096, "open connections allowed from one address (-1: no limit)")
	fs.Float64Var(&cfg.MsgsPerSecond, "max-msgs-per-sec", 50, "messages a user may send per second, in bursts of 4 seconds' worth (-1: no limit)")
	fs.Float64Var(&cfg.ContactReqsPerHour, "max-contact-reqs-per-hour", 100, "contact requests a user may make per hour, in bursts of a fifth of that (-1: no limit)")
	fs.Int64Var(&cfg.MaxFileSize, "max-file-size", hub.DefaultMaxFileSize, "largest file a message may carry, in bytes (the sum of its chunks)")
	fs.Int64Var(&cfg.UserQuota, "user-quota", hub.DefaultUserQuota, "bytes of file chunks a user may keep stored (-1: no quota)")
	fs.DurationVar(&cfg.FileRetention, "file-retention", hub.DefaultFileRetention, "file chunks are deleted this long after they were last uploaded or sent")
	fs.DurationVar(&cfg.FileSweepEvery, "file-sweep-interval", time.Hour, "how often expired file chunks are deleted (also once at start); for tests")
	fs.IntVar(&cfg.Bounds.MaxDevices, "max-devices", hub.DefaultMaxDevices, "devices one user may have; a new one beyond is refused at login until one is removed (-1: no limit)")
	fs.DurationVar(&cfg.Bounds.Retention, "retention", hub.DefaultRetention, "inbox entries that some device has not acknowledged are deleted this long after they were sent (0: kept until acknowledged)")
	fs.DurationVar(&cfg.Bounds.DeviceRetire, "device-retire", hub.DefaultDeviceRetire, "devices that have not logged in for this long are removed (0: never)")
	fs.DurationVar(&cfg.Bounds.TrimInterval, "trim-interval", DefaultTrimInterval, "how often acknowledged inbox entries are deleted and the retention applied (also once at start)")
	fs.BoolVar(&archive, "archive", true, "let users keep their sealed history on the server if they turn it on (false: refuse to turn it on or add to it)")
	fs.Int64Var(&cfg.ArchiveQuota, "archive-quota", hub.DefaultArchiveQuota, "bytes of server-side history (archive records) a user may keep (-1: no quota)")
	fs.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: natterd [flags]\n\nnatterd is natter's server. With no flags it keeps its data in ./natter-data.\n\n")
		fs.PrintDefaults()
	}
	err := fs.Parse(args)
	if err != nil {
		return cfg, 0, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "natterd: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return cfg, 0, fmt.Errorf("usage")
	}
	if cfg.Bind != "" && net.ParseIP(cfg.Bind) == nil {
		fmt.Fprintf(stderr, "natterd: --bind %q: need an IP address of this host\n", cfg.Bind)
		return cfg, 0, fmt.Errorf("usage")
	}
	if err := checkNode(cfg.Node); err != nil {
		fmt.Fprintf(stderr, "natterd: --node: %v\n", err)
		return cfg, 0, fmt.Errorf("usage")
	}
	if cfg.CertFile != "" && cfg.KeyFile == "" || cfg.CertFile == "" && cfg.KeyFile != "" {
		fmt.Fprintln(stderr, "natterd: --tls-cert and --tls-key go together")
		return cfg, 0, fmt.Errorf("usage")
	}
	if acmeDomains != "" {
		if cfg.CertFile != "" {
			fmt.Fprintln(stderr, "natterd: --acme-domain and --tls-cert exclude each other")
			return cfg, 0, fmt.Errorf("usage")
		}
		if cfg.ACMEDomains, err = checkACMEDomains(strings.Split(acmeDomains, ",")); err != nil {
			fmt.Fprintf(stderr, "natterd: --acme-domain: %v\n", err)
			return cfg, 0, fmt.Errorf("usage")
		}
	}
	cfg.NoArchive = !archive
	cfg.Bounds = flagBounds(cfg.Bounds)
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.Hosts = append(cfg.Hosts, h)
		}
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		fmt.Fprintf(stderr, "natterd: --log-level: %v\n", err)
		return cfg, 0, err
	}
	return cfg, lv, nil
}

// maxNodeName bounds --node: a node's name is part of every connection ID
// that crosses the bus, whose events give it one length byte.
const maxNodeName = 64

// checkNode refuses a node name natterd could not carry in its events.
func checkNode(name string) error {
	if len(name) > maxNodeName {
		return fmt.Errorf("%d bytes long; at most %d", len(name), maxNodeName)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%q has a space or control character", name)
		}
	}
	return nil
}
