package client_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// mitm is a malicious server for tests: it holds natterd's TLS key (as an
// operator does), terminates the clients' TLS, and passes frames to and
// from the real natterd, recording every byte that crosses it in the clear
// and letting a test rewrite frames from the server.
type mitm struct {
	t       *testing.T
	inst    *servertest.Instance
	ln      net.Listener
	Addr    string
	rewrite func(f *wire.Frame) // frames from natterd to a client; nil: unchanged

	mu             sync.Mutex
	seen           bytes.Buffer             // both directions, decrypted
	cutUp, cutDown func(f *wire.Frame) bool // see setCuts
	stallUp        func(f *wire.Frame) bool // see setStall
}

// setStall sets a function that sees every frame to natterd, on every
// connection, open or not: once it returns true, that frame and all that
// follow on its connection are swallowed while the connection stays open,
// as on a link that went silent.
func (m *mitm) setStall(fn func(f *wire.Frame) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stallUp = fn
}

// setCuts sets functions that see every frame to natterd (up) and from it
// (down, after rewrite); returning true drops that connection right after
// passing the frame on, as a network failure would. Connections opened
// from then on use them.
func (m *mitm) setCuts(up, down func(f *wire.Frame) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cutUp, m.cutDown = up, down
}

func startMITM(t *testing.T, inst *servertest.Instance, rewrite func(*wire.Frame)) *mitm {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(inst.DataDir, "cert.pem"), filepath.Join(inst.DataDir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	m := &mitm{t: t, inst: inst, ln: ln, Addr: ln.Addr().String(), rewrite: rewrite}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { m.serve(c) })
		}
	})
	return m
}

func (m *mitm) serve(c net.Conn) {
	defer c.Close()
	up, err := tls.Dial("tcp", m.inst.Addr, m.inst.ClientTLS())
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pump := func(dst, src net.Conn, rw func(*wire.Frame), cut func(*wire.Frame) bool, up bool) {
		defer func() { done <- struct{}{} }()
		r := wire.NewReader(src, 64<<20)
		stalled := false
		for {
			f, err := r.ReadFrame()
			if err != nil {
				return
			}
			if up && !stalled {
				m.mu.Lock()
				stall := m.stallUp
				m.mu.Unlock()
				stalled = stall != nil && stall(&f)
			}
			if stalled {
				continue
			}
			f.Payload = bytes.Clone(f.Payload)
			if rw != nil {
				rw(&f)
			}
			b := wire.AppendFrame(nil, f.Type, f.Payload)
			m.mu.Lock()
			m.seen.Write(b)
			m.mu.Unlock()
			if _, err := dst.Write(b); err != nil {
				return
			}
			if cut != nil && cut(&f) {
				return
			}
		}
	}
	m.mu.Lock()
	cutUp, cutDown := m.cutUp, m.cutDown
	m.mu.Unlock()
	go pump(up, c, nil, cutUp, true)
	go pump(c, up, m.rewrite, cutDown, false)
	<-done
	c.Close()
	up.Close()
	<-done
}

// Seen returns a copy of every byte that crossed the proxy.
func (m *mitm) Seen() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.seen.Bytes())
}

func ecdsaKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
