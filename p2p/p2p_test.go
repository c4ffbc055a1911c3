//go:build !js

// Native only: these tests make pion's own PeerConnections.

package p2p

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestConnectExchange(t *testing.T) {
	n := newMemNet()
	a := n.newManager(t, "alice", "phone", nil)
	b := n.newManager(t, "bob", "laptop", nil)
	ca, cb := connect(t, a, b)

	if u, d := ca.Peer(); u != "bob" || d != "laptop" {
		t.Errorf("a's peer = %s/%s", u, d)
	}
	if u, d := cb.Peer(); u != "alice" || d != "phone" {
		t.Errorf("b's peer = %s/%s", u, d)
	}
	if !ca.Offerer() || cb.Offerer() || ca.Session() != cb.Session() {
		t.Errorf("roles/sessions: a offerer=%v %s, b offerer=%v %s", ca.Offerer(), ca.Session(), cb.Offerer(), cb.Session())
	}
	for _, c := range []*Conn{ca, cb} {
		if p := c.Path(); p != PathDirect {
			t.Errorf("path = %q, want direct", p)
		}
	}
	if ca.LocalFingerprint() == "" || ca.LocalFingerprint() != cb.RemoteFingerprint() || cb.LocalFingerprint() != ca.RemoteFingerprint() {
		t.Errorf("fingerprints: a %q/%q, b %q/%q", ca.LocalFingerprint(), ca.RemoteFingerprint(), cb.LocalFingerprint(), cb.RemoteFingerprint())
	}
	if ca.LocalFingerprint() != a.LocalFingerprint() {
		t.Errorf("conn's local fingerprint %q, manager's %q", ca.LocalFingerprint(), a.LocalFingerprint())
	}

	const count = 1000
	var wg sync.WaitGroup
	for _, pair := range [][2]*Conn{{ca, cb}, {cb, ca}} {
		from, to := pair[0], pair[1]
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range count {
				if err := from.Send(testMessage(i)); err != nil {
					t.Errorf("send %d: %v", i, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range count {
				select {
				case msg, ok := <-to.Messages():
					if !ok {
						t.Errorf("messages closed after %d: %v", i, to.Err())
						return
					}
					if want := testMessage(i); !bytes.Equal(msg, want) {
						t.Errorf("message %d: %d bytes, want %d", i, len(msg), len(want))
						return
					}
				case <-time.After(10 * time.Second):
					t.Errorf("message %d not received", i)
					return
				}
			}
		}()
	}
	wg.Wait()

	deadline := time.Now().Add(3 * time.Second)
	for ca.RTT() <= 0 || cb.RTT() <= 0 {
		if time.Now().After(deadline) {
			t.Fatalf("RTT = %v, %v", ca.RTT(), cb.RTT())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("RTT a=%v b=%v", ca.RTT(), cb.RTT())
}

// testMessage is message i: its number, then pseudo-random bytes; most
// are small, every 97th spans several fragments, one is the largest.
func testMessage(i int) []byte {
	size := 8 + i%200
	switch {
	case i == 500:
		size = MaxMessageSize
	case i%97 == 0:
		size = 40_000 + i
	}
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, uint64(i))
	r := rand.NewChaCha8([32]byte{byte(i), byte(i >> 8)})
	r.Read(b[8:])
	return b
}

func TestSendTooLarge(t *testing.T) {
	n := newMemNet()
	a := n.newManager(t, "alice", "phone", nil)
	b := n.newManager(t, "bob", "laptop", nil)
	ca, _ := connect(t, a, b)
	if err := ca.Send(make([]byte, MaxMessageSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}
