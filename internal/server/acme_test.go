package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter/internal/testenv"
	"github.com/natterim/natter/internal/tlscert"
)

// TestACMEPebble gets natterd a certificate from Pebble, the ACME test
// CA, over TLS-ALPN-01, with real processes: pebble-challtestsrv as the
// DNS server Pebble asks (it answers every A query with 127.0.0.1, so
// the test's name, chat.natter.test, leads Pebble's validation to
// natterd with no /etc/hosts entry), Pebble itself (its tlsPort pointed
// at natterd's --http port, so its validation reaches natterd's HTTPS
// listener) and natterd, built from cmd/natterd. Pebble validates for
// real: PEBBLE_VA_ALWAYS_VALID is not set.
func TestACMEPebble(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Pebble and natterd")
	}
	pebble, err1 := exec.LookPath("pebble")
	challtestsrv, err2 := exec.LookPath("pebble-challtestsrv")
	if err1 != nil || err2 != nil {
		testenv.Unavailable(t, "needs pebble and pebble-challtestsrv (Debian package pebble)")
	}
	const domain = "chat.natter.test"
	dir := t.TempDir()

	// Pebble's own HTTPS certificate, from a CA made here: natterd
	// trusts that CA for the directory through --acme-ca.
	caFile, certFile, keyFile := writeTestCA(t, dir)

	dnsAddr := freeAddr(t, "udp")
	ctsMgmt := freeAddr(t, "tcp")
	pebbleAddr, pebbleMgmt := freeAddr(t, "tcp"), freeAddr(t, "tcp")
	httpAddr := freeAddr(t, "tcp") // natterd's --http, Pebble's tlsPort
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	_, unusedPort, _ := net.SplitHostPort(freeAddr(t, "tcp")) // Pebble's httpPort: natterd does not answer HTTP-01

	startProcess(t, "pebble-challtestsrv", nil, challtestsrv,
		"-dns01", dnsAddr, "-http01", "", "-https01", "", "-tlsalpn01", "",
		"-management", ctsMgmt, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	config, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress": pebbleAddr, "managementListenAddress": pebbleMgmt,
		"certificate": certFile, "privateKey": keyFile,
		"httpPort": atoi(t, unusedPort), "tlsPort": atoi(t, httpPort),
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
	}})
	configFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(configFile, config, 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, "pebble", []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"}, pebble,
		"-config", configFile, "-dnsserver", dnsAddr)

	caPool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	caPool.AppendCertsFromPEM(caPEM)
	pebbleClient := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool}}}
	defer pebbleClient.CloseIdleConnections()
	waitFor(t, "pebble's directory", func() error {
		resp, err := pebbleClient.Get("https://" + pebbleAddr + "/dir")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})

	bin := buildNatterd(t)
	log := startProcess(t, "natterd", nil, bin,
		"--data", filepath.Join(dir, "natter-data"), "--listen", "127.0.0.1:0", "--http", httpAddr,
		"--udp", "", "--admin", "",
		"--acme-domain", domain, "--acme-directory", "https://"+pebbleAddr+"/dir",
		"--acme-ca", caFile, "--acme-email", "ops@natter.test")
	line := log.wait(t, 2*time.Minute, "ACME certificate ready", "ACME certificate failed")
	if strings.Contains(line, "failed") {
		t.Fatalf("natterd could not get a certificate: %s\nnatterd's log:\n%s", line, log)
	}
	for _, want := range []string{"msg=certificate acme=" + domain, `msg="ACME certificate obtained" component=acme name=` + domain} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("natterd's log lacks %q:\n%s", want, log)
		}
	}
	tlsAddr := log.field(t, "kind=tls", "addr")
	ready := log.field(t, "ACME certificate ready", "sha256")

	// Pebble makes a new root at each start; the certificate must chain
	// to it and name the domain, on both listeners.
	resp, err := pebbleClient.Get("https://" + pebbleMgmt + "/roots/0")
	if err != nil {
		t.Fatalf("pebble's root: %v", err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's /roots/0: no certificate in %q", rootPEM)
	}
	clientTLS := func(protos ...string) *tls.Config {
		return &tls.Config{RootCAs: roots, ServerName: domain, NextProtos: protos, MinVersion: tls.VersionTLS13}
	}
	for _, l := range []struct {
		name, addr, proto string
	}{{"--http", httpAddr, "http/1.1"}, {"--listen", tlsAddr, "natter/1"}} {
		t.Run(l.name, func(t *testing.T) {
			c, err := tls.Dial("tcp", l.addr, clientTLS(l.proto)) // verifies the chain and the name
			if err != nil {
				t.Fatalf("TLS to %s as %s, trusting Pebble's root: %v", l.addr, domain, err)
			}
			defer c.Close()
			leaf := c.ConnectionState().PeerCertificates[0]
			if !slices.Contains(leaf.DNSNames, domain) {
				t.Errorf("certificate names %q, want %s", leaf.DNSNames, domain)
			}
			// A TLS 1.3-only client (natter's own) gets the ECDSA
			// certificate natterd obtained at start, not an RSA one
			// obtained for it.
			if fp := tlscert.Fingerprint(leaf); fp != ready {
				t.Errorf("certificate %s (%v), want the one obtained at start, %s", fp, leaf.PublicKeyAlgorithm, ready)
			}
			if _, err := tls.Dial("tcp", l.addr, &tls.Config{RootCAs: caPool, ServerName: domain}); err == nil {
				t.Error("the certificate verified against the test CA of Pebble's HTTPS too: not Pebble's issuance")
			}
		})
	}

	if n := strings.Count(log.String(), "ACME certificate obtained"); n != 1 {
		t.Errorf("natterd obtained %d certificates, want 1:\n%s", n, log)
	}

	// HSTS: the certificate is one browsers accept.
	wc := webClient(t, clientTLS())
	resp, _ = fetch(t, wc, "GET", "https://"+httpAddr+"/nope")
	checkSecurityHeaders(t, "ACME", resp, true)
}

// writeTestCA makes a CA and a certificate it signs for 127.0.0.1 and
// localhost, and writes the CA's certificate, that certificate and its
// key as PEM files in dir.
func writeTestCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "natter test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "PRIVATE KEY", pkcs8}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

// freeAddr returns a 127.0.0.1 address with a port free just now on
// network (tcp, or udp: then free for TCP as well).
func freeAddr(t *testing.T, network string) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		if network == "udp" {
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				l.Close()
				continue
			}
			u.Close()
		}
		l.Close()
		return addr
	}
	t.Fatal("no free port")
	return ""
}

func atoi(t *testing.T, s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return n
}

// procLog is a process's combined output, kept as it comes.
type procLog struct {
	mu    sync.Mutex
	lines []string
	added chan struct{} // closed and replaced at each line
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// wait returns the first line containing any of subs, waiting up to d.
func (l *procLog) wait(t *testing.T, d time.Duration, subs ...string) string {
	t.Helper()
	deadline := time.After(d)
	for seen := 0; ; {
		l.mu.Lock()
		lines, added := l.lines[seen:], l.added
		seen = len(l.lines)
		l.mu.Unlock()
		for _, line := range lines {
			for _, s := range subs {
				if strings.Contains(line, s) {
					return line
				}
			}
		}
		select {
		case <-added:
		case <-deadline:
			t.Fatalf("no log line with any of %q within %v:\n%s", subs, d, l)
		}
	}
}

// field returns the value of key in the first line containing sub.
func (l *procLog) field(t *testing.T, sub, key string) string {
	t.Helper()
	line := l.wait(t, 10*time.Second, sub)
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s= in %q", key, line)
	return ""
}

// startProcess runs a program until the end of the test (then SIGTERM,
// and SIGKILL after 10 s), keeping its output in a procLog.
func startProcess(t *testing.T, name string, env []string, path string, args ...string) *procLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	l := &procLog{added: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			l.mu.Lock()
			l.lines = append(l.lines, sc.Text())
			close(l.added)
			l.added = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.CloseWithError(err)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("%s's output:\n%s", name, l)
		}
	})
	return l
}

// buildNatterd builds cmd/natterd into the test's temporary folder.
func buildNatterd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "natterd")
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build natterd: %v", err)
	}
	out, err := exec.Command(gobin, "build", "-o", bin, "../../cmd/natterd").CombinedOutput()
	if err != nil {
		t.Fatalf("go build natterd: %v\n%s", err, out)
	}
	return bin
}

// waitFor retries f for up to 30 s.
func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
