package session

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/natterim/natter/wire"
)

// tlsPair returns the two ends of a real TLS connection over loopback
// TCP, the server's read through a RecordConn as natterd reads it.
func tlsPair(t *testing.T) (server *StreamConn, client *tls.Conn) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		sc  *StreamConn
		err error
	}
	got := make(chan accepted, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			got <- accepted{err: err}
			return
		}
		rc := NewRecordConn(nc, nc.(syscall.Conn))
		tc := tls.Server(rc, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
		if err := tc.Handshake(); err != nil {
			got <- accepted{err: err}
			return
		}
		got <- accepted{sc: NewStreamConn(tc, 0, &Buffers{}, rc)}
	}()
	cc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	t.Cleanup(func() { cc.Close(); a.sc.Close() })
	return a.sc, cc
}

// rawFrame is a length-prefixed frame of type 0x01 with a payload of n-1
// bytes that say where they are.
func rawFrame(n int) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, 0x01)
	for i := 1; i < n; i++ {
		b = append(b, byte(i*7+n))
	}
	return b
}

func TestStreamConnReadsFrames(t *testing.T) {
	// The last frame is small: after a frame larger than the read buffer,
	// whose last read filled it, the StreamConn cannot tell whether
	// crypto/tls holds more (Idle says false until the next frame).
	sizes := []int{1, 2, 100, readChunk - 5, readChunk - 4, readChunk - 3, readChunk, 1 << 17, 1<<17 + 1, wire.DefaultMaxFrame, 3}
	for _, tc := range []struct {
		name  string
		write func(c *tls.Conn, stream []byte) error
	}{
		{"one write", func(c *tls.Conn, b []byte) error { _, err := c.Write(b); return err }},
		{"a write per 1000 bytes", func(c *tls.Conn, b []byte) error {
			for len(b) > 0 {
				n := min(len(b), 1000)
				if _, err := c.Write(b[:n]); err != nil {
					return err
				}
				b = b[n:]
			}
			return nil
		}},
		{"a write per 3 bytes at first", func(c *tls.Conn, b []byte) error {
			for range 20 {
				if _, err := c.Write(b[:3]); err != nil {
					return err
				}
				b = b[3:]
			}
			_, err := c.Write(b)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := tlsPair(t)
			var stream []byte
			for _, n := range sizes {
				stream = append(stream, rawFrame(n)...)
			}
			werr := make(chan error, 1)
			go func() { werr <- tc.write(c, stream) }()
			for i, n := range sizes {
				f, err := s.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d (%d bytes): %v", i, n, err)
				}
				want := rawFrame(n)[5:]
				if f.Type != 0x01 || !bytes.Equal(f.Payload, want) {
					t.Fatalf("frame %d (%d bytes): type %x, %d payload bytes, want %d as sent", i, n, f.Type, len(f.Payload), len(want))
				}
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if !s.Idle() {
				t.Fatal("not idle after reading all that was sent")
			}
			c.Close()
			if _, err := s.ReadFrame(); err != io.EOF {
				t.Fatalf("after the peer closed: %v, want io.EOF", err)
			}
		})
	}
}

func TestStreamConnReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		send []byte
		want error
	}{
		{"empty frame", []byte{0, 0, 0, 0}, wire.ErrEmptyFrame},
		{"too large", binary.BigEndian.AppendUint32(nil, wire.DefaultMaxFrame+1), wire.ErrFrameTooLarge},
		{"truncated header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"truncated body", append(binary.BigEndian.AppendUint32(nil, 10), 1, 2, 3), io.ErrUnexpectedEOF},
		{"truncated large body", append(binary.BigEndian.AppendUint32(nil, 1<<19), make([]byte, 70000)...), io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := tlsPair(t)
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			c.Close()
			if _, err := s.ReadFrame(); !errors.Is(err, tc.want) {
				t.Fatalf("ReadFrame: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestStreamConnIdle checks what an idle connection's reader relies on:
// Idle is false while a frame is buffered (here or in crypto/tls), true
// once all was read, and WaitInput returns when input comes.
func TestStreamConnIdle(t *testing.T) {
	s, c := tlsPair(t)
	if !s.Idle() {
		t.Fatal("not idle before any input")
	}
	// Two frames in one record, then one in a record of its own.
	two := append(rawFrame(10), rawFrame(20)...)
	if _, err := c.Write(two); err != nil {
		t.Fatal(err)
	}
	s.WaitInput()
	if _, err := s.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if s.Idle() {
		t.Fatal("idle with a second frame buffered")
	}
	if f, err := s.ReadFrame(); err != nil || len(f.Payload) != 19 {
		t.Fatalf("second frame: %d bytes, %v", len(f.Payload), err)
	}
	if !s.Idle() {
		t.Fatal("not idle after both frames")
	}
	// A frame split over two records: the first one in, then wait.
	f3 := rawFrame(5000)
	if _, err := c.Write(f3[:100]); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { s.WaitInput(); close(waited) }()
	<-waited // input is there
	done := make(chan error, 1)
	go func() {
		f, err := s.ReadFrame()
		if err == nil && len(f.Payload) != 4999 {
			err = errors.New("wrong length")
		}
		done <- err
	}()
	if _, err := c.Write(f3[100:]); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !s.Idle() {
		t.Fatal("not idle after the split frame")
	}
	// WaitInput meets the peer's end too.
	c.Close()
	s.WaitInput()
	if _, err := s.ReadFrame(); err != io.EOF {
		t.Fatalf("after close: %v", err)
	}
}

func TestStreamConnWaitInputMeetsDeadline(t *testing.T) {
	s, _ := tlsPair(t)
	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	s.WaitInput()
	var ne net.Error
	if _, err := s.ReadFrame(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ReadFrame after the deadline: %v, want a timeout", err)
	}
}
