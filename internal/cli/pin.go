package cli

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// A home trusts one server certificate. With --ca FILE the server's
// certificate is verified the usual way (chain to the given CA, host name).
// Without it natter pins: the first connection records the SHA-256 of the
// server's leaf certificate (DER) in the home's pin file and says so on
// stderr; every later connection must present the same certificate. That is
// trust on first use, as ssh does with known_hosts, and it suits natter's
// self-signed server certificates. A pin belongs to the home, not to an
// address: the home's session token only means something to that server.

// pinMismatchError is returned when the server presents a certificate other
// than the pinned one.
type pinMismatchError struct {
	Addr      string
	Pinned    string // hex SHA-256 of the pinned certificate
	Presented string // hex SHA-256 of the certificate the server presented
	PinFile   string
}

func (e *pinMismatchError) Error() string {
	return fmt.Sprintf("server certificate mismatch for %s: pinned sha256 %s, presented sha256 %s", e.Addr, e.Pinned, e.Presented)
}

// explain is the loud, multi-line message for a mismatch.
func (e *pinMismatchError) explain() string {
	return fmt.Sprintf(`WARNING: THE SERVER'S CERTIFICATE HAS CHANGED. Connection refused.
  server:    %s
  pinned:    sha256 %s
  presented: sha256 %s
Someone may be intercepting the connection, or the server's certificate was
replaced. If you know the new certificate is genuine (compare it with the
"certificate sha256=" line the server logs at startup), reset the pin with
  rm %s
and connect again: natter will trust the new certificate on first use.`,
		e.Addr, e.Pinned, e.Presented, e.PinFile)
}

// errNotTrusted: the person did not trust the server's certificate.
var errNotTrusted = errors.New("you did not trust the server's certificate")

// fingerprint returns the hex SHA-256 of a DER certificate.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// pinner verifies a connection's certificate against the pin file, writing
// the pin on first use. It is safe for concurrent use (a client may
// reconnect on another goroutine).
type pinner struct {
	file   string    // the pin file
	addr   string    // the server address, for messages
	notice io.Writer // where the trust-on-first-use notice goes
	now    func() time.Time
	// ask, if set, asks the person on first use instead of printing the
	// notice (the terminal UI's login form): false refuses the server.
	ask func(addr, fingerprint string) bool

	mu       sync.Mutex
	mismatch *pinMismatchError // the last mismatch seen, if any
	refused  bool              // ask said no
}

// verify is tls.Config.VerifyConnection for pinning.
func (p *pinner) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server presented no certificate")
	}
	got := fingerprint(cs.PeerCertificates[0].Raw)
	p.mu.Lock()
	defer p.mu.Unlock()
	pinned, err := readPin(p.file)
	if err != nil {
		return err
	}
	if pinned == "" {
		if p.ask != nil {
			if !p.ask(p.addr, got) {
				p.refused = true
				return errNotTrusted
			}
			if err := writePin(p.file, got, p.addr, p.now()); err != nil {
				return fmt.Errorf("pin the server certificate: %w", err)
			}
			return nil
		}
		if err := writePin(p.file, got, p.addr, p.now()); err != nil {
			return fmt.Errorf("pin the server certificate: %w", err)
		}
		fmt.Fprintf(p.notice, "natter: first connection to %s: trusting its certificate (trust on first use).\n", p.addr)
		fmt.Fprintf(p.notice, "natter: certificate SHA-256 fingerprint: %s\n", got)
		fmt.Fprintf(p.notice, "natter: pinned in %s; natter will refuse any other certificate from now on.\n", p.file)
		return nil
	}
	if got != pinned {
		p.mismatch = &pinMismatchError{Addr: p.addr, Pinned: pinned, Presented: got, PinFile: p.file}
		return p.mismatch
	}
	return nil
}

// wasRefused reports whether the person did not trust the certificate.
func (p *pinner) wasRefused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// lastMismatch returns the mismatch seen, if any. The TLS stack returns
// VerifyConnection's error unwrapped, but a client library may not keep it
// in its own error chain, so the pinner remembers it.
func (p *pinner) lastMismatch() *pinMismatchError {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mismatch
}

// readPin returns the pinned fingerprint, or "" if there is no pin file.
// The file holds comment lines (#) and one line "sha256 HEX".
func readPin(file string) (string, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read pinned certificate: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		hexsum, ok := strings.CutPrefix(line, "sha256 ")
		hexsum = strings.ToLower(strings.TrimSpace(hexsum))
		if raw, err := hex.DecodeString(hexsum); ok && err == nil && len(raw) == sha256.Size {
			return hexsum, nil
		}
		break
	}
	return "", fmt.Errorf("%s is damaged: delete it to pin the server's certificate again", file)
}

// writePin creates the pin file (mode 0600). It refuses to replace an
// existing one.
func writePin(file, sum, addr string, now time.Time) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "# natter: pinned certificate of the server (trust on first use).\n# First seen at %s on %s. Delete this file to trust a new certificate.\nsha256 %s\n",
		addr, now.UTC().Format(time.RFC3339), sum)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
	}
	return err
}

// tlsConfig returns the TLS configuration to reach addr: verification with
// the CA certificates in caFile if it is set, else pinning through p.
func tlsConfig(addr, caFile string, p *pinner) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate found", caFile)
		}
		return &tls.Config{RootCAs: pool, ServerName: host}, nil
	}
	return &tls.Config{
		ServerName: host,
		// Chain and host name checks are replaced by the pin: the server's
		// certificate is self-signed, and the pin is a stronger check.
		InsecureSkipVerify: true,
		VerifyConnection:   p.verify,
	}, nil
}
