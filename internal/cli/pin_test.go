package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned returns a self-signed certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "natter test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsServer accepts TLS connections with cert until the test ends.
func tlsServer(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func handshake(addr string, cfg *tls.Config) error {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	return c.Close()
}

func TestPinning(t *testing.T) {
	certA, certB := selfSigned(t), selfSigned(t)
	addrA, addrB := tlsServer(t, certA), tlsServer(t, certB)
	file := filepath.Join(t.TempDir(), pinFile)
	var notice bytes.Buffer
	p := &pinner{file: file, addr: addrA, notice: &notice, now: time.Now}
	cfg, err := tlsConfig(addrA, "", p)
	if err != nil {
		t.Fatal(err)
	}

	// First use: trusted, pinned, announced with the fingerprint.
	if err := handshake(addrA, cfg); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	wantFP := fingerprint(certA.Certificate[0])
	if !strings.Contains(notice.String(), wantFP) || !strings.Contains(notice.String(), "trust on first use") {
		t.Errorf("notice = %q, want the fingerprint %s and 'trust on first use'", notice.String(), wantFP)
	}
	if got, err := readPin(file); err != nil || got != wantFP {
		t.Fatalf("pin = %q, %v; want %s", got, err, wantFP)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("pin file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	// Same certificate again: accepted silently.
	notice.Reset()
	if err := handshake(addrA, cfg); err != nil {
		t.Fatalf("second connection: %v", err)
	}
	if notice.Len() != 0 {
		t.Errorf("second connection printed %q", notice.String())
	}

	// Another certificate: refused, naming both fingerprints and the file.
	p.addr = addrB
	err = handshake(addrB, cfg)
	var pm *pinMismatchError
	if !errors.As(err, &pm) {
		t.Fatalf("handshake with another certificate: %v, want a pin mismatch", err)
	}
	if pm.Pinned != wantFP || pm.Presented != fingerprint(certB.Certificate[0]) {
		t.Errorf("mismatch = %+v", pm)
	}
	if p.lastMismatch() == nil {
		t.Error("lastMismatch = nil after a mismatch")
	}
	msg := pm.explain()
	for _, want := range []string{pm.Pinned, pm.Presented, file, "rm "} {
		if !strings.Contains(msg, want) {
			t.Errorf("explanation lacks %q:\n%s", want, msg)
		}
	}
	if got, _ := readPin(file); got != wantFP {
		t.Errorf("a mismatch changed the pin to %s", got)
	}
}

func TestPinFileDamaged(t *testing.T) {
	for _, content := range []string{"garbage\n", "sha256 1234\n", "# only a comment\n"} {
		file := filepath.Join(t.TempDir(), pinFile)
		os.WriteFile(file, []byte(content), 0o600)
		if _, err := readPin(file); err == nil || !strings.Contains(err.Error(), "delete it") {
			t.Errorf("readPin(%q) = %v, want an error saying to delete it", content, err)
		}
	}
}

func TestCAFile(t *testing.T) {
	cert := selfSigned(t)
	addr := tlsServer(t, cert)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	cfg, err := tlsConfig(addr, ca, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(addr, cfg); err != nil {
		t.Errorf("handshake trusting the CA: %v", err)
	}
	other := filepath.Join(dir, "other.pem")
	os.WriteFile(other, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: selfSigned(t).Certificate[0]}), 0o600)
	cfg, _ = tlsConfig(addr, other, nil)
	if err := handshake(addr, cfg); err == nil {
		t.Error("handshake trusting another CA succeeded")
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not pem"), 0o600)
	if _, err := tlsConfig(addr, bad, nil); err == nil {
		t.Error("tlsConfig accepted a file with no certificate")
	}
}
