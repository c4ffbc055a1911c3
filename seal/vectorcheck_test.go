package seal

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// checkVectors loads v's keyrings and, with this build, verifies the keys
// they published, opens every message in order, the file's chunks and the
// archive records, compares the safety number, and finally seals new
// messages between the loaded keyrings (sessions to last-resort keys).
func checkVectors(t *testing.T, v *vectorFile) {
	devs := map[devRef]*Keyring{}
	for _, d := range vectorDevs {
		state := v.Keyrings[d.String()]
		k, err := Load(state)
		if err != nil {
			t.Fatalf("%s: Load: %v", d, err)
		}
		if k.User() != d.User || k.Device() != d.Device {
			t.Fatalf("%s: loaded %s/%s", d, k.User(), k.Device())
		}
		// The keys file reads back as it was written.
		if again := marshal(t, k); !bytes.Equal(again, state) {
			t.Errorf("%s: Marshal after Load differs from the loaded state:\n%s\n%s", d, again, state)
		}
		devs[d] = k
	}
	if !t.Run("published keys", func(t *testing.T) { checkVectorKeys(t, v, devs) }) {
		return
	}
	if !t.Run("messages", func(t *testing.T) { checkVectorMessages(t, v, devs) }) {
		return
	}
	t.Run("file chunks", func(t *testing.T) { checkVectorFile(t, v, devs[alicePhone]) })
	t.Run("archive", func(t *testing.T) { checkVectorArchive(t, v, devs[alicePhone], devs[aliceLaptop]) })
	t.Run("safety number", func(t *testing.T) {
		a, b := devs[alicePhone], devs[bobPhone]
		pin, ok := a.Pin("bob") // pinned when alice's phone verified bob's keys
		if !ok || !bytes.Equal(pin.Identity, b.IdentityKey()) {
			t.Fatalf("alice's pin of bob = %x, %v; bob's identity is %x", pin.Identity, ok, b.IdentityKey())
		}
		for _, got := range []string{
			SafetyNumber("alice", a.IdentityKey(), "bob", pin.Identity),
			SafetyNumber("bob", b.IdentityKey(), "alice", a.IdentityKey()),
		} {
			if got != v.SafetyNumber {
				t.Errorf("safety number %q, the vectors' build computed %q", got, v.SafetyNumber)
			}
		}
	})
	t.Run("this build seals for them", func(t *testing.T) {
		for _, s := range []struct {
			from    devRef
			to      natter.UserID
			readers []devRef
		}{
			{alicePhone, "bob", []devRef{bobPhone, aliceLaptop, alicePhone}},
			{bobPhone, "alice", []devRef{alicePhone, aliceLaptop, bobPhone}},
		} {
			k := devs[s.from]
			var peers []Peer
			for _, u := range []natter.UserID{s.to, s.from.User} {
				d, err := k.Directory(v.Directory[u])
				if err != nil {
					t.Fatal(err)
				}
				peers = append(peers, d.Devices...)
			}
			id, body := natter.NewMessageID(time.Now()), "sealed by "+thisBuild()
			env, err := k.Seal(id, s.to, []byte(body), peers)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range s.readers {
				o, err := devs[r].Open(id, s.from.User, s.to, env, vectorLookup(devs[r], v.Directory))
				if err != nil || string(o.Body) != body {
					t.Errorf("%s to %s: %s opens %v, %v", s.from, s.to, r, o, err)
				}
			}
		}
	})
}

// checkVectorKeys checks that every device's bundle and certificate, signed
// again by this build from the loaded keyring, are the published bytes
// (Ed25519 is deterministic), and that every device verifies them.
func checkVectorKeys(t *testing.T, v *vectorFile, devs map[devRef]*Keyring) {
	for u, keys := range v.Directory {
		var holder *Keyring
		for d, k := range devs {
			if d.User == u && k.HasIdentity() {
				holder = k
			}
		}
		if holder == nil || !bytes.Equal(holder.IdentityKey(), keys.Identity) {
			t.Fatalf("%s: no device holds the published identity", u)
		}
		for _, dk := range keys.Devices {
			k := devs[devRef{u, dk.Device}]
			if k == nil {
				t.Fatalf("%s/%s published keys but has no keyring", u, dk.Device)
			}
			if b, err := k.Bundle(); err != nil || !bytes.Equal(b, dk.Bundle) {
				t.Errorf("%s/%s: bundle signed by this build differs from the published one (%v)", u, dk.Device, err)
			}
			if c, err := holder.Certify(dk.Device, k.SignKey()); err != nil || !bytes.Equal(c, dk.Cert) {
				t.Errorf("%s/%s: certificate made by this build differs from the published one (%v)", u, dk.Device, err)
			}
		}
		for r, k := range devs {
			d, err := k.Directory(keys)
			if err != nil || len(d.Devices) != len(keys.Devices) || len(d.Pending)+len(d.Bad) > 0 {
				t.Errorf("%s verifies %s's keys: %d certified, pending %v, bad %v, %v", r, u, len(d.Devices), d.Pending, d.Bad, err)
			}
		}
	}
}

// checkVectorMessages opens the messages in order, as vectorScript says.
func checkVectorMessages(t *testing.T, v *vectorFile, devs map[devRef]*Keyring) {
	if len(v.Messages) != len(vectorScript) {
		t.Fatalf("%d messages, want %d (vectorScript changed? make the vectors again)", len(v.Messages), len(vectorScript))
	}
	for i, s := range vectorScript {
		msg := v.Messages[i]
		if msg.Step != s.name || msg.From != s.from.User || msg.To != s.to || msg.Body != s.body {
			t.Fatalf("message %d is %q from %s to %s, want step %q (vectorScript changed? make the vectors again)", i, msg.Step, msg.From, msg.To, s.name)
		}
		// The sender's side: what it fetched verifies here, claimed
		// prekeys included.
		for _, keys := range msg.Fetched {
			d, err := devs[s.from].Directory(keys)
			if err != nil {
				t.Fatalf("%s: %s verifies %s's keys: %v", s.name, s.from, keys.User, err)
			}
			for _, dk := range keys.Devices {
				if p := d.Device(dk.Device); p == nil || (len(dk.Prekey) > 0) != (p.Prekey != nil) {
					t.Errorf("%s: %s/%s's keys or claimed prekey do not verify", s.name, keys.User, dk.Device)
				}
			}
		}
		// The vector takes the way into Open its step names.
		e, err := parseEnvelope(msg.Sealed)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		to := s.readers[0]
		i := slices.IndexFunc(e.Wraps, func(w wrap) bool { return w.User == to.User && w.Device == to.Device })
		if i < 0 {
			t.Fatalf("%s: no wrap for %s", s.name, to)
		}
		if w := e.Wraps[i]; w.Kind != s.kind || w.Index != s.index || (w.Kind == wrapInit && w.Init.Prekey == 0) {
			t.Errorf("%s: %s's wrap is of kind %d at %d, want kind %d at %d (with a one-time prekey if init)", s.name, to, w.Kind, w.Index, s.kind, s.index)
		}
		for _, r := range s.readers {
			o, err := devs[r].Open(msg.ID, msg.From, msg.To, msg.Sealed, vectorLookup(devs[r], v.Directory))
			if err != nil {
				t.Fatalf("%s: %s cannot open it: %v", s.name, r, err)
			}
			if string(o.Body) != msg.Body || o.FromDevice != s.from.Device {
				t.Errorf("%s: %s opens %q from %s, want %q from %s", s.name, r, o.Body, o.FromDevice, msg.Body, s.from.Device)
			}
		}
	}
}

// checkVectorFile opens the file's chunks and seals them again: the file
// key is convergent and chunk nonces derive from the index, so this build
// must make the same key and the same sealed bytes.
func checkVectorFile(t *testing.T, v *vectorFile, phone *Keyring) {
	f := v.File
	if h := sha256.Sum256([]byte(f.Plain)); !bytes.Equal(h[:], f.Hash) {
		t.Fatal("the file's hash is not the SHA-256 of its content")
	}
	if key, err := phone.FileKey(f.Hash); err != nil || !bytes.Equal(key, f.Key) {
		t.Errorf("alice/phone's file key %x, %v; the vectors' build made %x", key, err, f.Key)
	}
	var got []byte
	for i, c := range f.Chunks {
		p, err := OpenChunk(f.Key, i, len(f.Chunks), c)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		again, err := SealChunk(f.Key, i, len(f.Chunks), p)
		if err != nil || !bytes.Equal(again, c) {
			t.Errorf("chunk %d sealed again by this build differs (%v)", i, err)
		}
		got = append(got, p...)
	}
	if string(got) != f.Plain || len(f.Chunks) < 2 {
		t.Errorf("the chunks open to %q (%d chunks), want %q", got, len(f.Chunks), f.Plain)
	}
}

// checkVectorArchive unwraps the archive key on alice's laptop and opens
// the records on both of her devices.
func checkVectorArchive(t *testing.T, v *vectorFile, phone, laptop *Keyring) {
	look := vectorLookup(laptop, v.Directory)
	signer := func(dev natter.DeviceID) (*Bundle, error) { return look(laptop.User(), dev) }
	if err := laptop.UnwrapArchiveKey(v.Archive.Wrapped, signer); err != nil {
		t.Fatalf("alice/laptop unwraps the archive key: %v", err)
	}
	if len(v.Archive.Records) == 0 {
		t.Fatal("no archive records")
	}
	for _, r := range v.Archive.Records {
		for _, k := range []*Keyring{phone, laptop} {
			if name, err := k.RecordKey(r.From, r.ID); err != nil || name != r.Name {
				t.Errorf("%s: record name %q, %v; want %q", k.Device(), name, err, r.Name)
			}
			if p, err := k.OpenRecord(r.Sealed); err != nil || string(p) != r.Plain {
				t.Errorf("%s: record opens to %q, %v; want %q", k.Device(), p, err, r.Plain)
			}
		}
	}
}
