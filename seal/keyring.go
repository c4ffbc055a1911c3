package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/natterim/natter"
)

// Errors of Seal and Open.
var (
	// ErrNotForMe: the envelope holds no key for this device (it was
	// sealed before this device existed or was approved).
	ErrNotForMe = errors.New("seal: message not sealed for this device")
	// ErrCannotOpen: a key does not open, the session is unknown or its
	// keys are gone (a replay, or a message older than this device's
	// state), or the sender's signature does not verify.
	ErrCannotOpen = errors.New("seal: cannot open message")
	// ErrReplay: the message's key was used already: this device opened
	// the message before (it is a duplicate) or it is replayed. It wraps
	// ErrCannotOpen.
	ErrReplay = fmt.Errorf("%w: message key already used (a duplicate or a replay)", ErrCannotOpen)
	// ErrKeyChanged: a contact marked verified now has another identity
	// key. Nothing is sealed for them until the user verifies the new key
	// (or accepts it).
	ErrKeyChanged = errors.New("seal: verified contact's identity key changed")
)

// Policy limits.
const (
	sessionMaxAge      = 7 * 24 * time.Hour // a sender starts a new session after this
	sessionMaxMessages = 10_000             // or after this many messages
	maxSkip            = 1_000              // message keys kept for out-of-order arrival, per jump
	maxSkipped         = 2_000              // per session
	maxInSessions      = 4                  // inbound sessions kept per sending device
	maxOpened          = 2_048              // content keys kept for redelivered messages
)

// Keyring is one device's end-to-end state: its keys, the sessions it has
// with other devices, and what it knows about contacts' identity keys.
// Its methods are safe for concurrent use. Every change to what must
// survive a restart is passed to the persist function (see SetPersist)
// before the method returns.
type Keyring struct {
	mu      sync.Mutex
	dev     *device
	id      *Identity // nil unless this device holds the user's identity
	prekeys map[uint32][]byte
	nextPK  uint32 // unused since prekey IDs are random; kept in the file format
	created time.Time
	in      map[string]*inSession // by session ID (hex)
	opened  map[natter.MessageID]openedKey
	// openedOrder is opened's IDs, oldest first (some may be forgotten).
	openedOrder []natter.MessageID
	pins        map[natter.UserID]*Pin
	out         map[devRef]*outSession // never persisted: a restart starts new sessions
	persist     func([]byte) error
	changed     func() []byte          // see SetChanged
	lock        func() (func(), error) // see SetLock
	dtlsPEM     string
	archive     []byte // the archive key (archive.go), nil if none
	// When the identity, the archive key and the DTLS certificate last
	// changed (set, replaced or dropped): Merge keeps the later.
	identityAt, archiveAt, dtlsAt time.Time
	merge                         mergeState // what Merge needs to know (merge.go)
}

type devRef struct {
	User   natter.UserID
	Device natter.DeviceID
}

type inSession struct {
	From       natter.UserID     `json:"from"`
	FromDevice natter.DeviceID   `json:"from_device"`
	Chain      chain             `json:"chain"`
	Skipped    map[uint32][]byte `json:"skipped,omitempty"`
	Created    time.Time         `json:"created"`
	// Ack is the key of the session's acks (ack.go); nil in sessions
	// stored before acks existed.
	Ack []byte `json:"ack,omitempty"`
}

type outSession struct {
	sid       []byte
	chain     chain
	ack       []byte // the key of the peer's acks (ack.go)
	init      *initHeader
	confirmed bool // the peer said it holds the session: stop sending init
	created   time.Time
}

type openedKey struct {
	Key []byte    `json:"key"`
	At  time.Time `json:"at"`
}

// Pin is what the device knows about a user's identity key: the key it
// first saw (trust on first use) and whether the user verified it by
// comparing safety numbers.
type Pin struct {
	Identity []byte    `json:"identity"`
	Verified bool      `json:"verified,omitempty"`
	Since    time.Time `json:"since"`
	// Previous is the key before the last change, if it changed.
	Previous []byte `json:"previous,omitempty"`
	// Updated is when this device last changed the pin (pinned, moved,
	// verified or unverified it): of two processes' pins, Merge keeps the
	// later.
	Updated time.Time `json:"updated,omitzero"`
}

// New returns a new keyring for user's device with fresh device keys and
// no identity (see CreateIdentity and AdoptIdentity).
func New(user natter.UserID, dev natter.DeviceID) (*Keyring, error) {
	d, err := newDevice(user, dev)
	if err != nil {
		return nil, err
	}
	k := &Keyring{dev: d, nextPK: 1, created: time.Now()}
	k.init()
	return k, nil
}

func (k *Keyring) init() {
	if k.prekeys == nil {
		k.prekeys = make(map[uint32][]byte)
	}
	k.merge.init()
	if k.in == nil {
		k.in = make(map[string]*inSession)
	}
	if k.opened == nil {
		k.opened = make(map[natter.MessageID]openedKey)
	}
	k.openedOrder = slices.SortedFunc(maps.Keys(k.opened), func(a, b natter.MessageID) int {
		return k.opened[a].At.Compare(k.opened[b].At)
	})
	if k.pins == nil {
		k.pins = make(map[natter.UserID]*Pin)
	}
	k.out = make(map[devRef]*outSession)
}

// SetPersist sets the function that saves the keyring's state (as Marshal
// returns it) after every change that must survive a restart. It is called
// with the keyring locked; an error fails the operation.
func (k *Keyring) SetPersist(f func([]byte) error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.persist = f
}

// SetChanged sets the function that returns the state another process
// saved since this keyring last read or wrote it (nil if none). It is
// called before each save, and when a message does not open (it may need
// a prekey or session the other process made, or the other may have
// opened it): what it returns is merged first (see Merge), so that neither
// process loses what the other made nor brings back what the other used
// up.
func (k *Keyring) SetChanged(f func() []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.changed = f
}

// SetLock sets the function that each save calls first to hold off the
// other processes sharing the keys file (see SetChanged) until what it
// read, merged and wrote is written; it returns the function that lets
// them go on. Without it, two processes that save at the same moment lose
// one of the two writes, and with it, if that process exits before it
// saves again, the record of a key it used up (docs/security.md).
func (k *Keyring) SetLock(lock func() (unlock func(), err error)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lock = lock
}

func (k *Keyring) save() error {
	if k.persist == nil {
		return nil
	}
	if k.lock != nil {
		unlock, err := k.lock()
		if err != nil {
			return fmt.Errorf("seal: locking the keys: %w", err)
		}
		defer unlock()
	}
	k.refreshLocked()
	b, err := k.marshal()
	if err != nil {
		return err
	}
	if err := k.persist(b); err != nil {
		return fmt.Errorf("seal: saving keys: %w", err)
	}
	return nil
}

// refreshLocked merges what another process of this device saved since
// this one last read or wrote the keys (see SetChanged), and reports
// whether there was anything.
func (k *Keyring) refreshLocked() bool {
	if k.changed == nil {
		return false
	}
	state := k.changed()
	if state == nil {
		return false
	}
	o, err := Load(state)
	if err != nil || o.dev.user != k.dev.user || o.dev.id != k.dev.id || !bytes.Equal(o.dev.signKey(), k.dev.signKey()) {
		return false
	}
	k.mergeLocked(o)
	return true
}

// User and Device name the keyring's owner.
func (k *Keyring) User() natter.UserID     { return k.dev.user }
func (k *Keyring) Device() natter.DeviceID { return k.dev.id }

// SignKey returns this device's signing public key.
func (k *Keyring) SignKey() []byte { return k.dev.signKey() }

// HasIdentity reports whether this device holds the user's identity key.
func (k *Keyring) HasIdentity() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.id != nil
}

// IdentityKey returns the public identity key this device holds, or nil.
func (k *Keyring) IdentityKey() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.id == nil {
		return nil
	}
	return k.id.Public()
}

// CreateIdentity gives the keyring a new identity key (the user's first
// device, or a reset).
func (k *Keyring) CreateIdentity() error {
	id, err := NewIdentity()
	if err != nil {
		return err
	}
	return k.AdoptIdentity(id)
}

// AdoptIdentity gives the keyring an identity key made elsewhere. It is
// for tests and for provisioning a device from one that holds the identity
// over a channel the user trusts.
func (k *Keyring) AdoptIdentity(id *Identity) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	k.id, k.identityAt = id, now
	k.pins[k.dev.user] = &Pin{Identity: id.Public(), Verified: true, Since: now, Updated: now}
	return k.save()
}

// Certify returns the identity's certificate for one of the user's
// devices, or an error if this device does not hold the identity.
func (k *Keyring) Certify(dev natter.DeviceID, signKey []byte) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.id == nil {
		return nil, errors.New("seal: this device does not hold the identity key")
	}
	return k.id.Certify(k.dev.user, dev, signKey), nil
}

// SetDTLS sets this device's DTLS certificate for peer-to-peer channels
// (PEM, certificate and private key) and the fingerprint the bundle names.
func (k *Keyring) SetDTLS(pem, fp string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dtlsPEM, k.dev.dtls, k.dtlsAt = pem, fp, time.Now()
	return k.save()
}

// DTLSFingerprint returns the fingerprint set with SetDTLS, which the
// device's bundle names, or "". A browser sets only this: its certificate
// is the browser's own (an RTCCertificate), never seen as PEM.
func (k *Keyring) DTLSFingerprint() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dev.dtls
}

// DTLS returns the DTLS certificate set with SetDTLS (PEM), or "".
func (k *Keyring) DTLS() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dtlsPEM
}

// Bundle returns this device's signed bundle, to publish.
func (k *Keyring) Bundle() ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dev.signedBundle(k.created)
}

// NewPrekeys makes n one-time prekeys, keeps their private halves and
// returns the signed public blobs to publish.
func (k *Keyring) NewPrekeys(n int) ([][]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var blobs [][]byte
	for range n {
		// Random IDs: two processes of one device (natter listen and a
		// one-shot command) may each make prekeys; see Merge.
		id := randomPrekeyID(k.prekeys)
		priv, blob, err := k.dev.newPrekey(id)
		if err != nil {
			return nil, err
		}
		k.prekeys[id] = priv
		k.merge.madePrekeys[id] = true
		blobs = append(blobs, blob)
	}
	return blobs, k.save()
}

func randomPrekeyID(taken map[uint32][]byte) uint32 {
	for {
		var b [4]byte
		rand.Read(b[:])
		id := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		if _, ok := taken[id]; id != 0 && !ok {
			return id
		}
	}
}

// Prekeys returns how many one-time prekey private halves the device holds.
func (k *Keyring) Prekeys() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.prekeys)
}

// Pin returns what the keyring knows of user's identity key.
func (k *Keyring) Pin(user natter.UserID) (Pin, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.pins[user]
	if !ok {
		return Pin{}, false
	}
	return *p, true
}

// Verify marks user's identity key as verified (the user compared safety
// numbers), or clears the mark. identity is the key that was compared: it
// becomes the pinned key.
func (k *Keyring) Verify(user natter.UserID, identity []byte, verified bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	p := k.pins[user]
	if p == nil || !bytes.Equal(p.Identity, identity) {
		p = &Pin{Identity: slices.Clone(identity), Since: now}
		k.pins[user] = p
	}
	p.Verified, p.Previous, p.Updated = verified, nil, now
	return k.save()
}

// Forget drops the content keys kept for opened messages ids, once they
// are safely handled (acknowledged): until then a redelivery can be opened
// again, afterwards nothing on this device opens them.
func (k *Keyring) Forget(ids ...natter.MessageID) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := len(k.opened)
	for _, id := range ids {
		if _, ok := k.opened[id]; ok {
			delete(k.opened, id)
			k.merge.forgot(id)
		}
	}
	if len(k.opened) == n {
		return nil
	}
	if len(k.openedOrder) > 2*len(k.opened)+64 { // drop forgotten IDs now and then
		k.openedOrder = slices.DeleteFunc(k.openedOrder, func(id natter.MessageID) bool { _, ok := k.opened[id]; return !ok })
	}
	return k.save()
}

// ForgetSessions drops the sessions this device sends on to user's devices,
// so that the next message opens new ones (after a device's keys changed).
func (k *Keyring) ForgetSessions(user natter.UserID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for r := range k.out {
		if r.User == user {
			delete(k.out, r)
		}
	}
}

// NeedsSession reports whether sealing for dev would open a new session
// (and so wants a claimed prekey).
func (k *Keyring) NeedsSession(user natter.UserID, dev natter.DeviceID) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.out[devRef{user, dev}]
	return s == nil || k.stale(s)
}

// OpenSessions opens a session to each of peers that needs one (as Seal
// would, to its claimed prekey if it has one), so that a later Seal to
// them finds it open: a client prepares its contacts' sessions ahead of
// the first message that way.
func (k *Keyring) OpenSessions(peers []Peer) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	me := devRef{k.dev.user, k.dev.id}
	for _, p := range peers {
		ref := devRef{p.Bundle.User, p.Bundle.Device}
		if s := k.out[ref]; ref == me || (s != nil && !k.stale(s)) {
			continue
		}
		s, err := k.openSession(ref, p)
		if err != nil {
			return err
		}
		k.out[ref] = s
	}
	return nil
}

func (k *Keyring) stale(s *outSession) bool {
	return time.Since(s.created) > sessionMaxAge || s.chain.N >= sessionMaxMessages
}

// newSID returns a random session ID.
func newSID() []byte {
	b := make([]byte, sidSize)
	rand.Read(b)
	return b
}

func sidKey(sid []byte) string { return hex.EncodeToString(sid) }

func hexDecode(s string) ([]byte, error) { return hex.DecodeString(s) }

// verifyInit checks an init header's signature by the sending device.
func verifyInit(b *Bundle, to devRef, sid []byte, h *initHeader) bool {
	return len(h.Sig) == ed25519.SignatureSize &&
		ed25519.Verify(b.SignKey, initMessage(devRef{b.User, b.Device}, to, sid, h), h.Sig)
}

func initMessage(from, to devRef, sid []byte, h *initHeader) []byte {
	return tuple(Suite+" session init", []byte(from.User), []byte(from.Device), []byte(to.User), []byte(to.Device),
		sid, []byte(fmt.Sprint(h.Prekey)), h.Enc)
}

func sessionInfo(from, to devRef, sid []byte) []byte {
	return tuple(Suite+" session", []byte(from.User), []byte(from.Device), []byte(to.User), []byte(to.Device), sid)
}

// jsonState is the persisted form of a Keyring.
type jsonState struct {
	V        int                            `json:"v"`
	User     natter.UserID                  `json:"user"`
	Device   natter.DeviceID                `json:"device"`
	Sign     []byte                         `json:"sign"` // Ed25519 seed
	KEM      []byte                         `json:"kem"`
	Self     []byte                         `json:"self"`
	Identity []byte                         `json:"identity,omitempty"` // Ed25519 seed
	Created  time.Time                      `json:"created"`
	NextPK   uint32                         `json:"next_prekey"`
	Prekeys  map[uint32][]byte              `json:"prekeys"`
	In       map[string]*inSession          `json:"sessions"`
	Opened   map[natter.MessageID]openedKey `json:"opened"`
	Pins     map[natter.UserID]*Pin         `json:"pins"`
	DTLS     string                         `json:"dtls,omitempty"`
	DTLSFP   string                         `json:"dtls_fp,omitempty"`
	Archive  []byte                         `json:"archive,omitempty"`
	// What Merge needs (merge.go): when the identity, archive key and DTLS
	// certificate last changed, and the tombstones of used-up keys.
	IdentityAt  time.Time          `json:"identity_at,omitzero"`
	ArchiveAt   time.Time          `json:"archive_at,omitzero"`
	DTLSAt      time.Time          `json:"dtls_at,omitzero"`
	UsedPrekeys []uint32           `json:"used_prekeys,omitempty"`
	Forgotten   []natter.MessageID `json:"forgotten,omitempty"`
}

// Marshal returns the keyring's state, private keys included: store it
// where only the device's user can read it.
func (k *Keyring) Marshal() ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.marshal()
}

func (k *Keyring) marshal() ([]byte, error) {
	kemPriv, err := k.dev.kem.Bytes()
	if err != nil {
		return nil, err
	}
	s := jsonState{
		V: 1, User: k.dev.user, Device: k.dev.id, Sign: k.dev.sign.Seed(), KEM: kemPriv,
		Self: k.dev.self, Created: k.created, NextPK: k.nextPK, Prekeys: k.prekeys,
		In: k.in, Opened: k.opened, Pins: k.pins, DTLS: k.dtlsPEM, DTLSFP: k.dev.dtls, Archive: k.archive,
		IdentityAt: k.identityAt, ArchiveAt: k.archiveAt, DTLSAt: k.dtlsAt,
		UsedPrekeys: k.merge.usedPrekeys.list, Forgotten: k.merge.forgotten.list,
	}
	if k.id != nil {
		s.Identity = k.id.priv.Seed()
	}
	return json.Marshal(s)
}

// Load restores a keyring saved with Marshal.
func Load(b []byte) (*Keyring, error) {
	var s jsonState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("seal: loading keys: %w", err)
	}
	if s.V != 1 || len(s.Sign) != ed25519.SeedSize || len(s.Self) != 32 {
		return nil, errors.New("seal: loading keys: unknown format")
	}
	kp, err := kem.NewPrivateKey(s.KEM)
	if err != nil {
		return nil, fmt.Errorf("seal: loading keys: %w", err)
	}
	k := &Keyring{
		dev:     &device{user: s.User, id: s.Device, sign: ed25519.NewKeyFromSeed(s.Sign), kem: kp, self: s.Self, dtls: s.DTLSFP},
		dtlsPEM: s.DTLS, archive: s.Archive,
		created: s.Created, nextPK: s.NextPK, prekeys: s.Prekeys, in: s.In, opened: s.Opened, pins: s.Pins,
		identityAt: s.IdentityAt, archiveAt: s.ArchiveAt, dtlsAt: s.DTLSAt,
	}
	if s.Identity != nil {
		if k.id, err = identityFromSeed(s.Identity); err != nil {
			return nil, err
		}
	}
	k.init()
	for _, id := range s.UsedPrekeys {
		k.merge.usedPrekeys.add(id)
	}
	for _, id := range s.Forgotten {
		k.merge.forgotten.add(id)
	}
	return k, nil
}
