package seal

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/natterim/natter"
)

// Two processes of one device (natter listen and a one-shot command of the
// same home) each hold the keyring and save it to one file; before each
// save a process merges what the other saved since (SetChanged, Merge).
// A merge must keep what either process made (prekeys it published,
// sessions it opened) and must never bring back what either used up: a
// one-time prekey, a message key or a content key that came back from a
// stale copy would let a keys file stolen later open a message already
// received (docs/security.md, "Forward secrecy"). The rules:
//
//   - A one-time prekey or a content key this process holds from a keys
//     file (loaded or merged) and that the other process's file no longer
//     has was used up or forgotten there: it is dropped.
//   - One this process made itself (NewPrekeys, Open) is kept until it
//     shows up in a file the other process wrote (the other holds it
//     then, and the first rule applies from there on): the other process
//     may have overwritten the file without having seen it.
//   - So that the other process can use up what this one made before this
//     one sees it in such a file (or open the same message with its own
//     copy of the session), a process that uses up a prekey or forgets a
//     content key records its ID in the file (tombstones, the newest
//     maxUsedPrekeys and maxForgotten), and a merge drops what the
//     other's tombstones name. The first rule covers what has dropped out
//     of the tombstones.
//   - A process never takes back what it used up itself (kept in memory).
//   - Sessions are joined: the chain furthest on, and of the skipped
//     message keys those that neither process used (below both chains'
//     positions a key both still hold). Then the newest maxInSessions per
//     sending device are kept, as each process does.
//   - The identity, the archive key, the DTLS certificate and each pin
//     are the ones changed last (each carries when it changed).
//
// Reading, merging and writing are one step only under a lock (SetLock):
// without one, two processes that read the file at the same time and then
// both write it lose one write. The rules keep what a process made across
// that (it writes it again), but what a process used up stays in the file
// if that process exits before it saves again.

// Bounds on the tombstones kept in the keys file.
const (
	maxUsedPrekeys = 512 // IDs of used-up one-time prekeys
	maxForgotten   = 256 // IDs of messages whose content keys were forgotten
	maxForgotHere  = 4096
)

// mergeState is a keyring's bookkeeping for Merge.
type mergeState struct {
	// In memory only: what this process made and has not yet seen in a
	// file another process wrote, and what it used up or forgot.
	madePrekeys map[uint32]bool
	openedHere  map[natter.MessageID]bool
	usedHere    map[uint32]bool
	forgotHere  *fifo[natter.MessageID]
	// Persisted tombstones, oldest first.
	usedPrekeys *fifo[uint32]
	forgotten   *fifo[natter.MessageID]
}

func (m *mergeState) init() {
	m.madePrekeys = make(map[uint32]bool)
	m.openedHere = make(map[natter.MessageID]bool)
	m.usedHere = make(map[uint32]bool)
	m.forgotHere = newFIFO[natter.MessageID](maxForgotHere)
	m.usedPrekeys = newFIFO[uint32](maxUsedPrekeys)
	m.forgotten = newFIFO[natter.MessageID](maxForgotten)
}

// usedPrekey records that this process used up prekey id.
func (m *mergeState) usedPrekey(id uint32) {
	m.usedHere[id] = true
	m.usedPrekeys.add(id)
	delete(m.madePrekeys, id)
}

// forgot records that this process dropped the content key of message id.
func (m *mergeState) forgot(id natter.MessageID) {
	m.forgotHere.add(id)
	m.forgotten.add(id)
	delete(m.openedHere, id)
}

// fifo is a set that keeps its newest max members.
type fifo[T comparable] struct {
	list []T // oldest first
	set  map[T]bool
	max  int
}

func newFIFO[T comparable](max int) *fifo[T] {
	return &fifo[T]{set: make(map[T]bool), max: max}
}

func (f *fifo[T]) add(v T) {
	if f.set[v] {
		return
	}
	f.set[v] = true
	f.list = append(f.list, v)
	if n := len(f.list) - f.max; n > 0 {
		for _, old := range f.list[:n] {
			delete(f.set, old)
		}
		f.list = slices.Clone(f.list[n:])
	}
}

func (f *fifo[T]) has(v T) bool { return f.set[v] }

// Merge takes into k what another process of the same device saved (state,
// as Marshal gives it) since k was loaded: prekeys it made, sessions it
// opened or moved further, content keys it kept, contacts it pinned. What
// either process used up (prekeys, message keys, forgotten content keys)
// stays used up (see the rules above). It is for two processes sharing one
// keys file (the CLI merges before every save, through SetChanged).
func (k *Keyring) Merge(state []byte) error {
	o, err := Load(state)
	if err != nil {
		return fmt.Errorf("seal: merge: %w", err)
	}
	if o.dev.user != k.dev.user || o.dev.id != k.dev.id || !bytes.Equal(o.dev.signKey(), k.dev.signKey()) {
		return errors.New("seal: merge: another device's keys")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.mergeLocked(o)
	return nil
}

// mergeLocked merges o, another process's saved state, into k.
func (k *Keyring) mergeLocked(o *Keyring) {
	m := &k.merge
	for _, id := range o.merge.usedPrekeys.list {
		m.usedPrekeys.add(id)
	}
	for _, id := range o.merge.forgotten.list {
		m.forgotten.add(id)
	}

	// One-time prekeys.
	for id := range k.prekeys {
		_, theirs := o.prekeys[id]
		switch {
		case m.usedHere[id] || m.usedPrekeys.has(id):
			delete(k.prekeys, id)
			delete(m.madePrekeys, id)
		case theirs:
			delete(m.madePrekeys, id) // the other process holds it now
		case !m.madePrekeys[id]:
			delete(k.prekeys, id) // used up by the other process
		}
	}
	for id, priv := range o.prekeys {
		if _, have := k.prekeys[id]; !have && !m.usedHere[id] && !m.usedPrekeys.has(id) {
			k.prekeys[id] = priv
		}
	}

	// Sessions.
	for sid, s := range o.in {
		mine, ok := k.in[sid]
		switch {
		case !ok:
			k.in[sid] = s
		case mine.From == s.From && mine.FromDevice == s.FromDevice:
			k.in[sid] = joinSessions(mine, s)
		}
	}
	senders := make(map[devRef]bool)
	for _, s := range k.in {
		senders[devRef{s.From, s.FromDevice}] = true
	}
	for dev := range senders {
		k.trimSessions(dev)
	}

	// Content keys of opened messages.
	for id := range k.opened {
		_, theirs := o.opened[id]
		switch {
		case m.forgotten.has(id):
			delete(k.opened, id)
			delete(m.openedHere, id)
		case theirs:
			delete(m.openedHere, id)
		case !m.openedHere[id]:
			delete(k.opened, id) // forgotten by the other process
		}
	}
	for id, key := range o.opened {
		if _, have := k.opened[id]; !have && !m.forgotHere.has(id) && !m.forgotten.has(id) {
			k.opened[id] = key
		}
	}
	k.openedOrder = slices.SortedFunc(maps.Keys(k.opened), func(a, b natter.MessageID) int {
		if c := k.opened[a].At.Compare(k.opened[b].At); c != 0 {
			return c
		}
		return strings.Compare(string(a), string(b))
	})
	for len(k.opened) > maxOpened {
		delete(k.opened, k.openedOrder[0])
		k.openedOrder = k.openedOrder[1:]
	}

	// What is replaced rather than used up: the later change wins.
	for u, p := range o.pins {
		if mine, ok := k.pins[u]; !ok || p.Updated.After(mine.Updated) {
			k.pins[u] = p
		}
	}
	if later(o.identityAt, k.identityAt, o.id != nil, k.id != nil) {
		k.id, k.identityAt = o.id, o.identityAt
	}
	if later(o.archiveAt, k.archiveAt, o.archive != nil, k.archive != nil) {
		k.archive, k.archiveAt = o.archive, o.archiveAt
	}
	if later(o.dtlsAt, k.dtlsAt, o.dtlsPEM != "", k.dtlsPEM != "") {
		k.dtlsPEM, k.dev.dtls, k.dtlsAt = o.dtlsPEM, o.dev.dtls, o.dtlsAt
	}
}

// later reports whether the other process's value (changed at theirs,
// set or not) replaces this one's: it changed later, or neither carries a
// time (a file from before times were kept) and only theirs is set.
func later(theirs, mine time.Time, theirsSet, mineSet bool) bool {
	if theirs.IsZero() && mine.IsZero() {
		return theirsSet && !mineSet
	}
	return theirs.After(mine)
}

// joinSessions returns what two processes know of one inbound session:
// the chain of the one that went further, and the skipped message keys
// neither used. Below the position of the one behind, both stepped past
// every index, so a key is still unused only if both hold it; from there
// on, only the one ahead can have used any.
func joinSessions(a, b *inSession) *inSession {
	ahead, behind := a, b
	if b.Chain.N > a.Chain.N {
		ahead, behind = b, a
	}
	j := *ahead
	j.Skipped = nil
	for i, mk := range ahead.Skipped {
		if i >= behind.Chain.N || behind.Skipped[i] != nil {
			if j.Skipped == nil {
				j.Skipped = make(map[uint32][]byte)
			}
			j.Skipped[i] = mk
		}
	}
	if behind.Created.Before(j.Created) {
		j.Created = behind.Created
	}
	if j.Ack == nil {
		j.Ack = behind.Ack
	}
	return &j
}
