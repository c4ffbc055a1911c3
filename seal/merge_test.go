package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/natterim/natter"
)

// sharedHome is bob's phone as the CLI keeps it: one keys file that
// several processes (natter listen, one-shot commands) load and save.
type sharedHome struct {
	t      *testing.T
	w      *world
	alice  *Keyring
	bundle *Bundle // alice's, verified
	path   string
	// onRead, if set, runs once, right after a process read the file to
	// merge it (and before it writes): the moment another process's
	// save can slip in.
	onRead func()
}

func newSharedHome(t *testing.T) *sharedHome {
	w := newWorld(t)
	h := &sharedHome{t: t, w: w, alice: w.add("alice", "phone"), path: filepath.Join(t.TempDir(), "keys-bob.json")}
	h.bundle = w.bundleOf(h.alice)
	bob := w.add("bob", "phone")
	state, err := bob.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.path, state, 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

// process starts a process of bob's phone: it loads the keys file and,
// after every change, merges what another process saved since its last
// read or write and saves, exactly as internal/cli/keys.go does.
func (h *sharedHome) process() *Keyring {
	h.t.Helper()
	b, err := os.ReadFile(h.path)
	if err != nil {
		h.t.Fatal(err)
	}
	k, err := Load(b)
	if err != nil {
		h.t.Fatal(err)
	}
	last := sha256.Sum256(b)
	k.SetChanged(func() []byte {
		disk, err := os.ReadFile(h.path)
		if f := h.onRead; f != nil {
			h.onRead = nil
			f()
		}
		if err != nil || sha256.Sum256(disk) == last {
			return nil
		}
		return disk
	})
	k.SetPersist(func(b []byte) error {
		tmp := fmt.Sprintf("%s.%p.tmp", h.path, k)
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, h.path); err != nil {
			return err
		}
		last = sha256.Sum256(b)
		return nil
	})
	return k
}

// fileLock is an exclusive lock on the keys file, as an flock would be
// between processes; asked tells when a process waits for it.
type fileLock struct {
	held  chan struct{}
	asked chan struct{}
}

func newFileLock() *fileLock {
	return &fileLock{held: make(chan struct{}, 1), asked: make(chan struct{}, 16)}
}

func (l *fileLock) lock() (func(), error) {
	l.asked <- struct{}{}
	l.held <- struct{}{}
	return func() { <-l.held }, nil
}

// stolen is the keys file as a thief copying it now would have it.
func (h *sharedHome) stolen() *Keyring {
	h.t.Helper()
	b, err := os.ReadFile(h.path)
	if err != nil {
		h.t.Fatal(err)
	}
	k, err := Load(b)
	if err != nil {
		h.t.Fatal(err)
	}
	return k
}

// thiefOpens tries to open each of ms with the keys file as it is now:
// as the device would, and with its sessions struck out of it, so that a
// session open to a one-time prekey still in the file is tried afresh
// (not for a session opened to the last-resort key, which a stolen keys
// file opens by design: docs/security.md). It returns the first that
// opens.
func (h *sharedHome) thiefOpens(ms ...msg) (body, how string, ok bool) {
	h.t.Helper()
	for _, strip := range []bool{false, true} {
		k := h.stolen() // failed opens change nothing: one copy serves all
		how = "as the device would"
		if strip {
			clear(k.in)
		}
		for _, m := range ms {
			if strip && m.prekey == 0 {
				continue
			}
			if strip {
				how = fmt.Sprintf("with its sessions struck out: prekey %d", m.prekey)
			}
			if got, err := h.open(k, m); err == nil {
				return got, how, true
			}
		}
	}
	return "", "", false
}

// open opens m in k, resolving alice's bundle as a client with her keys
// cached does.
func (h *sharedHome) open(k *Keyring, m msg) (string, error) {
	o, err := k.Open(m.id, "alice", "bob", m.env, h.aliceBundle)
	if err != nil {
		return "", err
	}
	return string(o.Body), nil
}

// aliceBundle returns alice's verified bundle (a thief knows it too).
func (h *sharedHome) aliceBundle(u natter.UserID, dev natter.DeviceID) (*Bundle, error) {
	if u != "alice" || dev != "phone" {
		return nil, ErrBadBundle
	}
	return h.bundle, nil
}

// msg is a message alice sealed for bob.
type msg struct {
	id     natter.MessageID
	env    []byte
	body   string
	prekey uint32 // the one-time prekey its session was opened to, if it opens one
}

func (h *sharedHome) send(body string) msg {
	h.t.Helper()
	id, env := h.w.seal(h.alice, "bob", body)
	m := msg{id: id, env: env, body: body}
	e, err := parseEnvelope(env)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, w := range e.Wraps {
		if w.User == "bob" && w.Init != nil {
			m.prekey = w.Init.Prekey
		}
	}
	return m
}

// receive opens m in process k and, if ack, acknowledges it (Forget), as
// the SDK does once the message is handled.
func (h *sharedHome) receive(k *Keyring, m msg, ack bool) {
	h.t.Helper()
	if got, err := h.w.open(k, m.id, "alice", "bob", m.env); err != nil || got != m.body {
		h.t.Fatalf("open %q: %q, %v", m.body, got, err)
	}
	if ack {
		if err := k.Forget(m.id); err != nil {
			h.t.Fatal(err)
		}
	}
}

// topUp is a change any process may save at any time: a prekey top-up.
// It returns the new prekey's ID.
func (h *sharedHome) topUp(k *Keyring) uint32 {
	h.t.Helper()
	blobs, err := k.NewPrekeys(1)
	if err != nil {
		h.t.Fatal(err)
	}
	var p Prekey
	if err := strictJSON(blobs[0][:len(blobs[0])-ed25519.SignatureSize], &p); err != nil {
		h.t.Fatal(err)
	}
	return p.ID
}

// TestSharedKeysFileNeverBringsBackUsedKeys runs natter listen and a
// one-shot command of the same home on one keys file: what one process
// used up (a one-time prekey, a skipped message key, a chain step, a kept
// content key) must not come back when the other, holding an older copy,
// saves. Each case ends with the file stolen: it must not open any message
// already received and acknowledged. And nothing either process made may
// be lost: the file still opens what alice sends next, and holds every
// prekey either process made and nobody used.
func TestSharedKeysFileNeverBringsBackUsedKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run plays the two processes and returns the messages bob's
		// device received and acknowledged.
		run func(t *testing.T, h *sharedHome) []msg
	}{
		{"one-shot uses a prekey, listener saves", func(t *testing.T, h *sharedHome) []msg {
			listen, oneShot := h.process(), h.process()
			m := h.send("opens a session to a one-time prekey")
			if m.prekey == 0 {
				t.Fatal("no one-time prekey used")
			}
			h.receive(oneShot, m, true)
			h.topUp(listen)
			if _, ok := h.stolen().prekeys[m.prekey]; ok {
				t.Error("the used prekey is back in the keys file")
			}
			if _, ok := listen.prekeys[m.prekey]; ok {
				t.Error("the listener still holds the used prekey after merging")
			}
			return []msg{m}
		}},
		{"one-shot uses a prekey whose tombstone drops out, listener saves", func(t *testing.T, h *sharedHome) []msg {
			listen, oneShot := h.process(), h.process()
			m := h.send("opens a session to a one-time prekey")
			h.receive(oneShot, m, true)
			// The one-shot goes on using so many prekeys that m's drops
			// out of the file's tombstones before the listener saves.
			for i := range maxUsedPrekeys {
				oneShot.merge.usedPrekeys.add(uint32(1<<31 + i))
			}
			h.topUp(oneShot)
			stolen := h.stolen()
			if n := len(stolen.merge.usedPrekeys.list); n != maxUsedPrekeys || stolen.merge.usedPrekeys.has(m.prekey) {
				t.Fatalf("%d tombstones in the file (m's among them: %v), want %d without m's", n, stolen.merge.usedPrekeys.has(m.prekey), maxUsedPrekeys)
			}
			h.topUp(listen)
			if _, ok := h.stolen().prekeys[m.prekey]; ok {
				t.Error("the used prekey is back in the keys file")
			}
			return []msg{m}
		}},
		{"listener uses a prekey, one-shot saves", func(t *testing.T, h *sharedHome) []msg {
			listen, oneShot := h.process(), h.process()
			m := h.send("the listener opens this one")
			h.receive(listen, m, true)
			h.topUp(oneShot)
			if _, ok := h.stolen().prekeys[m.prekey]; ok {
				t.Error("the used prekey is back in the keys file")
			}
			return []msg{m}
		}},
		{"one-shot uses a prekey the listener made", func(t *testing.T, h *sharedHome) []msg {
			listen := h.process()
			pk := h.topUp(listen)
			// natterd hands out the listener's new prekey.
			pub := h.publishedPrekey(listen, pk)
			h.w.prekeys[devRef{"bob", "phone"}] = [][]byte{pub}
			oneShot := h.process()
			m := h.send("to the listener's new prekey")
			if m.prekey != pk {
				t.Fatalf("used prekey %d, want %d", m.prekey, pk)
			}
			h.receive(oneShot, m, true)
			h.topUp(listen)
			if _, ok := h.stolen().prekeys[pk]; ok {
				t.Error("the used prekey is back in the keys file")
			}
			return []msg{m}
		}},
		{"one-shot uses a skipped message key, listener saves", func(t *testing.T, h *sharedHome) []msg {
			listen := h.process()
			m0, m1, m2 := h.send("zero"), h.send("one (late)"), h.send("two")
			h.receive(listen, m0, true)
			h.receive(listen, m2, true) // keeps m1's key for when it comes
			oneShot := h.process()
			h.receive(oneShot, m1, true)
			h.topUp(listen)
			return []msg{m0, m1, m2}
		}},
		{"one-shot moves the chain on, listener saves", func(t *testing.T, h *sharedHome) []msg {
			listen := h.process()
			m0 := h.send("zero")
			h.receive(listen, m0, true)
			oneShot := h.process()
			m1, m2 := h.send("one"), h.send("two")
			h.receive(oneShot, m1, true)
			h.receive(oneShot, m2, true)
			h.topUp(listen)
			return []msg{m0, m1, m2}
		}},
		{"one-shot acknowledges what the listener opened", func(t *testing.T, h *sharedHome) []msg {
			// The listener opened m but could not acknowledge it (its
			// connection was replaced); the one-shot gets m again, opens
			// it from the content key the listener kept, and
			// acknowledges it.
			listen := h.process()
			m := h.send("opened by one, acknowledged by the other")
			h.receive(listen, m, false)
			oneShot := h.process()
			h.receive(oneShot, m, true)
			h.topUp(listen)
			if _, ok := h.stolen().opened[m.id]; ok {
				t.Error("the forgotten content key is back in the keys file")
			}
			return []msg{m}
		}},
		{"one-shot opens a session over the limit, listener saves", func(t *testing.T, h *sharedHome) []msg {
			listen := h.process()
			var got []msg
			for i := range maxInSessions {
				h.alice.ForgetSessions("bob")
				m := h.send(fmt.Sprint("session ", i))
				h.receive(listen, m, true)
				got = append(got, m)
			}
			oneShot := h.process()
			h.alice.ForgetSessions("bob")
			m := h.send("one session too many")
			h.receive(oneShot, m, true)
			h.topUp(listen)
			if n := len(h.stolen().in); n != maxInSessions {
				t.Errorf("%d sessions from alice's phone in the file, want %d", n, maxInSessions)
			}
			return append(got, m)
		}},
		{"listener saves in between", func(t *testing.T, h *sharedHome) []msg {
			// The listener merges the one-shot's content key before the
			// one-shot forgets it.
			listen, oneShot := h.process(), h.process()
			m := h.send("kept a moment")
			h.receive(oneShot, m, false)
			h.topUp(listen)
			if err := oneShot.Forget(m.id); err != nil {
				t.Fatal(err)
			}
			h.topUp(listen)
			return []msg{m}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSharedHome(t)
			received := tc.run(t, h)
			if got, how, ok := h.thiefOpens(received...); ok {
				t.Errorf("the stolen keys file opens %q (%s), received and acknowledged before the theft", got, how)
			}
			// Nothing made is lost: the file opens what comes next, on
			// the session in use and on a new one.
			h.checkWhole()
		})
	}
}

// publishedPrekey returns the signed public half of k's prekey id, as k
// published it.
func (h *sharedHome) publishedPrekey(k *Keyring, id uint32) []byte {
	h.t.Helper()
	priv, err := kem.NewPrivateKey(k.prekeys[id])
	if err != nil {
		h.t.Fatal(err)
	}
	body, err := json.Marshal(Prekey{ID: id, Key: priv.PublicKey().Bytes()})
	if err != nil {
		h.t.Fatal(err)
	}
	return signed(k.dev.sign, tuple(Suite+" prekey", []byte(k.dev.user), []byte(k.dev.id), body), body)
}

// checkWhole checks the keys file as it is now opens the next message
// alice sends, and one on a new session to a prekey it holds.
func (h *sharedHome) checkWhole() {
	h.t.Helper()
	k := h.stolen()
	next := h.send("next")
	if got, err := h.w.open(k, next.id, "alice", "bob", next.env); err != nil || got != "next" {
		h.t.Errorf("the keys file does not open the next message: %q, %v", got, err)
	}
	var pk uint32
	for id := range k.prekeys {
		pk = id
		break
	}
	if pk == 0 {
		h.t.Fatal("no prekey left in the keys file")
	}
	h.alice.ForgetSessions("bob")
	h.w.prekeys[devRef{"bob", "phone"}] = [][]byte{h.publishedPrekey(k, pk)}
	fresh := h.send("on a new session")
	if got, err := h.w.open(k, fresh.id, "alice", "bob", fresh.env); err != nil || got != "on a new session" {
		h.t.Errorf("the keys file does not open a new session: %q, %v", got, err)
	}
}

// TestSharedKeysFileKeepsLatestChange: what a process replaces or drops
// (a contact's verified mark, the archive key, the identity) is not put
// back by the other process's older copy.
func TestSharedKeysFileKeepsLatestChange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, h *sharedHome, k *Keyring)
		check  func(t *testing.T, h *sharedHome, disk *Keyring)
	}{
		{"a contact verified", func(t *testing.T, h *sharedHome, k *Keyring) {
			if err := k.Verify("alice", h.alice.IdentityKey(), true); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, h *sharedHome, disk *Keyring) {
			if p, ok := disk.Pin("alice"); !ok || !p.Verified {
				t.Errorf("alice's pin in the file: %+v, want verified", p)
			}
		}},
		{"the archive turned off", func(t *testing.T, h *sharedHome, k *Keyring) {
			if err := k.DropArchiveKey(); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, h *sharedHome, disk *Keyring) {
			if disk.HasArchiveKey() {
				t.Error("the dropped archive key is back in the file")
			}
		}},
		{"the identity reset", func(t *testing.T, h *sharedHome, k *Keyring) {
			if err := k.CreateIdentity(); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, h *sharedHome, disk *Keyring) {
			if bytes.Equal(disk.IdentityKey(), h.w.identity("bob").IdentityKey()) {
				t.Error("the old identity key is back in the file")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSharedHome(t)
			setup := h.process()
			if err := setup.NewArchiveKey(); err != nil {
				t.Fatal(err)
			}
			// Both processes know alice (unverified) and hold the archive key.
			h.receive(setup, h.send("hello"), true)
			listen, oneShot := h.process(), h.process()
			tc.change(t, h, oneShot)
			h.topUp(listen)
			tc.check(t, h, h.stolen())
			h.topUp(oneShot)
			tc.check(t, h, h.stolen())
		})
	}
}

// TestSharedKeysFileRandomSchedules plays natter listen and a stream of
// one-shot commands on one keys file in many orders (a fixed seed each):
// alice sends, sometimes restarting (a new session, to a prekey while
// natterd has any); either process opens any message not yet
// acknowledged, in any order, acknowledges what it opened, tops up
// prekeys; the one-shot exits and another starts. Throughout, a message
// not yet acknowledged opens in whichever process gets it (nothing either
// made or still needs is lost), and the keys file stolen at any point
// opens no message acknowledged before.
func TestSharedKeysFileRandomSchedules(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			h := newSharedHome(t)
			procs := []*Keyring{h.process(), h.process()} // listen, the current one-shot
			pending := make([][]msg, 2)                   // opened, not yet acknowledged, per process
			var unacked, acked []msg
			restarts := 0
			checkStolen := func(when string) {
				t.Helper()
				if got, how, ok := h.thiefOpens(acked...); ok {
					t.Fatalf("%s: the stolen keys file opens %q (%s), acknowledged before", when, got, how)
				}
			}
			for step := range 120 {
				p := rng.IntN(2)
				switch op := rng.IntN(10); {
				case op < 3:
					unacked = append(unacked, h.send(fmt.Sprintf("message %d", step)))
				case op < 6 && len(unacked) > 0:
					m := unacked[rng.IntN(len(unacked))]
					if got, err := h.open(procs[p], m); err != nil || got != m.body {
						t.Fatalf("step %d: process %d cannot open %q, not yet acknowledged: %q, %v", step, p, m.body, got, err)
					}
					if !slices.ContainsFunc(pending[p], func(o msg) bool { return o.id == m.id }) {
						pending[p] = append(pending[p], m)
					}
				case op < 8 && len(pending[p]) > 0:
					for _, m := range pending[p] {
						if err := procs[p].Forget(m.id); err != nil {
							t.Fatal(err)
						}
						if i := slices.IndexFunc(unacked, func(o msg) bool { return o.id == m.id }); i >= 0 {
							unacked = slices.Delete(unacked, i, i+1)
							acked = append(acked, m)
						}
					}
					pending[p] = nil
					checkStolen(fmt.Sprintf("step %d, after process %d acknowledged", step, p))
				case op == 8:
					blobs, err := procs[p].NewPrekeys(1)
					if err != nil {
						t.Fatal(err)
					}
					ref := devRef{"bob", "phone"}
					h.w.prekeys[ref] = append(h.w.prekeys[ref], blobs...)
				case op == 9 && p == 1:
					procs[1], pending[1] = h.process(), nil // the one-shot exits, another starts
				case op == 9 && restarts < maxInSessions-1:
					// alice restarts: a new session. At most as many as bob
					// keeps, so that no message waits on a session dropped
					// for newer ones.
					h.alice.ForgetSessions("bob")
					restarts++
				}
			}
			checkStolen("at the end")
			if len(acked) == 0 || len(unacked) == 0 {
				t.Fatalf("a weak schedule: %d acknowledged, %d not", len(acked), len(unacked))
			}
			// What is not acknowledged opens from the file alone.
			fresh := h.process()
			for _, m := range unacked {
				if got, err := h.open(fresh, m); err != nil || got != m.body {
					t.Errorf("a process started now cannot open %q, not yet acknowledged: %q, %v", m.body, got, err)
				}
			}
		})
	}
}

// TestSharedKeysFileOpensWhatTheOtherPrepared: a message that needs what
// another process of the device made since this one last read the keys
// file (a prekey it published, a session it opened and confirmed) opens.
func TestSharedKeysFileOpensWhatTheOtherPrepared(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, h *sharedHome, oneShot *Keyring)
	}{
		{"a prekey the one-shot published", func(t *testing.T, h *sharedHome, oneShot *Keyring) {
			pk := h.topUp(oneShot)
			h.w.prekeys[devRef{"bob", "phone"}] = [][]byte{h.publishedPrekey(oneShot, pk)}
			h.alice.ForgetSessions("bob")
		}},
		{"a session the one-shot opened and confirmed", func(t *testing.T, h *sharedHome, oneShot *Keyring) {
			h.alice.ForgetSessions("bob")
			h.receive(oneShot, h.send("opens a session"), true)
			rid, reply := h.w.seal(oneShot, "alice", "tells alice bob holds it")
			if _, err := h.w.open(h.alice, rid, "bob", "alice", reply); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSharedHome(t)
			listen := h.process()
			h.receive(listen, h.send("the listener is up to date"), true)
			tc.prepare(t, h, h.process())
			h.receive(listen, h.send("needs what the one-shot made"), true)
		})
	}
}

// TestSharedKeysFileLockedSaves: a one-shot command uses up a prekey and
// saves right after natter listen read the file to merge it and before it
// wrote. Without a lock the listener's write, from what it read, would
// bring the prekey back and drop the one-shot's record of it (and the
// one-shot exits). With the processes' saves under one lock (SetLock) the
// one-shot waits, then merges the listener's write into its own.
func TestSharedKeysFileLockedSaves(t *testing.T) {
	h := newSharedHome(t)
	lk := newFileLock()
	listen, oneShot := h.process(), h.process()
	listen.SetLock(lk.lock)
	oneShot.SetLock(lk.lock)
	m := h.send("opened by the one-shot while the listener saves")
	done := make(chan error, 1)
	h.onRead = func() { // the listener has read the file and holds the lock
		select { // the listener's own
		case <-lk.asked:
		default:
		}
		go func() {
			_, err := oneShot.Open(m.id, "alice", "bob", m.env, h.aliceBundle)
			if err == nil {
				err = oneShot.Forget(m.id)
			}
			done <- err
		}()
		select {
		case <-lk.asked: // the one-shot waits for the lock
		case err := <-done:
			done <- err
		}
	}
	h.topUp(listen)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok := h.stolen().prekeys[m.prekey]; ok {
		t.Error("the used prekey is back in the keys file")
	}
	if got, how, ok := h.thiefOpens(m); ok {
		t.Errorf("the stolen keys file opens %q (%s), received and acknowledged before the theft", got, how)
	}
	h.checkWhole()
}
