package seal

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// The browser client is the Go SDK compiled to js/wasm, so seal runs in two
// builds that must understand each other: what one seals the other opens.
// Sealing is randomised, so a cross-build vector is not a fixed output but
// a whole exchange: the marshalled keyrings of alice's phone and laptop and
// bob's phone, the keys the server hands out, the messages they sealed,
// a file's chunks, archive records and the users' safety number. The
// checker loads the keyrings (Load) and opens everything in order with the
// public API.
//
// Each build makes its own file with
//
//	go test ./seal -run TestCrossBuildVectors -update-vectors
//	PATH="$(go env GOROOT)/lib/wasm:$PATH" GOOS=js GOARCH=wasm go test ./seal -run TestCrossBuildVectors -update-vectors
//
// and, without the flag, checks the other build's committed file (and its
// own): the native test opens what the js build sealed, and the js test,
// under Node, opens what the native build sealed.

var updateVectors = flag.Bool("update-vectors", false, "write this build's cross-build vectors ("+vectorsMine+")")

// vectorFile is testdata/vectors-{native,js}.json.
type vectorFile struct {
	// Build is the Go version, GOOS and GOARCH that made the file.
	Build string `json:"build"`
	// Keyrings are the devices' states (Marshal) after they made their
	// keys and before any message, by device ("alice/phone").
	Keyrings map[string][]byte `json:"keyrings"`
	// Directory is what the server hands out for each user without
	// claiming prekeys (bundles, certificates): what readers check
	// senders against.
	Directory map[natter.UserID]*wire.Keys `json:"directory"`
	// Messages, in the order they were sealed and must be opened (the
	// steps of vectorScript).
	Messages []vectorMessage  `json:"messages"`
	File     vectorFileChunks `json:"file"`
	Archive  vectorArchive    `json:"archive"`
	// SafetyNumber is alice's and bob's, as the making build computed it.
	SafetyNumber string `json:"safety_number"`
}

type vectorMessage struct {
	Step string           `json:"step"` // vectorScript's name
	ID   natter.MessageID `json:"id"`
	From natter.UserID    `json:"from"`
	To   natter.UserID    `json:"to"`
	Body string           `json:"body"`
	// Fetched is what the sender fetched to seal (FetchKeys with claimed
	// one-time prekeys): the recipient's keys and the sender's own.
	Fetched []*wire.Keys `json:"fetched"`
	Sealed  []byte       `json:"sealed"`
}

// vectorFileChunks is a file alice's phone sealed in chunks.
type vectorFileChunks struct {
	Hash      []byte   `json:"hash"` // SHA-256 of Plain
	Key       []byte   `json:"key"`  // alice/phone's FileKey(Hash)
	ChunkSize int      `json:"chunk_size"`
	Chunks    [][]byte `json:"chunks"`
	Plain     string   `json:"plain"`
}

// vectorArchive is alice's archive: the key her phone wrapped for her
// laptop and records her phone sealed.
type vectorArchive struct {
	Wrapped []byte         `json:"wrapped"`
	Records []vectorRecord `json:"records"`
}

type vectorRecord struct {
	From   natter.UserID    `json:"from"`
	ID     natter.MessageID `json:"id"`
	Name   string           `json:"name"` // RecordKey(From, ID)
	Sealed []byte           `json:"sealed"`
	Plain  string           `json:"plain"`
}

// The devices of the vectors. The first device of each user holds its
// identity and certifies the others.
var (
	alicePhone  = devRef{"alice", "phone"}
	aliceLaptop = devRef{"alice", "laptop"}
	bobPhone    = devRef{"bob", "phone"}
	vectorDevs  = []devRef{alicePhone, aliceLaptop, bobPhone}
)

func (r devRef) String() string { return string(r.User) + "/" + string(r.Device) }

// vectorStep is one message of the exchange: from seals body for to's
// devices and from's other devices; readers open it in order. The first
// reader is the recipient's device, whose wrap must be of kind at index.
type vectorStep struct {
	name    string
	from    devRef
	to      natter.UserID
	body    string
	kind    byte
	index   uint32
	readers []devRef
}

var vectorScript = []vectorStep{
	{"alice's first message, a session to bob's one-time prekey", alicePhone, "bob",
		"hi bob, it's alice 👋", wrapInit, 0, []devRef{bobPhone, aliceLaptop, alicePhone}},
	{"bob's reply, a session to alice's one-time prekey", bobPhone, "alice",
		"hi alice, grüße from bob", wrapInit, 0, []devRef{alicePhone, aliceLaptop, bobPhone}},
	{"alice again, in the ratchet bob confirmed", alicePhone, "bob",
		"the file is on its way", wrapChain, 1, []devRef{bobPhone, aliceLaptop, alicePhone}},
	{"bob again, in the ratchet alice confirmed", bobPhone, "alice",
		"got it, thanks", wrapChain, 1, []devRef{alicePhone, aliceLaptop, bobPhone}},
}

// TestCrossBuildVectors opens what the other build (native or js/wasm)
// sealed, and what this build sealed; with -update-vectors it first makes
// this build's vectors.
func TestCrossBuildVectors(t *testing.T) {
	if *updateVectors {
		b, err := json.MarshalIndent(makeVectors(t), "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsMine, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{vectorsOther, vectorsMine} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (the comment atop vectors_test.go says how to make it)", err)
			}
			var v vectorFile
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			t.Logf("made by %s", v.Build)
			checkVectors(t, &v)
		})
	}
}

func thisBuild() string { return runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH }

// vectorMaker is the world a build makes its vectors in: the devices
// (restarted from their marshalled state) and what they published.
type vectorMaker struct {
	t       *testing.T
	v       *vectorFile
	devs    map[devRef]*Keyring
	prekeys map[devRef][][]byte // published, not yet claimed
}

func makeVectors(t *testing.T) *vectorFile {
	m := &vectorMaker{
		t:       t,
		v:       &vectorFile{Build: thisBuild(), Keyrings: map[string][]byte{}, Directory: map[natter.UserID]*wire.Keys{}},
		devs:    map[devRef]*Keyring{},
		prekeys: map[devRef][][]byte{},
	}
	// The user's first device makes the identity and certifies the others.
	holders := map[natter.UserID]*Keyring{}
	for _, d := range vectorDevs {
		k, err := New(d.User, d.Device)
		if err != nil {
			t.Fatal(err)
		}
		if holders[d.User] == nil {
			if err := k.CreateIdentity(); err != nil {
				t.Fatal(err)
			}
			holders[d.User] = k
			m.v.Directory[d.User] = &wire.Keys{User: d.User, Identity: k.IdentityKey()}
		}
		if m.prekeys[d], err = k.NewPrekeys(2); err != nil {
			t.Fatal(err)
		}
		bundle, err := k.Bundle()
		if err != nil {
			t.Fatal(err)
		}
		cert, err := holders[d.User].Certify(d.Device, k.SignKey())
		if err != nil {
			t.Fatal(err)
		}
		keys := m.v.Directory[d.User]
		keys.Devices = append(keys.Devices, wire.DeviceKeys{Device: d.Device, Bundle: bundle, Cert: cert})
		m.devs[d] = k
	}
	if err := m.devs[alicePhone].NewArchiveKey(); err != nil {
		t.Fatal(err)
	}
	for _, keys := range m.v.Directory {
		slices.SortFunc(keys.Devices, func(a, b wire.DeviceKeys) int { return cmp.Compare(a.Device, b.Device) })
	}
	// Every device restarts from its marshalled state, which is what the
	// vectors hold: the messages are sealed from Load's keyrings.
	for _, d := range vectorDevs {
		state, err := m.devs[d].Marshal()
		if err != nil {
			t.Fatal(err)
		}
		m.v.Keyrings[d.String()] = state
		if m.devs[d], err = Load(state); err != nil {
			t.Fatal(err)
		}
	}

	for _, s := range vectorScript {
		m.v.Messages = append(m.v.Messages, m.seal(s))
	}

	phone, laptop := m.devs[alicePhone], m.devs[aliceLaptop]
	f := &m.v.File
	f.Plain, f.ChunkSize = "a file of forty-odd bytes, in 3 chunks.", 16
	h := sha256.Sum256([]byte(f.Plain))
	f.Hash = h[:]
	var err error
	if f.Key, err = phone.FileKey(f.Hash); err != nil {
		t.Fatal(err)
	}
	chunks := slices.Collect(slices.Chunk([]byte(f.Plain), f.ChunkSize))
	for i, c := range chunks {
		sealed, err := SealChunk(f.Key, i, len(chunks), c)
		if err != nil {
			t.Fatal(err)
		}
		f.Chunks = append(f.Chunks, sealed)
	}

	a := &m.v.Archive
	if a.Wrapped, err = phone.WrapArchiveKey(m.bundle(laptop)); err != nil {
		t.Fatal(err)
	}
	for _, msg := range m.v.Messages[:2] {
		r := vectorRecord{From: msg.From, ID: msg.ID, Plain: msg.Body}
		if r.Name, err = phone.RecordKey(msg.From, msg.ID); err != nil {
			t.Fatal(err)
		}
		if r.Sealed, err = phone.SealRecord([]byte(r.Plain)); err != nil {
			t.Fatal(err)
		}
		a.Records = append(a.Records, r)
	}

	m.v.SafetyNumber = SafetyNumber("alice", phone.IdentityKey(), "bob", m.devs[bobPhone].IdentityKey())
	return m.v
}

// fetch is what the server answers the sender from for user's keys,
// claiming a one-time prekey of each of user's devices but from.
func (m *vectorMaker) fetch(user natter.UserID, from devRef) *wire.Keys {
	keys := *m.v.Directory[user]
	keys.Devices = slices.Clone(keys.Devices)
	for i := range keys.Devices {
		d := devRef{user, keys.Devices[i].Device}
		if d != from && len(m.prekeys[d]) > 0 {
			keys.Devices[i].Prekey, m.prekeys[d] = m.prekeys[d][0], m.prekeys[d][1:]
		}
	}
	return &keys
}

func (m *vectorMaker) seal(s vectorStep) vectorMessage {
	m.t.Helper()
	k := m.devs[s.from]
	msg := vectorMessage{Step: s.name, ID: natter.NewMessageID(time.Now()), From: s.from.User, To: s.to, Body: s.body}
	var peers []Peer
	for _, u := range []natter.UserID{s.to, s.from.User} {
		keys := m.fetch(u, s.from)
		d, err := k.Directory(keys)
		if err != nil {
			m.t.Fatal(err)
		}
		msg.Fetched = append(msg.Fetched, keys)
		peers = append(peers, d.Devices...)
	}
	var err error
	if msg.Sealed, err = k.Seal(msg.ID, s.to, []byte(s.body), peers); err != nil {
		m.t.Fatal(err)
	}
	// The readers open it here too: the next steps need the sessions
	// (bob's reply confirms alice's session, and the other way round).
	for _, r := range s.readers {
		o, err := m.devs[r].Open(msg.ID, msg.From, msg.To, msg.Sealed, vectorLookup(m.devs[r], m.v.Directory))
		if err != nil || string(o.Body) != s.body {
			m.t.Fatalf("%s: %s opens %v, %v", s.name, r, o, err)
		}
	}
	return msg
}

func (m *vectorMaker) bundle(k *Keyring) *Bundle {
	m.t.Helper()
	blob, err := k.Bundle()
	if err != nil {
		m.t.Fatal(err)
	}
	b, err := ParseBundle(blob, k.User(), k.Device())
	if err != nil {
		m.t.Fatal(err)
	}
	return b
}

// vectorLookup is the bundle resolver of Open for reader k: a device's
// bundle as k verifies it in the directory.
func vectorLookup(k *Keyring, dir map[natter.UserID]*wire.Keys) func(natter.UserID, natter.DeviceID) (*Bundle, error) {
	return func(u natter.UserID, dev natter.DeviceID) (*Bundle, error) {
		keys := dir[u]
		if keys == nil {
			return nil, fmt.Errorf("%w: no keys for %s", ErrBadBundle, u)
		}
		d, err := k.Directory(keys)
		if err != nil {
			return nil, err
		}
		if p := d.Device(dev); p != nil {
			return p.Bundle, nil
		}
		return nil, fmt.Errorf("%w: %s/%s is not certified", ErrBadBundle, u, dev)
	}
}
