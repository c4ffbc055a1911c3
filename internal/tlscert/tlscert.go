// Package tlscert gives natterd a TLS certificate with no setup: on first
// start it makes a self-signed one and keeps it in the data folder, so every
// later start presents the same certificate. Clients cannot check a
// self-signed certificate against a CA, so they trust it on first use: they
// remember its Fingerprint and refuse a server whose fingerprint changes.
// That is why a certificate, once made, is never replaced silently: a
// damaged or half-written pair is an error for the operator to resolve.
//
// Operators with a real certificate (from a CA, or their own) use Load
// instead.
package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names inside the directory given to LoadOrCreate.
const (
	CertFile = "cert.pem"
	KeyFile  = "key.pem"
)

// Validity is how long a generated certificate is valid. It is long because
// replacing the certificate makes every client that pinned it warn: the
// operator should choose when that happens.
const Validity = 10 * 365 * 24 * time.Hour

// LoadOrCreate returns the certificate kept in dir as cert.pem and key.pem,
// creating both (and dir) on first use: a self-signed ECDSA P-256
// certificate valid for Validity, naming hosts (DNS names or IP addresses)
// and always localhost, 127.0.0.1 and ::1. Both files are written with mode
// 0600. The returned certificate has Leaf set.
//
// If only one of the files exists, or either cannot be parsed, LoadOrCreate
// returns an error and leaves the files alone: making a new certificate
// would change the fingerprint that clients have pinned, so it is the
// operator's decision (delete both files to get a new one).
//
// hosts are used only when creating. When loading, a host the certificate
// does not name is logged as a warning, not fixed, for the same reason.
// logger may be nil.
func LoadOrCreate(dir string, hosts []string, logger *slog.Logger) (tls.Certificate, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certOK, err := exists(certPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyOK, err := exists(keyPath)
	if err != nil {
		return tls.Certificate{}, err
	}

	switch {
	case certOK && keyOK:
		cert, err := Load(certPath, keyPath)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("%w (to make a new self-signed certificate, delete %s and %s; clients that trusted the old one will refuse the new one until told to trust it)", err, certPath, keyPath)
		}
		checkLoaded(logger, cert.Leaf, keyPath, hosts, time.Now())
		logger.Info("loaded TLS certificate", "cert", certPath, "fingerprint", Fingerprint(cert.Leaf), "expires", cert.Leaf.NotAfter)
		return cert, nil
	case certOK || keyOK:
		have, missing := certPath, keyPath
		if keyOK {
			have, missing = keyPath, certPath
		}
		return tls.Certificate{}, fmt.Errorf("tlscert: %s exists but %s does not; restore it, or delete %s to make a new self-signed certificate", have, missing, have)
	}

	certPEM, keyPEM, err := generate(hosts, time.Now())
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("tlscert: create certificate directory: %w", err)
	}
	// The key goes first: a crash between the two writes leaves a lone
	// key.pem, which the next start reports instead of using.
	if err := writeFile(keyPath, keyPEM); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFile(certPath, certPEM); err != nil {
		os.Remove(keyPath) // ours, written just now: do not leave it alone
		return tls.Certificate{}, err
	}
	cert, err := Load(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	logger.Info("created self-signed TLS certificate", "cert", certPath, "fingerprint", Fingerprint(cert.Leaf),
		"names", certNames(cert.Leaf), "expires", cert.Leaf.NotAfter)
	return cert, nil
}

// Load reads a PEM certificate chain and its private key, as supplied by an
// operator. The returned certificate has Leaf set to the first certificate
// of the chain.
func Load(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlscert: load %s and %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("tlscert: parse %s: %w", certFile, err)
		}
		cert.Leaf = leaf
	}
	return cert, nil
}

// Fingerprint returns the SHA-256 of cert's DER encoding as 64 lower-case
// hex digits with no separators, for example
// "3b4c0e...9f1a". This is the form clients pin and compare (as a plain
// string), and the form natter prints. It is what
//
//	openssl x509 -in cert.pem -outform DER | sha256sum
//
// prints, so an operator can check it with standard tools, and it is one
// word for terminals' double-click selection.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// generate makes a self-signed certificate and its key, PEM encoded.
func generate(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tlscert: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("tlscert: generate serial number: %w", err)
	}
	dns, ips := splitHosts(hosts)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"natter"}, CommonName: dns[0]},
		// An hour's slack for clients whose clocks are a little behind.
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              now.Add(Validity).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, // and not a CA: browsers refuse a CA certificate as a server's
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlscert: create certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlscert: encode key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	return certPEM, keyPEM, nil
}

// splitHosts sorts hosts, then localhost, 127.0.0.1 and ::1 (always named,
// so that local clients and tests can connect by name or loopback address),
// into DNS names and IP addresses, dropping empty entries, ports, brackets
// and duplicates. The first DNS name is the first host given, or localhost.
func splitHosts(hosts []string) (dns []string, ips []net.IP) {
	for _, h := range append(slices.Clone(hosts), "localhost", "127.0.0.1", "::1") {
		h = strings.TrimSpace(h)
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
			continue
		}
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if !slices.Contains(dns, h) {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

// checkLoaded logs what an operator should know about a loaded certificate:
// expiry, hosts it does not name, and a key file others can read.
func checkLoaded(logger *slog.Logger, leaf *x509.Certificate, keyPath string, hosts []string, now time.Time) {
	switch {
	case now.After(leaf.NotAfter):
		logger.Warn("TLS certificate has expired; clients will refuse it", "expired", leaf.NotAfter)
	case now.Add(30 * 24 * time.Hour).After(leaf.NotAfter):
		logger.Warn("TLS certificate expires soon", "expires", leaf.NotAfter)
	}
	dns, ips := splitHosts(hosts)
	for _, h := range dns {
		if leaf.VerifyHostname(h) != nil {
			logger.Warn("TLS certificate does not name a configured host; clients connecting by that name will warn (delete cert.pem and key.pem to make a new one)", "host", h)
		}
	}
	for _, ip := range ips {
		if leaf.VerifyHostname(ip.String()) != nil {
			logger.Warn("TLS certificate does not name a configured address; clients connecting to it will warn (delete cert.pem and key.pem to make a new one)", "host", ip.String())
		}
	}
	if fi, err := os.Stat(keyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("TLS private key is readable by other users; chmod 600 it", "key", keyPath, "mode", fi.Mode().Perm())
	}
}

// certNames lists the names and addresses a certificate is valid for.
func certNames(c *x509.Certificate) []string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("tlscert: %w", err)
	}
}

// writeFile writes data to path with mode 0600, atomically: it writes a
// temporary file in the same directory, syncs it and renames it into place,
// so a crash leaves either no file or the whole file.
func writeFile(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("tlscert: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// CreateTemp already uses 0600; Chmod guards against an unusual umask
	// or platform default.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("tlscert: write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("tlscert: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("tlscert: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("tlscert: write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("tlscert: write %s: %w", path, err)
	}
	return nil
}
