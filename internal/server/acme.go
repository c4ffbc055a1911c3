package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/natterim/natter/internal/tlscert"
)

// Certificates over ACME (RFC 8555) for public names, from Let's Encrypt
// or any ACME CA, through autocert. The challenge is TLS-ALPN-01, answered
// on the HTTPS listener (which must therefore be what the CA reaches on
// port 443 of each name): no port 80 is needed. Certificates, and the ACME
// account key, are kept in DATA/acme (0700, files 0600) and renewed by
// autocert 30 days before they expire.

// DefaultACMEDirectory is Let's Encrypt's production directory, the
// default of --acme-directory.
const DefaultACMEDirectory = autocert.DefaultACMEDirectory

// acmeDir is the folder in the data folder that holds ACME's state.
const acmeDir = "acme"

// acmeCerts gets and renews the certificates of its domains.
type acmeCerts struct {
	m       *autocert.Manager
	domains []string
	log     *slog.Logger

	mu      sync.Mutex
	failLog map[string]time.Time // when a handshake's failure for a name was last logged
}

// newACME prepares certificates for cfg.ACMEDomains; nothing is fetched
// until start or a handshake.
func newACME(cfg Config, log *slog.Logger) (*acmeCerts, error) {
	dir := filepath.Join(cfg.DataDir, acmeDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	hc := http.DefaultClient
	if cfg.ACMECAFile != "" {
		b, err := os.ReadFile(cfg.ACMECAFile)
		if err != nil {
			return nil, fmt.Errorf("acme: CA roots: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("acme: CA roots: no PEM certificate in %s", cfg.ACMECAFile)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		hc = &http.Client{Transport: tr, Timeout: time.Minute}
	}
	directory := cfg.ACMEDirectory
	if directory == "" {
		directory = DefaultACMEDirectory
	}
	a := &acmeCerts{domains: cfg.ACMEDomains, log: log.With("component", "acme"), failLog: map[string]time.Time{}}
	a.m = &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      loggingCache{Cache: autocert.DirCache(dir), log: a.log},
		HostPolicy: autocert.HostWhitelist(cfg.ACMEDomains...),
		Email:      cfg.ACMEEmail,
		Client:     &acme.Client{DirectoryURL: directory, HTTPClient: hc, UserAgent: "natterd/" + Version},
	}
	return a, nil
}

// getCertificate is the listeners' tls.Config.GetCertificate. It answers
// the CA's TLS-ALPN-01 challenges too. A failure for one of the names
// (the CA refused, cannot be reached) is logged once a minute per name;
// handshakes naming other hosts are refused quietly.
func (a *acmeCerts) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, err := a.m.GetCertificate(ecdsaHello(hello))
	if err != nil {
		name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
		if slices.Contains(a.domains, name) && !slices.Contains(hello.SupportedProtos, acme.ALPNProto) && a.shouldLog(name) {
			a.log.Error("ACME certificate failed", "name", name, "err", err)
		}
	}
	return cert, err
}

// shouldLog reports whether a handshake's failure for name is due to be
// logged, at most once a minute.
func (a *acmeCerts) shouldLog(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if time.Since(a.failLog[name]) < time.Minute {
		return false
	}
	a.failLog[name] = time.Now()
	return true
}

// start gets each name's certificate (from the cache, or from the CA) in
// the background, so that the first client does not wait for it and the
// log says at once whether it worked. autocert bounds each attempt to 5
// minutes and cannot be cancelled; a stop meanwhile leaves the attempt to
// end on its own.
func (a *acmeCerts) start() {
	for _, name := range a.domains {
		go func() {
			// A hello that accepts ECDSA, as browsers' do, so the
			// certificate fetched is the one they will get.
			cert, err := a.m.GetCertificate(&tls.ClientHelloInfo{
				ServerName:       name,
				SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
				SupportedCurves:  []tls.CurveID{tls.CurveP256},
				CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			})
			if err != nil {
				a.shouldLog(name)
				a.log.Error("ACME certificate failed", "name", name, "err", err)
				return
			}
			if leaf := leafOf(cert); leaf != nil {
				a.log.Info("ACME certificate ready", "name", name, "issuer", leaf.Issuer.String(),
					"expires", leaf.NotAfter, "sha256", tlscert.Fingerprint(leaf))
			}
		}()
	}
}

// ecdsaHello returns hello as autocert should see it to choose the ECDSA
// certificate for a TLS 1.3 client that accepts ECDSA signatures.
// autocert looks for an ECDHE-ECDSA cipher suite, which only TLS 1.2
// has: so a client offering only TLS 1.3's suites (Go's, with MinVersion
// TLS 1.3, like natter's own) would get an RSA certificate, and autocert
// would obtain a second certificate for it. natterd speaks TLS 1.3 only,
// whose suites do not depend on the key type: the signature algorithms
// the client offers decide.
func ecdsaHello(hello *tls.ClientHelloInfo) *tls.ClientHelloInfo {
	if !slices.Contains(hello.SupportedVersions, tls.VersionTLS13) ||
		!slices.Contains(hello.SignatureSchemes, tls.ECDSAWithP256AndSHA256) {
		return hello
	}
	h := *hello
	h.CipherSuites = append(slices.Clone(h.CipherSuites), tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
	h.SupportedCurves = nil // key exchange groups, which autocert also checks: in TLS 1.3 they do not bind the certificate
	return &h
}

func leafOf(c *tls.Certificate) *x509.Certificate {
	if c.Leaf != nil {
		return c.Leaf
	}
	if len(c.Certificate) == 0 {
		return nil
	}
	leaf, _ := x509.ParseCertificate(c.Certificate[0])
	return leaf
}

// loggingCache is autocert's cache that logs each certificate stored in
// it: one that autocert has just obtained or renewed.
type loggingCache struct {
	autocert.Cache
	log *slog.Logger
}

// Put implements autocert.Cache.
func (c loggingCache) Put(ctx context.Context, key string, data []byte) error {
	err := c.Cache.Put(ctx, key, data)
	name, isCert := certCacheKey(key)
	switch {
	case !isCert:
	case err != nil:
		c.log.Error("ACME certificate obtained but not saved", "name", name, "err", err)
	default:
		var leaf *x509.Certificate
		for rest := data; leaf == nil; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if b.Type == "CERTIFICATE" {
				leaf, _ = x509.ParseCertificate(b.Bytes)
			}
		}
		if leaf == nil {
			c.log.Info("ACME certificate obtained", "name", name)
			break
		}
		c.log.Info("ACME certificate obtained", "name", name, "names", strings.Join(leaf.DNSNames, ","),
			"key", leaf.PublicKeyAlgorithm.String(), "issuer", leaf.Issuer.String(), "expires", leaf.NotAfter,
			"sha256", tlscert.Fingerprint(leaf))
	}
	return err
}

// certCacheKey tells autocert's cache keys for certificates ("name",
// "name+rsa") from the others (the account key, challenge tokens).
func certCacheKey(key string) (name string, ok bool) {
	if name, ok := strings.CutSuffix(key, "+rsa"); ok {
		return name, true
	}
	return key, !strings.Contains(key, "+")
}

// checkACMEDomains normalizes the names given to --acme-domain: lower
// case, no trailing dot; each must be a DNS name with a dot (ACME issues
// no certificates for IP addresses or single-label names).
func checkACMEDomains(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
		if n == "" {
			continue
		}
		if !strings.Contains(n, ".") || strings.ContainsAny(n, ":/ ") || strings.Trim(n, "0123456789.") == "" {
			return nil, fmt.Errorf("%q: need a public DNS name such as chat.example.org", n)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no name given")
	}
	return out, nil
}
