package cluster

import (
	"bytes"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/testenv"
	"github.com/natterim/natter/wire"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestClusterFlow runs the whole flow across three natterd nodes sharing
// PostgreSQL and NATS, each user on another node: contacts, presence,
// messages both ways, a user's second device on a third node, offline
// messages grouped by sender, a peer-to-peer path signalled across nodes,
// a file sent through one node and fetched through another, and logout.
func TestClusterFlow(t *testing.T) {
	c := newCluster(t, 3)
	n1, n2, n3 := []string{c.nodes[0].addr}, []string{c.nodes[1].addr}, []string{c.nodes[2].addr}
	ctx := t.Context()

	alice := c.signup("alice", n1)
	bob := c.signup("bob", n2)
	carol := c.signup("carol", n3)
	befriend(t, alice, bob)
	befriend(t, carol, alice)
	befriend(t, bob, carol)

	// Presence crosses nodes: each sees the others online.
	cs, err := alice.Contacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range cs {
		if ct.Status != natter.StatusOnline {
			t.Errorf("alice (n1) sees %s %s, want online", ct.User, ct.Status)
		}
	}

	// Messages both ways between n1 and n2.
	id := alice.send("bob", "hello bob, from node 1")
	if m := bob.message(id); string(m.Message.Body) != "hello bob, from node 1" || m.Message.From != "alice" {
		t.Fatalf("bob got %+v", m.Message)
	}
	id = bob.send("alice", "hi alice, from node 2")
	m0 := alice.message(id)
	if string(m0.Message.Body) != "hi alice, from node 2" {
		t.Fatalf("alice got %q", m0.Message.Body)
	}
	// Receipts and typing cross nodes too.
	if err := alice.MarkRead(ctx, "bob", m0.Message.ConvSeq); err != nil {
		t.Fatal(err)
	}
	bob.until(10*time.Second, "alice's read receipt", func(e client.Event) bool {
		r, ok := e.(client.ReceiptEvent)
		return ok && r.From == "alice" && r.State == natter.ReceiptRead && r.Covers(id, m0.Message.ConvSeq)
	})
	if err := bob.SendTyping(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	alice.until(10*time.Second, "bob typing", func(e client.Event) bool {
		ty, ok := e.(client.TypingEvent)
		return ok && ty.From == "bob"
	})

	// Alice's second device, on n3, gets what she is sent and what her
	// first device sends.
	alice2, _ := c.login("alice", "alice-2", n3)
	id = bob.send("alice", "to both of your devices")
	alice.message(id)
	alice2.message(id)
	id = alice.send("bob", "sent from my first device")
	bob.message(id)
	if m := alice2.message(id); m.Message.From != "alice" || string(m.Message.Body) != "sent from my first device" {
		t.Fatalf("alice's second device got %+v", m.Message)
	}

	// Carol goes away; her contacts on the other nodes see it.
	if err := carol.Close(); err != nil {
		t.Fatal(err)
	}
	alice.presence("carol", natter.StatusOffline, 10*time.Second)
	bob.presence("carol", natter.StatusOffline, 10*time.Second)

	// Messages to her are stored and come at her next login, on another
	// node, grouped by sender.
	var fromAlice, fromBob []natter.MessageID
	for i := range 3 {
		fromAlice = append(fromAlice, alice.send("carol", "while you were away "+string(rune('a'+i))))
	}
	fromBob = append(fromBob, bob.send("carol", "call me"))
	carol2, inbox := c.login("carol", "carol-1", n1)
	got := map[natter.UserID][]natter.MessageID{}
	for _, ib := range inbox {
		for _, g := range ib.Groups {
			for _, m := range g.Messages {
				if m.From != g.From {
					t.Errorf("message from %s in %s's group", m.From, g.From)
				}
				got[g.From] = append(got[g.From], m.ID)
			}
		}
	}
	if !equalIDs(got["alice"], fromAlice) || !equalIDs(got["bob"], fromBob) {
		t.Fatalf("carol's inbox: %v; want alice %v, bob %v", got, fromAlice, fromBob)
	}
	alice.presence("carol", natter.StatusOnline, 10*time.Second)

	// A file uploaded through n2, fetched through n1.
	data := make([]byte, 3*wire.ChunkSize/2)
	rand.Read(data)
	sent, _, err := bob.SendFileFrom(ctx, "carol", "photo.bin", "application/octet-stream", bytes.NewReader(data), int64(len(data)), nil)
	if err != nil {
		t.Fatalf("bob sends a file: %v", err)
	}
	m := carol2.until(10*time.Second, "the file", func(e client.Event) bool {
		m, ok := e.(client.MessageEvent)
		return ok && m.File != nil && m.Message.ID == sent.ID
	}).(client.MessageEvent)
	sink := &memSink{}
	if err := carol2.FetchFileTo(ctx, m.File, sink, nil); err != nil {
		t.Fatalf("carol (n1) fetches bob's file (sent through n2): %v", err)
	}
	if !bytes.Equal(sink.bytes(len(data)), data) {
		t.Fatal("the file carol fetched differs from what bob sent")
	}

	// Logout is told to contacts on other nodes.
	if err := bob.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	alice.presence("bob", natter.StatusOffline, 10*time.Second)
}

// TestClusterDirect opens a peer-to-peer channel between two users on
// different nodes: the offer, answer and candidates cross the bus.
func TestClusterDirect(t *testing.T) {
	c := newCluster(t, 2)
	direct := func(o *client.Options) { o.Direct = true }
	alice := c.signup("alice", []string{c.nodes[0].addr}, direct)
	bob := c.signup("bob", []string{c.nodes[1].addr}, direct)
	befriend(t, alice, bob)
	// Bob's connection info, registered on n2, reaches alice on n1.
	alice.until(10*time.Second, "bob's connection info", func(e client.Event) bool {
		r, ok := e.(client.ReachEvent)
		return ok && r.User == "bob" && len(r.Candidates) > 0
	})
	path, rtt, err := alice.OpenDirect(t.Context(), "bob")
	if err != nil {
		t.Fatalf("alice (n1) opens a direct channel to bob (n2): %v", err)
	}
	if path != client.PathDirect {
		t.Fatalf("path %s, want %s", path, client.PathDirect)
	}
	t.Logf("direct across nodes: rtt %s", rtt)
	r, err := alice.Send(t.Context(), "bob", []byte("over the direct path"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != client.PathDirect {
		t.Errorf("message went %s, want direct", r.Path)
	}
	if m := bob.message(r.ID); m.Path != client.PathDirect {
		t.Errorf("bob got it over %s, want direct", m.Path)
	}
}

func equalIDs(a, b []natter.MessageID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// memSink keeps a fetched file's chunks in memory.
type memSink struct{ chunks map[int][]byte }

func (s *memSink) Has(i int) bool { _, ok := s.chunks[i]; return ok }
func (s *memSink) Put(i int, p []byte) error {
	if s.chunks == nil {
		s.chunks = map[int][]byte{}
	}
	s.chunks[i] = bytes.Clone(p)
	return nil
}
func (s *memSink) Checkpoint() error { return nil }
func (s *memSink) ReadAt(p []byte, off int64) (int, error) {
	b := s.bytes(int(off) + len(p))
	return copy(p, b[off:]), nil
}
func (s *memSink) bytes(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		c, ok := s.chunks[i]
		if !ok {
			break
		}
		b = append(b, c...)
	}
	if len(b) > n {
		b = b[:n]
	}
	return b
}
