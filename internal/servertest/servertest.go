// Package servertest starts real natterd servers for tests: real TCP
// listeners on 127.0.0.1, real TLS with the server's self-generated
// certificate, a real SQLite file in a temporary folder.
package servertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter/internal/server"
)

// Instance is a running server.
type Instance struct {
	Addr, HTTPAddr, AdminAddr string
	UDPAddr                   string // STUN/TURN
	DataDir                   string
	Fingerprint               string
	Config                    server.Config

	t   testing.TB
	srv *server.Server
	r   *running
	log *Log // natterd's log, kept across Restart; nil if opts set Config.Logger
}

// running is shared by copies of an Instance, so it is stopped once.
type running struct {
	once   sync.Once
	cancel context.CancelFunc
	done   chan error
}

// Start runs a server with a fresh data folder on 127.0.0.1:0 (all three
// listeners), applying opts to its Config first. It is stopped at the end
// of the test. Its log goes to a Log (see Instance.Log): an ERROR line
// that the test does not Expect fails the test.
func Start(t testing.TB, opts ...func(*server.Config)) *Instance {
	t.Helper()
	log := NewLog(t)
	cfg := server.Config{
		DataDir: filepath.Join(t.TempDir(), "natter-data"), Listen: "127.0.0.1:0", HTTP: "127.0.0.1:0", Admin: "127.0.0.1:0", UDP: "127.0.0.1:0",
		Logger: log.Logger(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	in, err := start(t, cfg)
	if err != nil {
		t.Fatalf("start natterd: %v", err)
	}
	in.log = log
	return in
}

// Logger returns a logger for a server the test assembles itself: it
// writes to a new Log for t, so an ERROR line fails the test when it ends.
func Logger(t testing.TB) *slog.Logger {
	return NewLog(t).Logger()
}

// Log returns the server's log, to read its lines or Expect errors. It
// fails the test if opts gave the server a logger of their own.
func (in *Instance) Log() *Log {
	if in.log == nil {
		in.t.Fatal("servertest: the server logs to the Config.Logger the test gave it, not to a servertest.Log")
	}
	return in.log
}

func start(t testing.TB, cfg server.Config) (*Instance, error) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	in := &Instance{
		Addr: srv.Addr().String(), DataDir: cfg.DataDir, Fingerprint: srv.Fingerprint(), Config: cfg,
		t: t, srv: srv, r: &running{cancel: cancel, done: make(chan error, 1)},
	}
	if a := srv.HTTPAddr(); a != nil {
		in.HTTPAddr = a.String()
	}
	if a := srv.AdminAddr(); a != nil {
		in.AdminAddr = a.String()
	}
	if a := srv.UDPAddr(); a != nil {
		in.UDPAddr = a.String()
	}
	go func() { in.r.done <- srv.Serve(ctx) }()
	t.Cleanup(in.Stop)
	return in, nil
}

// Server returns the running server.
func (in *Instance) Server() *server.Server { return in.srv }

// Stop stops the server gracefully and waits for it. Stopping twice is fine.
func (in *Instance) Stop() {
	in.r.once.Do(func() {
		in.r.cancel()
		select {
		case err := <-in.r.done:
			if err != nil {
				in.t.Errorf("natterd stopped with error: %v", err)
			}
		case <-time.After(30 * time.Second):
			in.t.Errorf("natterd did not stop within 30s")
		}
	})
}

// Restart stops the server and starts a new one on the same data folder and
// the same addresses (what clients see as a server restart).
func (in *Instance) Restart() {
	in.t.Helper()
	in.Stop()
	cfg := in.Config
	cfg.Listen, cfg.HTTP, cfg.Admin, cfg.UDP = in.Addr, in.HTTPAddr, in.AdminAddr, in.UDPAddr
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := start(in.t, cfg)
		if err == nil {
			n.log = in.log
			*in = *n
			return
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("restart natterd: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the old listeners may linger a moment
	}
}

// ClientTLS returns a TLS configuration that trusts this server's
// certificate (and nothing else).
func (in *Instance) ClientTLS() *tls.Config {
	pool := x509.NewCertPool()
	b, err := os.ReadFile(filepath.Join(in.DataDir, "cert.pem"))
	if err != nil {
		in.t.Fatalf("read server certificate: %v", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		in.t.Fatal("server certificate: no PEM certificate")
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS13}
}

// CertPEM returns the server certificate in PEM form.
func (in *Instance) CertPEM() []byte {
	b, err := os.ReadFile(filepath.Join(in.DataDir, "cert.pem"))
	if err != nil {
		in.t.Fatalf("read server certificate: %v", err)
	}
	if blk, _ := pem.Decode(b); blk == nil {
		in.t.Fatal("server certificate: no PEM block")
	}
	return b
}

var _ io.Writer = logWriter{}
