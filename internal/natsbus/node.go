package natsbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config's zero fields.
const (
	DefaultPrefix  = "natter"
	DefaultBucket  = "natter_registry"
	DefaultTimeout = 60 * time.Second
)

// Config says how a Node connects to NATS and names what it uses there.
// Every node of one cluster must use the same Prefix and Bucket.
type Config struct {
	// URLs is one NATS server URL or several, comma-separated
	// (nats://host1:4222,nats://host2:4222): the servers of one NATS
	// cluster, tried in turn.
	URLs string
	// Prefix is the first token of every subject the bus uses; default
	// DefaultPrefix. Tests give each their own.
	Prefix string
	// Bucket names the registry's key-value bucket; default DefaultBucket.
	Bucket string
	// Replicas of the bucket in a NATS cluster (1 to 5); default 1.
	Replicas int
	// Node names this node in logs and in its heartbeat key (escaped as
	// user names are); a random suffix is added, so that a node restarted
	// under the same name is not taken for its previous life. Default:
	// random.
	Node string
	// Timeout bounds how long the sessions of a dead node stay in the
	// registry (natterd gives its keepalive); default DefaultTimeout.
	Timeout time.Duration
	// OpTimeout bounds one NATS round trip that has no context of its own
	// (Subscribe's flush, the registry's background work); default 5s.
	OpTimeout time.Duration
	// ReconnectWait is the pause between reconnection attempts (with
	// jitter); default 250ms.
	ReconnectWait time.Duration
	// Logger: default slog.Default(). The node adds its ID ("node") to
	// every line; naming the component is the caller's (natterd: "bus").
	Logger *slog.Logger
	// Metrics registers the node's Prometheus metrics if not nil.
	Metrics prometheus.Registerer
}

// Node is one natterd process's connection to NATS, with the Bus and the
// Registry that use it. Open returns it; Close ends it.
type Node struct {
	cfg Config
	id  string // Config.Node plus a random suffix: this incarnation
	log *slog.Logger
	nc  *nats.Conn
	js  jetstream.JetStream
	met *metrics
	bus *Bus
	reg *Registry
	// base is canceled by Close: background work and its NATS calls stop.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Open connects to NATS, makes sure the registry's bucket exists, writes
// this node's first heartbeat and starts its background work (heartbeats,
// expiry of dead nodes' sessions, recovery after reconnects). It fails if
// no NATS server in cfg.URLs answers, or JetStream is off.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger}
	n.base, n.cancel = context.WithCancel(context.Background())
	n.id = escape(cfg.Node) + "-" + randomHex(4)
	if cfg.Node == "" {
		n.id = randomHex(6)
	}
	n.log = n.log.With("node", n.id)
	n.met = newMetrics(cfg.Metrics)
	wake := make(chan struct{}, 1)
	opts := []nats.Option{
		nats.Name("natterd " + n.id),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.ReconnectJitter(cfg.ReconnectWait/2, cfg.ReconnectWait/2),
		nats.Timeout(cfg.OpTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.met.connected.Set(0)
			if err != nil {
				n.log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			n.met.connected.Set(1)
			n.met.reconnects.Inc()
			n.log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
			select {
			case wake <- struct{}{}: // the registry checks its bucket and sessions
			default:
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			if errors.Is(err, nats.ErrSlowConsumer) {
				n.met.dropped.Inc()
			}
			n.log.Warn("NATS error", "subject", subj, "err", err)
		}),
	}
	nc, err := nats.Connect(cfg.URLs, opts...)
	if err != nil {
		n.cancel()
		return nil, fmt.Errorf("natsbus: connect to %s: %w", redact(cfg.URLs), err)
	}
	n.nc = nc
	n.met.connected.Set(1)
	if n.js, err = jetstream.New(nc); err != nil {
		n.cancel()
		nc.Close()
		return nil, fmt.Errorf("natsbus: jetstream: %w", err)
	}
	n.bus = newBus(n)
	if n.reg, err = newRegistry(ctx, n); err != nil {
		n.cancel()
		nc.Close()
		return nil, err
	}
	n.met.watch(n.reg)
	n.wg.Go(func() { n.reg.maintain(wake) })
	return n, nil
}

// fill checks cfg and applies the defaults.
func (cfg *Config) fill() error {
	if strings.TrimSpace(cfg.URLs) == "" {
		return errors.New("natsbus: no NATS URL")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	for _, tok := range strings.Split(cfg.Prefix, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("natsbus: prefix %q is not a NATS subject", cfg.Prefix)
		}
	}
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Replicas < 1 || cfg.Replicas > 5 {
		return fmt.Errorf("natsbus: %d replicas: JetStream takes 1 to 5", cfg.Replicas)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 5 * time.Second
	}
	if cfg.ReconnectWait <= 0 {
		cfg.ReconnectWait = 250 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return nil
}

// Bus returns the node's bus.
func (n *Node) Bus() *Bus { return n.bus }

// Registry returns the node's registry.
func (n *Node) Registry() *Registry { return n.reg }

// ID returns the node's name in the registry: Config.Node and a random
// suffix.
func (n *Node) ID() string { return n.id }

// Close stops the node's background work, ends its bus subscriptions and
// closes its NATS connection, after sending what it buffered (waiting at
// most OpTimeout). If no session
// of this node is left in the registry it deletes its heartbeat; otherwise
// it leaves it to go stale, so that the other nodes expire those sessions
// and tell contacts. Closing twice is not an error.
func (n *Node) Close() error {
	n.once.Do(func() {
		n.cancel()
		n.wg.Wait()
		n.bus.Close()
		n.reg.close()
		// Send what is buffered, then close. (Drain would also wait for
		// the channel subscriptions, which nobody reads any more.)
		if err := n.nc.FlushTimeout(n.cfg.OpTimeout); err != nil && !n.nc.IsClosed() {
			n.log.Warn("close: buffered events not all sent", "err", err)
		}
		n.nc.Close()
	})
	return nil
}

// Crash closes the NATS connection at once and stops the node's work with
// no cleanup at all, as if its process had died: its subscriptions end,
// and its sessions and heartbeat stay in the registry until the other
// nodes expire them. It is for tests of a cluster; Close after it does
// nothing.
func (n *Node) Crash() {
	n.once.Do(func() {
		n.cancel()
		n.nc.Close()
		n.wg.Wait()
		n.bus.Close()
	})
}

// opContext returns a context bounded by OpTimeout and ended by Close,
// for NATS calls that no caller's context bounds.
func (n *Node) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(n.base, n.cfg.OpTimeout)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// redact drops passwords from URLs for error messages.
func redact(urls string) string {
	var out []string
	for _, u := range strings.Split(urls, ",") {
		u = strings.TrimSpace(u)
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if i := strings.Index(u, "://"); i >= 0 && i < at {
				u = u[:i+3] + "…@" + u[at+1:]
			}
		}
		out = append(out, u)
	}
	return strings.Join(out, ",")
}
