package seal

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// The decoders of what comes from the network (envelopes, bundles,
// prekeys, wrapped archive keys) have fuzz targets, and so does Open.
//
// A mutation only reaches what lies behind a signature or an AEAD if the
// target holds the keys its input was made with. Keys are random, so
// FuzzOpen, FuzzParseEnvelope and FuzzUnwrapArchiveKey run against a fixed
// world made once and committed: testdata/fuzzworld.json holds the
// keyrings of alice's phone and bob's phone and tablet, messages alice
// sealed for bob's phone (one for each way into Open: the next message of
// a session, one after a gap, one whose key was kept when a later one came
// first, a redelivery, a replay, new sessions to a one-time prekey and to
// the last-resort key) and the archive key bob's tablet wrapped for his
// phone. Those are the seeds; a crash found once is found again. Write a
// new world (after a format change) with
//
//	go test ./seal -run TestFuzzCorpus -update
//
// FuzzParseBundle needs no world: it signs what the fuzzer makes with fixed
// keys (fuzzDevice), so that mutations get past the signature to the
// checks behind it. Seeds are kept small where the format allows; a
// bundle or prekey carries a 1,216-byte hybrid public key, so fuzz with a
// short -fuzzminimizetime, or the fuzzer spends its time shrinking them:
//
//	go test ./seal -run '^$' -fuzz '^FuzzOpen$' -fuzztime 1m -fuzzminimizetime 5s

var update = flag.Bool("update", false, "write a new testdata/fuzzworld.json")

const fuzzWorldPath = "testdata/fuzzworld.json"

// fuzzWorldFile is testdata/fuzzworld.json.
type fuzzWorldFile struct {
	Alice  []byte `json:"alice"`  // alice/phone's keyring
	Bob    []byte `json:"bob"`    // bob/phone's keyring, before the messages
	Tablet []byte `json:"tablet"` // bob/tablet's keyring (holds the archive key)
	// Messages alice sealed for bob's phone, each taking its own way into
	// Open from Bob's state (see TestFuzzCorpus).
	Messages []fuzzMessage `json:"messages"`
	// Wrapped is the archive key, wrapped by bob's tablet for his phone.
	Wrapped []byte `json:"wrapped"`
}

type fuzzMessage struct {
	Way  string           `json:"way"`
	ID   natter.MessageID `json:"id"`
	Body string           `json:"body"`
	Env  []byte           `json:"env"`
}

// The ways into Open the world's messages take.
const (
	wayNext       = "next in the chain"
	wayGap        = "after a gap"
	waySkipped    = "its key kept when a later one came first"
	wayRedelivery = "a redelivery of an opened message"
	wayReplay     = "a replay of an opened and acknowledged message"
	wayPrekey     = "a new session to a one-time prekey"
	wayLastResort = "a new session to the last-resort key"
)

// fuzzWorld is the loaded world.
type fuzzWorld struct {
	file    fuzzWorldFile
	bob     *Keyring // copy it (clone) before use
	tablet  *Keyring
	bundles map[devRef]*Bundle
	bodies  map[natter.MessageID]string
}

func loadFuzzWorld(tb testing.TB) *fuzzWorld {
	tb.Helper()
	b, err := os.ReadFile(fuzzWorldPath)
	if err != nil {
		tb.Fatalf("%v (go test ./seal -run TestFuzzCorpus -update writes it)", err)
	}
	fw := &fuzzWorld{bundles: map[devRef]*Bundle{}, bodies: map[natter.MessageID]string{}}
	if err := json.Unmarshal(b, &fw.file); err != nil {
		tb.Fatal(err)
	}
	var ks []*Keyring
	for _, state := range [][]byte{fw.file.Alice, fw.file.Bob, fw.file.Tablet} {
		k, err := Load(state)
		if err != nil {
			tb.Fatal(err)
		}
		blob, err := k.Bundle()
		if err != nil {
			tb.Fatal(err)
		}
		bundle, err := ParseBundle(blob, k.User(), k.Device())
		if err != nil {
			tb.Fatal(err)
		}
		fw.bundles[devRef{k.User(), k.Device()}] = bundle
		ks = append(ks, k)
	}
	fw.bob, fw.tablet = ks[1], ks[2]
	for _, m := range fw.file.Messages {
		fw.bodies[m.ID] = m.Body
	}
	return fw
}

// resolve is bob's phone's view of the devices' bundles.
func (fw *fuzzWorld) resolve(u natter.UserID, dev natter.DeviceID) (*Bundle, error) {
	if b := fw.bundles[devRef{u, dev}]; b != nil {
		return b, nil
	}
	return nil, ErrBadBundle
}

// makeFuzzWorld makes a new world (see fuzzWorldFile).
func makeFuzzWorld(t *testing.T) *fuzzWorldFile {
	w := newWorld(t)
	a, b, tab := w.add("alice", "phone"), w.add("bob", "phone"), w.add("bob", "tablet")
	confirm(w, a, b)
	confirm(w, a, tab)
	var msgs []fuzzMessage
	seal := func(way, body string) fuzzMessage {
		id, env := w.seal(a, "bob", body)
		m := fuzzMessage{way, id, body, env}
		msgs = append(msgs, m)
		return m
	}
	redelivery := seal(wayRedelivery, "opened, not yet acknowledged")
	seal(waySkipped, "late")
	replay := seal(wayReplay, "opened and acknowledged")
	seal(wayNext, "next")
	seal(wayGap, "after the next")
	for _, m := range []fuzzMessage{redelivery, replay} {
		if _, err := w.open(b, m.ID, "alice", "bob", m.Env); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Forget(replay.ID); err != nil {
		t.Fatal(err)
	}
	// New sessions, to bob's phone only (a tablet's init would double the
	// size of the seed).
	blobs, err := b.NewPrekeys(1)
	if err != nil {
		t.Fatal(err)
	}
	phone := w.bundleOf(b)
	pk, err := ParsePrekey(blobs[0], phone)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Peer{{Bundle: phone, Prekey: pk}, {Bundle: phone}} {
		a.ForgetSessions("bob")
		way, body := wayPrekey, "a new session"
		if p.Prekey == nil {
			way, body = wayLastResort, "a new session, no prekey left"
		}
		id := natter.NewMessageID(time.Now())
		env, err := a.Seal(id, "bob", []byte(body), []Peer{p})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, fuzzMessage{way, id, body, env})
	}
	if err := tab.NewArchiveKey(); err != nil {
		t.Fatal(err)
	}
	wrapped, err := tab.WrapArchiveKey(phone)
	if err != nil {
		t.Fatal(err)
	}
	return &fuzzWorldFile{Alice: marshal(t, a), Bob: marshal(t, b), Tablet: marshal(t, tab), Messages: msgs, Wrapped: wrapped}
}

// TestFuzzCorpus checks that each of the world's messages takes its way
// into Open from bob's phone's state (so that FuzzOpen's mutations start
// from there), and that the wrapped archive key opens. With -update it
// writes a new world first.
func TestFuzzCorpus(t *testing.T) {
	if *update {
		b, err := json.MarshalIndent(makeFuzzWorld(t), "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(fuzzWorldPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fuzzWorldPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fw := loadFuzzWorld(t)
	ways := map[string]bool{}
	for _, m := range fw.file.Messages {
		t.Run(m.Way, func(t *testing.T) {
			ways[m.Way] = true
			e, err := parseEnvelope(m.Env)
			if err != nil {
				t.Fatal(err)
			}
			w := e.Wraps[len(e.Wraps)-1]
			for i := range e.Wraps {
				if e.Wraps[i].User == "bob" && e.Wraps[i].Device == "phone" {
					w = e.Wraps[i]
				}
			}
			k := clone(fw.bob)
			sid := sidKey(w.SID)
			before, known := k.in[sid]
			var n uint32
			var skipped int
			var kept bool
			if known {
				n, skipped, kept = before.Chain.N, len(before.Skipped), before.Skipped[w.Index] != nil
			}
			prekeys := len(k.prekeys)
			o, err := k.Open(m.ID, "alice", "bob", m.Env, fw.resolve)
			if m.Way == wayReplay {
				if !errors.Is(err, ErrReplay) {
					t.Fatalf("err = %v, want ErrReplay", err)
				}
				return
			}
			if err != nil || string(o.Body) != m.Body {
				t.Fatalf("Open = %v, want %q", err, m.Body)
			}
			after := k.in[sid]
			var ok bool
			switch m.Way {
			case wayNext:
				ok = known && w.Index == n && after.Chain.N == n+1 && len(after.Skipped) == skipped
			case wayGap:
				ok = known && w.Index == n+1 && after.Chain.N == n+2 && len(after.Skipped) == skipped+1
			case waySkipped:
				ok = known && w.Index < n && kept && after.Skipped[w.Index] == nil
			case wayRedelivery:
				_, cached := fw.bob.opened[m.ID]
				ok = cached && known && after.Chain.N == n
			case wayPrekey:
				ok = !known && w.Init != nil && w.Init.Prekey != 0 && after != nil && len(k.prekeys) == prekeys-1
			case wayLastResort:
				ok = !known && w.Init != nil && w.Init.Prekey == 0 && after != nil && len(k.prekeys) == prekeys
			}
			if !ok {
				t.Errorf("did not take its way into Open (wrap index %d, chain at %d, known session %v)", w.Index, n, known)
			}
		})
	}
	for _, way := range []string{wayNext, wayGap, waySkipped, wayRedelivery, wayReplay, wayPrekey, wayLastResort} {
		if !ways[way] {
			t.Errorf("no message in the world takes the way %q", way)
		}
	}
	k := clone(fw.bob)
	if err := k.UnwrapArchiveKey(fw.file.Wrapped, fw.ownDevice); err != nil || !bytes.Equal(k.archive, fw.tablet.archive) {
		t.Errorf("the world's wrapped archive key: %v", err)
	}
}

// FuzzParseEnvelope: never panics, and what it accepts encodes back to an
// envelope that decodes the same.
func FuzzParseEnvelope(f *testing.F) {
	for _, m := range loadFuzzWorld(f).file.Messages {
		f.Add(m.Env)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parseEnvelope(data)
		if err != nil {
			return
		}
		e2, err := parseEnvelope(e.marshal())
		if err != nil {
			t.Fatalf("re-encoded envelope does not parse: %v", err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed the envelope:\n%+v\n%+v", e, e2)
		}
	})
}

// FuzzOpen feeds messages to bob's phone, each time from the same state
// (the world's): whatever the fuzzer makes of the world's messages and
// their IDs, what opens is one of the messages alice sealed, under its own
// ID, from alice's phone; and it opens again (a redelivery before the
// acknowledgement).
func FuzzOpen(f *testing.F) {
	fw := loadFuzzWorld(f)
	for _, m := range fw.file.Messages {
		f.Add(string(m.ID), m.Env)
	}
	f.Fuzz(func(t *testing.T, id string, env []byte) {
		k := clone(fw.bob)
		o, err := k.Open(natter.MessageID(id), "alice", "bob", env, fw.resolve)
		if err != nil {
			return
		}
		if want, ok := fw.bodies[natter.MessageID(id)]; !ok || string(o.Body) != want || o.FromDevice != "phone" {
			t.Fatalf("opened %q from %s as message %q: alice sealed no such message", o.Body, o.FromDevice, id)
		}
		again, err := k.Open(natter.MessageID(id), "alice", "bob", env, fw.resolve)
		if err != nil || !bytes.Equal(again.Body, o.Body) {
			t.Fatalf("opened once, then not again before the acknowledgement: %v", err)
		}
	})
}

// ownDevice is bob's phone's resolver of the devices that may wrap the
// archive key for it.
func (fw *fuzzWorld) ownDevice(dev natter.DeviceID) (*Bundle, error) {
	return fw.resolve("bob", dev)
}

// FuzzUnwrapArchiveKey: bob's phone takes no archive key but the one his
// tablet wrapped, from the bytes the fuzzer makes and from those bytes as
// a body signed by the tablet (so that mutations get past the signature).
func FuzzUnwrapArchiveKey(f *testing.F) {
	fw := loadFuzzWorld(f)
	w := fw.file.Wrapped
	f.Add(w)
	f.Add(w[:len(w)-ed25519.SignatureSize])
	f.Add([]byte(`{"v":1,"user":"bob","from":"tablet","to":"phone","ct":"AAAA"}`))
	f.Add([]byte(`{"v":1,"user":"bob","from":"phone","to":"tablet","ct":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		resigned := signed(fw.tablet.dev.sign, tuple(Suite+" archive key", data), data)
		for _, blob := range [][]byte{data, resigned} {
			k := clone(fw.bob)
			if err := k.UnwrapArchiveKey(blob, fw.ownDevice); err == nil && !bytes.Equal(k.archive, fw.tablet.archive) {
				t.Fatalf("took an archive key the tablet did not wrap: %x", k.archive)
			}
		}
	})
}

// fuzzDevice is alice's phone with keys derived from fixed seeds, so that
// FuzzParseBundle can sign what the fuzzer makes and still find the same
// crashes again.
func fuzzDevice(tb testing.TB) *device {
	tb.Helper()
	kp, err := kem.NewPrivateKey(bytes.Repeat([]byte{2}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return &device{user: "alice", id: "phone", sign: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)), kem: kp, self: make([]byte, 32)}
}

// FuzzParseBundle: a bundle or prekey is accepted only for the device
// asked for, never as the other kind, and what is accepted encodes back to
// the same. Each input is tried as a signed blob and, signed by the fixed
// device, as a body (so that mutations reach the checks behind the
// signature).
func FuzzParseBundle(f *testing.F) {
	d := fuzzDevice(f)
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	body := func(b Bundle) []byte {
		j, _ := json.Marshal(b) // a Bundle always encodes
		return j
	}
	full := Bundle{V: 1, User: "alice", Device: "phone", SignKey: d.signKey(), KEMKey: d.kem.PublicKey().Bytes(), Created: created}
	small := full
	small.KEMKey = []byte{1, 2, 3}
	blob, err := d.signedBundle(created)
	if err != nil {
		f.Fatal(err)
	}
	_, pk, err := d.newPrekey(7)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body(small))
	f.Add(body(full))
	f.Add(blob)
	f.Add([]byte(`{"id":7,"key":"AQID"}`))
	f.Add(pk[:len(pk)-ed25519.SignatureSize])
	f.Add([]byte("{}" + string(make([]byte, 64))))
	bundle, err := ParseBundle(blob, "alice", "phone")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		asBundle := signed(d.sign, tuple(Suite+" bundle", data), data)
		asPrekey := signed(d.sign, tuple(Suite+" prekey", []byte("alice"), []byte("phone"), data), data)
		for _, blob := range [][]byte{data, asBundle, asPrekey} {
			if b, err := ParseBundle(blob, "alice", "phone"); err == nil {
				if b.User != "alice" || b.Device != "phone" {
					t.Fatalf("accepted a bundle of %s/%s", b.User, b.Device)
				}
				if _, err := ParsePrekey(blob, b); err == nil {
					t.Fatal("a bundle parsed as a prekey")
				}
				again, err := ParseBundle(signed(d.sign, tuple(Suite+" bundle", body(*b)), body(*b)), "alice", "phone")
				if bytes.Equal(b.SignKey, d.signKey()) && (err != nil || !again.Created.Equal(b.Created) ||
					again.DTLS != b.DTLS || !bytes.Equal(again.KEMKey, b.KEMKey) || again.V != b.V) {
					t.Fatalf("re-encoded bundle: %+v, %v; was %+v", again, err, b)
				}
			}
			if p, err := ParsePrekey(blob, bundle); err == nil {
				if p.ID == 0 {
					t.Fatal("accepted prekey 0")
				}
				if _, err := ParseBundle(blob, "alice", "phone"); err == nil {
					t.Fatal("a prekey parsed as a bundle")
				}
			}
		}
	})
}
