package seal

import (
	"bytes"
	"errors"
	"testing"

	"github.com/natterim/natter"
)

// ownDevices returns the resolver a device uses to check a wrapping
// device: one of its user's certified devices.
func (w *world) ownDevice(k *Keyring) func(natter.DeviceID) (*Bundle, error) {
	look := w.lookup(k)
	return func(dev natter.DeviceID) (*Bundle, error) { return look(k.User(), dev) }
}

func (w *world) bundleOf(k *Keyring) *Bundle {
	w.t.Helper()
	blob, err := k.Bundle()
	if err != nil {
		w.t.Fatal(err)
	}
	b, err := ParseBundle(blob, k.User(), k.Device())
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

func TestArchiveKeyWrap(t *testing.T) {
	w := newWorld(t)
	phone := w.add("alice", "phone")
	laptop := w.add("alice", "laptop")
	bob := w.add("bob", "phone")
	if _, err := phone.WrapArchiveKey(w.bundleOf(laptop)); !errors.Is(err, ErrNoArchiveKey) {
		t.Fatalf("wrap without a key: %v", err)
	}
	if err := phone.NewArchiveKey(); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.WrapArchiveKey(w.bundleOf(bob)); err == nil {
		t.Fatal("wrapped alice's archive key for bob's device")
	}
	wrapped, err := phone.WrapArchiveKey(w.bundleOf(laptop))
	if err != nil {
		t.Fatal(err)
	}
	// Another device of the user, or the server, cannot use it.
	other := w.add("alice", "tablet")
	if err := other.UnwrapArchiveKey(wrapped, w.ownDevice(other)); !errors.Is(err, ErrBadArchiveKey) {
		t.Fatalf("tablet opened a key wrapped for the laptop: %v", err)
	}
	// A wrapping device that is not certified is refused.
	notMine := func(natter.DeviceID) (*Bundle, error) { return nil, ErrBadBundle }
	if err := laptop.UnwrapArchiveKey(wrapped, notMine); !errors.Is(err, ErrBadArchiveKey) {
		t.Fatalf("key from an uncertified device: %v", err)
	}
	// Tampering breaks the signature.
	bad := bytes.Clone(wrapped)
	bad[len(bad)/3] ^= 1
	if err := laptop.UnwrapArchiveKey(bad, w.ownDevice(laptop)); !errors.Is(err, ErrBadArchiveKey) {
		t.Fatalf("tampered key: %v", err)
	}
	// A key that bob (a certified device of another user) made and
	// wrapped for alice's laptop is refused: the signer must be alice's.
	if err := bob.NewArchiveKey(); err != nil {
		t.Fatal(err)
	}
	if err := laptop.UnwrapArchiveKey(wrapped, w.ownDevice(laptop)); err != nil {
		t.Fatal(err)
	}
	if !laptop.HasArchiveKey() {
		t.Fatal("laptop has no key after unwrapping")
	}

	// Both devices now name and open the same records.
	k1, _ := phone.RecordKey("bob", "m1")
	k2, _ := laptop.RecordKey("bob", "m1")
	k3, _ := laptop.RecordKey("bob", "m2")
	if k1 != k2 || k1 == k3 || len(k1) != 64 {
		t.Fatalf("record keys %q %q %q", k1, k2, k3)
	}
	sealed, err := phone.SealRecord([]byte("a record"))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := laptop.OpenRecord(sealed); err != nil || string(p) != "a record" {
		t.Fatalf("laptop opened %q, %v", p, err)
	}
	if _, err := bob.OpenRecord(sealed); !errors.Is(err, ErrCannotOpen) {
		t.Fatalf("bob opened alice's record: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := laptop.OpenRecord(sealed); !errors.Is(err, ErrCannotOpen) {
		t.Fatalf("tampered record: %v", err)
	}

	// The key survives a restart, and goes when dropped.
	state, err := laptop.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Load(state)
	if err != nil || !again.HasArchiveKey() {
		t.Fatalf("reloaded: %v, has key %v", err, again != nil && again.HasArchiveKey())
	}
	if err := again.DropArchiveKey(); err != nil || again.HasArchiveKey() {
		t.Fatalf("drop: %v", err)
	}
	if _, err := again.SealRecord([]byte("x")); !errors.Is(err, ErrNoArchiveKey) {
		t.Fatalf("seal without a key: %v", err)
	}
}
