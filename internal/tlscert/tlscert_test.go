package tlscert

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

var testHosts = []string{"chat.example.com", "203.0.113.5", "[2001:db8::5]:4433", "", "Chat.Example.com."}

// logBuffer returns a logger that writes text to the returned buffer.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func TestCreateThenLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "tls")
	logger, logs := logBuffer()
	first, err := LoadOrCreate(dir, testHosts, logger)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "created self-signed TLS certificate") || !strings.Contains(logs.String(), Fingerprint(first.Leaf)) {
		t.Errorf("creation log does not give the fingerprint:\n%s", logs)
	}
	certPEM, _ := os.ReadFile(filepath.Join(dir, CertFile))
	keyPEM, _ := os.ReadFile(filepath.Join(dir, KeyFile))

	logs.Reset()
	second, err := LoadOrCreate(dir, testHosts, logger)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := Fingerprint(first.Leaf), Fingerprint(second.Leaf); a != b {
		t.Fatalf("fingerprint changed on reload: %s then %s", a, b)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("reload of a fresh certificate warned:\n%s", logs)
	}
	certAfter, _ := os.ReadFile(filepath.Join(dir, CertFile))
	keyAfter, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	if !bytes.Equal(certPEM, certAfter) || !bytes.Equal(keyPEM, keyAfter) {
		t.Fatal("reload rewrote the files")
	}
}

func TestGeneratedCertificate(t *testing.T) {
	before := time.Now()
	cert, err := LoadOrCreate(t.TempDir(), testHosts, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf

	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if _, ok := cert.PrivateKey.(*ecdsa.PrivateKey); !ok {
		t.Errorf("private key is %T, want *ecdsa.PrivateKey", cert.PrivateKey)
	}
	if leaf.IsCA {
		t.Error("certificate is a CA; browsers refuse CA certificates as server certificates")
	}
	if life := leaf.NotAfter.Sub(before); life < 9*365*24*time.Hour || life > 11*365*24*time.Hour {
		t.Errorf("certificate is valid for %v, want about 10 years", life)
	}
	if leaf.NotBefore.After(before) {
		t.Errorf("NotBefore %v is after creation time %v", leaf.NotBefore, before)
	}
	if got, want := strings.Join(leaf.DNSNames, " "), "chat.example.com localhost"; got != want {
		t.Errorf("DNS names %q, want %q", got, want)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if got, want := strings.Join(ips, " "), "203.0.113.5 2001:db8::5 127.0.0.1 ::1"; got != want {
		t.Errorf("IP addresses %q, want %q", got, want)
	}

	// A client that trusts this certificate (as pinning does) accepts it
	// for every name it was made for.
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	for _, host := range []string{"chat.example.com", "203.0.113.5", "2001:db8::5", "localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
}

func TestFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix file modes")
	}
	dir := t.TempDir()
	if _, err := LoadOrCreate(dir, nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{KeyFile, CertFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %o, want 600", name, m)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want only %s and %s (no temporary files left)", len(entries), CertFile, KeyFile)
	}
}

func TestKeyReadableByOthersWarns(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix file modes")
	}
	dir := t.TempDir()
	if _, err := LoadOrCreate(dir, nil, nil); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, KeyFile), 0o644)
	logger, logs := logBuffer()
	if _, err := LoadOrCreate(dir, nil, logger); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "readable by other users") {
		t.Errorf("no warning for a world-readable key:\n%s", logs)
	}
}

func TestNewHostWarns(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreate(dir, []string{"old.example.com"}, nil); err != nil {
		t.Fatal(err)
	}
	logger, logs := logBuffer()
	cert, err := LoadOrCreate(dir, []string{"new.example.com"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "host=new.example.com") {
		t.Errorf("no warning for a host the certificate does not name:\n%s", logs)
	}
	if cert.Leaf.VerifyHostname("old.example.com") != nil {
		t.Error("certificate was replaced; it must be kept (clients pinned it)")
	}
}

// TestBrokenFiles: damaged or half-present files are errors that name the
// file and say what to do, and the files are left exactly as they were.
func TestBrokenFiles(t *testing.T) {
	otherCert, otherKey, err := generate(nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		wantErr string // regexp
	}{
		{"CorruptCert", func(t *testing.T, dir string) {
			write(t, dir, CertFile, []byte("this is not a certificate\n"))
		}, `cert\.pem.*failed to find any PEM data.*delete`},
		{"TruncatedCert", func(t *testing.T, dir string) {
			b := read(t, dir, CertFile)
			write(t, dir, CertFile, b[:len(b)/2])
		}, `cert\.pem.*delete`},
		{"CorruptKey", func(t *testing.T, dir string) {
			write(t, dir, KeyFile, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
		}, `key\.pem.*delete`},
		{"MismatchedPair", func(t *testing.T, dir string) {
			write(t, dir, KeyFile, otherKey)
		}, `private key does not match public key`},
		{"CertWithoutKey", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, KeyFile))
		}, `cert\.pem exists but .*key\.pem does not`},
		{"KeyWithoutCert", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, CertFile))
		}, `key\.pem exists but .*cert\.pem does not`},
		{"OtherCertWithoutKey", func(t *testing.T, dir string) {
			write(t, dir, CertFile, otherCert)
			os.Remove(filepath.Join(dir, KeyFile))
		}, `cert\.pem exists but`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreate(dir, nil, nil); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, dir)
			before := snapshot(t, dir)
			_, err := LoadOrCreate(dir, nil, nil)
			if err == nil {
				t.Fatal("LoadOrCreate succeeded on broken files")
			}
			if !regexp.MustCompile(tt.wantErr).MatchString(err.Error()) {
				t.Errorf("error %q does not match %q", err, tt.wantErr)
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("LoadOrCreate changed the files:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestDirIsAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	write(t, filepath.Dir(file), "f", []byte("x"))
	if _, err := LoadOrCreate(file, nil, nil); err == nil {
		t.Fatal("LoadOrCreate succeeded with a file as its directory")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	created, err := LoadOrCreate(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An operator's files may have any names.
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	os.Rename(filepath.Join(dir, CertFile), certFile)
	os.Rename(filepath.Join(dir, KeyFile), keyFile)
	loaded, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Leaf == nil || Fingerprint(loaded.Leaf) != Fingerprint(created.Leaf) {
		t.Fatal("Load returned another certificate, or no Leaf")
	}
	if _, err := Load(filepath.Join(dir, "missing.crt"), keyFile); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.crt") {
		t.Errorf("Load of a missing file: %v, want a not-exist error naming the file", err)
	}
}

func TestFingerprint(t *testing.T) {
	cert, err := LoadOrCreate(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fp := Fingerprint(cert.Leaf)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q is not 64 lower-case hex digits", fp)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	if fp != hex.EncodeToString(sum[:]) {
		t.Fatal("fingerprint is not the SHA-256 of the DER certificate")
	}
	// A fixed input gives a fixed answer (printf natter | sha256sum).
	if got, want := Fingerprint(&x509.Certificate{Raw: []byte("natter")}), "7df5c7691abf5d2cbb2db300dc42a99190dfd4f64a87795170a3dc3fe3d3d9ca"; got != want {
		t.Errorf("Fingerprint = %s, want %s", got, want)
	}
}

// TestHandshake: the certificate works for TLS, and a client that pinned its
// fingerprint (trust on first use) connects without a CA.
func TestHandshake(t *testing.T) {
	cert, err := LoadOrCreate(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pinned := Fingerprint(cert.Leaf)
	cconn, sconn := net.Pipe()
	defer cconn.Close()
	defer sconn.Close()
	server := tls.Server(sconn, &tls.Config{Certificates: []tls.Certificate{cert}})
	client := tls.Client(cconn, &tls.Config{
		ServerName:         "localhost",
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			if Fingerprint(leaf) != pinned {
				return errors.New("fingerprint mismatch")
			}
			return nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- server.HandshakeContext(ctx) }()
	if err := client.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
}

func write(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// snapshot describes dir's entries and contents, to detect any change.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		sum := sha256.Sum256(data)
		b.WriteString(e.Name() + "=" + hex.EncodeToString(sum[:8]) + " ")
	}
	return b.String()
}
