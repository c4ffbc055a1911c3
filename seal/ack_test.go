package seal

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// TestSessionAck: the init goes with every message of a session until the
// receiving device's ack arrives, then stops; a forged, misdirected or
// stale ack changes nothing.
func TestSessionAck(t *testing.T) {
	w := newWorld(t)
	a := w.add("alice", "phone")
	bob := w.add("bob", "phone")
	bobTab := w.add("bob", "tablet")

	// Until an ack: every message carries the init, and every open of one
	// returns an ack (the sender may have lost the earlier ones).
	var acks []*SessionAck
	for range 2 {
		id, env := w.seal(a, "bob", "hi")
		if !hasInit(t, env, "bob", "phone") || !hasInit(t, env, "bob", "tablet") {
			t.Fatal("a message of an unacknowledged session carries no init")
		}
		o, err := bob.Open(id, "alice", "bob", env, w.lookup(bob))
		if err != nil {
			t.Fatal(err)
		}
		if o.Ack == nil || o.Ack.User != "alice" || o.Ack.Device != "phone" {
			t.Fatalf("ack %+v, want one for alice/phone", o.Ack)
		}
		acks = append(acks, o.Ack)
	}
	if !bytes.Equal(acks[0].SID, acks[1].SID) || !bytes.Equal(acks[0].MAC, acks[1].MAC) {
		t.Fatal("two acks of one session differ")
	}
	ack := acks[0]

	bad := bytes.Clone(ack.MAC)
	bad[0] ^= 1
	other := bytes.Clone(ack.SID)
	other[0] ^= 1
	tests := []struct {
		name      string
		user      string
		dev       string
		sid, mac  []byte
		confirmed bool
		err       error
	}{
		{"forged MAC", "bob", "phone", ack.SID, bad, false, ErrBadAck},
		{"short MAC", "bob", "phone", ack.SID, ack.MAC[:5], false, ErrBadAck},
		{"short session ID", "bob", "phone", ack.SID[:3], ack.MAC, false, ErrBadAck},
		{"another session", "bob", "phone", other, ack.MAC, false, nil},
		{"from another device", "bob", "tablet", ack.SID, ack.MAC, false, nil},
		{"the phone's ack", "bob", "phone", ack.SID, ack.MAC, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := a.Acknowledged(natter.UserID(tt.user), natter.DeviceID(tt.dev), tt.sid, tt.mac)
			if ok != tt.confirmed || !errors.Is(err, tt.err) {
				t.Fatalf("Acknowledged = %v, %v; want %v, %v", ok, err, tt.confirmed, tt.err)
			}
			if a.Confirmed("bob", "phone") != tt.confirmed {
				t.Fatalf("Confirmed = %v, want %v", !tt.confirmed, tt.confirmed)
			}
		})
	}

	// Acknowledged: the phone's init stops, the tablet's (no ack) goes on.
	id, env := w.seal(a, "bob", "after the ack")
	if hasInit(t, env, "bob", "phone") {
		t.Fatal("the init still goes to the device that acknowledged it")
	}
	if !hasInit(t, env, "bob", "tablet") {
		t.Fatal("the init stopped for a device that never acknowledged")
	}
	for _, k := range []*Keyring{bob, bobTab} {
		o, err := k.Open(id, "alice", "bob", env, w.lookup(k))
		if err != nil {
			t.Fatalf("%s: %v", k.Device(), err)
		}
		if (o.Ack != nil) != (k == bobTab) {
			t.Fatalf("%s: ack %+v after the phone's ack", k.Device(), o.Ack)
		}
	}
}

// TestSessionAckSurvivesRestart: the receiver keeps a session's ack key, so
// a restarted device can still acknowledge a session that it opened before.
func TestSessionAckSurvivesRestart(t *testing.T) {
	w := newWorld(t)
	a := w.add("alice", "phone")
	bob := w.add("bob", "phone")
	var saved []byte
	bob.SetPersist(func(b []byte) error { saved = bytes.Clone(b); return nil })
	id, env := w.seal(a, "bob", "one")
	if _, err := bob.Open(id, "alice", "bob", env, w.lookup(bob)); err != nil {
		t.Fatal(err)
	}
	again, err := Load(saved)
	if err != nil {
		t.Fatal(err)
	}
	id, env = w.seal(a, "bob", "two")
	o, err := again.Open(id, "alice", "bob", env, w.lookup(again))
	if err != nil {
		t.Fatal(err)
	}
	if o.Ack == nil {
		t.Fatal("no ack from the restarted device")
	}
	if ok, err := a.Acknowledged("bob", "phone", o.Ack.SID, o.Ack.MAC); !ok || err != nil {
		t.Fatalf("Acknowledged = %v, %v", ok, err)
	}
}

// hasInit reports whether env carries a session init for user's dev.
func hasInit(t *testing.T, env []byte, user, dev string) bool {
	t.Helper()
	e, err := parseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range e.Wraps {
		if string(w.User) == user && string(w.Device) == dev {
			return w.Init != nil
		}
	}
	t.Fatalf("no wrap for %s/%s", user, dev)
	return false
}

// TestOpenSessions: sessions opened ahead of the first message serve it,
// with the claimed prekey, and are not opened twice.
func TestOpenSessions(t *testing.T) {
	w := newWorld(t)
	a := w.add("alice", "phone")
	bob := w.add("bob", "phone")
	peers := w.peers(a, "bob")
	if !a.NeedsSession("bob", "phone") {
		t.Fatal("a session before any")
	}
	if err := a.OpenSessions(peers); err != nil {
		t.Fatal(err)
	}
	if a.NeedsSession("bob", "phone") {
		t.Fatal("no session after OpenSessions")
	}
	first := a.out[devRef{"bob", "phone"}]
	if err := a.OpenSessions(peers); err != nil {
		t.Fatal(err)
	}
	if a.out[devRef{"bob", "phone"}] != first {
		t.Fatal("an open session was opened again")
	}
	for i := range peers {
		peers[i].Prekey = nil // a Seal now needs no claimed prekey
	}
	id := natter.NewMessageID(time.Now())
	env, err := a.Seal(id, "bob", []byte("prepared"), peers)
	if err != nil {
		t.Fatal(err)
	}
	if body, err := w.open(bob, id, "alice", "bob", env); err != nil || body != "prepared" {
		t.Fatalf("open: %q, %v", body, err)
	}
	if len(bob.prekeys) != 4 {
		t.Fatalf("bob holds %d prekeys, want 4 (the claimed one used)", len(bob.prekeys))
	}
}
