package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/natterim/natter"
)

// Seal seals body, message id from this device in its conversation with
// user to, for every device in peers (the recipient's devices and this
// user's other devices) and for this device itself. A peer without a live
// session gets a new one, to its claimed prekey if it has one, else to its
// bundle's last-resort key.
func (k *Keyring) Seal(id natter.MessageID, to natter.UserID, body []byte, peers []Peer) ([]byte, error) {
	key := make([]byte, 32)
	rand.Read(key)
	e := &envelope{From: k.dev.user, FromDevice: k.dev.id}
	g, nonce, err := aeadFor(key, "body")
	if err != nil {
		return nil, err
	}
	e.Body = g.Seal(nil, nonce, body, bodyAAD(id, e.From, e.FromDevice, to))

	k.mu.Lock()
	defer k.mu.Unlock()
	self, err := k.wrapSelf(id, key)
	if err != nil {
		return nil, err
	}
	e.Wraps = append(e.Wraps, wrap{User: k.dev.user, Device: k.dev.id, Kind: wrapSelf, Key: self})
	me := devRef{k.dev.user, k.dev.id}
	for _, p := range peers {
		ref := devRef{p.Bundle.User, p.Bundle.Device}
		if ref == me {
			continue
		}
		s := k.out[ref]
		if s == nil || k.stale(s) {
			if s, err = k.openSession(ref, p); err != nil {
				return nil, err
			}
			k.out[ref] = s
		}
		w := wrap{User: ref.User, Device: ref.Device, Kind: wrapChain, SID: s.sid, Index: s.chain.N}
		if !s.confirmed {
			w.Kind, w.Init = wrapInit, s.init
		}
		w.Seen = k.latestFrom(ref)
		mk := s.chain.step()
		g, nonce, err := aeadFor(mk, "wrap")
		if err != nil {
			return nil, err
		}
		w.Key = g.Seal(nil, nonce, key, wrapAAD(id, e, to, &w))
		e.Wraps = append(e.Wraps, w)
	}
	return e.marshal(), nil
}

// openSession starts a session from this device to p.
func (k *Keyring) openSession(to devRef, p Peer) (*outSession, error) {
	pub, pkID := p.Bundle.KEMKey, uint32(0)
	if p.Prekey != nil {
		pub, pkID = p.Prekey.Key, p.Prekey.ID
	}
	pk, err := kem.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("seal: %s/%s: %w", to.User, to.Device, err)
	}
	from := devRef{k.dev.user, k.dev.id}
	sid := newSID()
	enc, s, err := hpke.NewSender(pk, kdf, hpke.ExportOnly(), sessionInfo(from, to, sid))
	if err != nil {
		return nil, fmt.Errorf("seal: %s/%s: %w", to.User, to.Device, err)
	}
	ck, err := s.Export(Suite+" chain", 32)
	if err != nil {
		return nil, err
	}
	ack, err := s.Export(Suite+" ack", 32)
	if err != nil {
		return nil, err
	}
	h := &initHeader{Prekey: pkID, Enc: enc}
	h.Sig = ed25519.Sign(k.dev.sign, initMessage(from, to, sid, h))
	return &outSession{sid: sid, chain: chain{CK: ck}, ack: ack, init: h, created: time.Now()}, nil
}

// latestFrom returns the ID of the newest session this device holds from
// dev, to tell dev its init arrived.
func (k *Keyring) latestFrom(dev devRef) []byte {
	var best *inSession
	var sid string
	for id, s := range k.in {
		if s.From == dev.User && s.FromDevice == dev.Device && (best == nil || s.Created.After(best.Created)) {
			best, sid = s, id
		}
	}
	if best == nil {
		return nil
	}
	b, _ := hexDecode(sid)
	return b
}

func (k *Keyring) wrapSelf(id natter.MessageID, key []byte) ([]byte, error) {
	g, nonce, err := aeadFor(selfSecret(k.dev.self, id), "self")
	if err != nil {
		return nil, err
	}
	return g.Seal(nil, nonce, key, []byte(id)), nil
}

func selfSecret(self []byte, id natter.MessageID) []byte {
	return tuple(Suite+" self", self, []byte(id))
}

func bodyAAD(id natter.MessageID, from natter.UserID, dev natter.DeviceID, to natter.UserID) []byte {
	return tuple(Suite+" body", []byte(id), []byte(from), []byte(dev), []byte(to))
}

func wrapAAD(id natter.MessageID, e *envelope, to natter.UserID, w *wrap) []byte {
	return tuple(Suite+" wrap", []byte(id), []byte(e.From), []byte(e.FromDevice), []byte(to),
		[]byte(w.User), []byte(w.Device), w.SID, []byte(fmt.Sprint(w.Index)), w.Seen)
}

// Opened is an opened message.
type Opened struct {
	Body       []byte
	FromDevice natter.DeviceID
	// Ack, if set, is the session ack to send to the sending device: the
	// message carried the init of its session with this device (see
	// SessionAck).
	Ack *SessionAck
}

// Open opens a message sealed by Seal: id, from and to are the message's
// ID, sender and recipient as delivered (the envelope must agree).
// bundle returns a device's verified bundle; it is called, outside the
// keyring's lock, only when a message opens a new session (the sender's
// signature is checked against it).
func (k *Keyring) Open(id natter.MessageID, from, to natter.UserID, sealed []byte,
	bundle func(natter.UserID, natter.DeviceID) (*Bundle, error)) (*Opened, error) {
	e, err := parseEnvelope(sealed)
	if err != nil {
		return nil, err
	}
	if e.From != from {
		return nil, fmt.Errorf("%w: sealed by %s, delivered as from %s", ErrCannotOpen, e.From, from)
	}
	var mine *wrap
	for i := range e.Wraps {
		if w := &e.Wraps[i]; w.User == k.dev.user && w.Device == k.dev.id {
			mine = w
			break
		}
	}
	var sender *Bundle
	if mine != nil && mine.Init != nil {
		k.mu.Lock()
		_, known := k.in[sidKey(mine.SID)]
		k.mu.Unlock()
		if !known {
			if sender, err = bundle(e.From, e.FromDevice); err != nil {
				return nil, fmt.Errorf("%w: sender's keys: %w", ErrCannotOpen, err)
			}
		}
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	o, err := k.openLocked(id, e, to, mine, sender)
	if err != nil && errors.Is(err, ErrCannotOpen) && k.refreshLocked() {
		// Another process of this device (SetChanged) may have opened the
		// session, made the prekey, or opened the message meanwhile.
		o, err = k.openLocked(id, e, to, mine, sender)
	}
	return o, err
}

func (k *Keyring) openLocked(id natter.MessageID, e *envelope, to natter.UserID, mine *wrap, sender *Bundle) (*Opened, error) {
	if o, ok := k.opened[id]; ok { // a redelivery
		if body, err := openBody(o.Key, id, e, to); err == nil {
			return &Opened{Body: body, FromDevice: e.FromDevice}, nil
		}
	}
	if mine == nil {
		return nil, ErrNotForMe
	}
	if mine.Kind == wrapSelf {
		if e.From != k.dev.user || e.FromDevice != k.dev.id {
			return nil, fmt.Errorf("%w: self wrap from another device", ErrCannotOpen)
		}
		g, nonce, err := aeadFor(selfSecret(k.dev.self, id), "self")
		if err != nil {
			return nil, err
		}
		key, err := g.Open(nil, nonce, mine.Key, []byte(id))
		if err != nil {
			return nil, fmt.Errorf("%w: own copy", ErrCannotOpen)
		}
		body, err := openBody(key, id, e, to)
		if err != nil {
			return nil, err
		}
		return &Opened{Body: body, FromDevice: e.FromDevice}, nil
	}
	return k.openWrap(id, e, to, mine, sender)
}

func (k *Keyring) openWrap(id natter.MessageID, e *envelope, to natter.UserID, w *wrap, sender *Bundle) (*Opened, error) {
	sid := sidKey(w.SID)
	s, known := k.in[sid]
	var usedPrekey uint32
	if !known {
		if w.Init == nil || sender == nil {
			return nil, fmt.Errorf("%w: unknown session", ErrCannotOpen)
		}
		me := devRef{k.dev.user, k.dev.id}
		if sender.User != e.From || sender.Device != e.FromDevice || !verifyInit(sender, me, w.SID, w.Init) {
			return nil, fmt.Errorf("%w: session signature", ErrCannotOpen)
		}
		priv := k.dev.kem
		if w.Init.Prekey != 0 {
			b, ok := k.prekeys[w.Init.Prekey]
			if !ok {
				return nil, fmt.Errorf("%w: prekey %d used or unknown", ErrCannotOpen, w.Init.Prekey)
			}
			p, err := kem.NewPrivateKey(b)
			if err != nil {
				return nil, err
			}
			priv, usedPrekey = p, w.Init.Prekey
		}
		r, err := hpke.NewRecipient(w.Init.Enc, priv, kdf, hpke.ExportOnly(), sessionInfo(devRef{e.From, e.FromDevice}, me, w.SID))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCannotOpen, err)
		}
		ck, err := r.Export(Suite+" chain", 32)
		if err != nil {
			return nil, err
		}
		ack, err := r.Export(Suite+" ack", 32)
		if err != nil {
			return nil, err
		}
		s = &inSession{From: e.From, FromDevice: e.FromDevice, Chain: chain{CK: ck}, Ack: ack, Created: time.Now()}
	} else if s.From != e.From || s.FromDevice != e.FromDevice {
		return nil, fmt.Errorf("%w: session belongs to another device", ErrCannotOpen)
	}

	// Work on a copy: nothing changes unless the message opens.
	c := s.Chain
	skipped := maps.Clone(s.Skipped)
	if skipped == nil {
		skipped = make(map[uint32][]byte)
	}
	var mk []byte
	switch {
	case w.Index < c.N:
		if mk = skipped[w.Index]; mk == nil {
			return nil, ErrReplay
		}
		delete(skipped, w.Index)
	case w.Index-c.N > maxSkip:
		return nil, fmt.Errorf("%w: %d messages skipped", ErrCannotOpen, w.Index-c.N)
	default:
		for c.N < w.Index {
			n := c.N
			skipped[n] = c.step()
		}
		mk = c.step()
	}
	g, nonce, err := aeadFor(mk, "wrap")
	if err != nil {
		return nil, err
	}
	key, err := g.Open(nil, nonce, w.Key, wrapAAD(id, e, to, w))
	if err != nil {
		return nil, fmt.Errorf("%w: wrapped key", ErrCannotOpen)
	}
	body, err := openBody(key, id, e, to)
	if err != nil {
		return nil, err
	}

	for len(skipped) > maxSkipped {
		delete(skipped, slices.Min(slices.Collect(maps.Keys(skipped))))
	}
	s.Chain, s.Skipped = c, skipped
	if !known {
		k.in[sid] = s
		if usedPrekey != 0 {
			delete(k.prekeys, usedPrekey)
			k.merge.usedPrekey(usedPrekey)
		}
		k.trimSessions(devRef{e.From, e.FromDevice})
	}
	if len(w.Seen) > 0 {
		if o := k.out[devRef{e.From, e.FromDevice}]; o != nil && bytes.Equal(o.sid, w.Seen) {
			o.confirmed = true
		}
	}
	k.opened[id] = openedKey{Key: key, At: time.Now()}
	k.merge.openedHere[id] = true
	k.openedOrder = append(k.openedOrder, id)
	for len(k.opened) > maxOpened && len(k.openedOrder) > 0 {
		delete(k.opened, k.openedOrder[0]) // the oldest (or already forgotten)
		k.openedOrder = k.openedOrder[1:]
	}
	if err := k.save(); err != nil {
		return nil, err
	}
	o := &Opened{Body: body, FromDevice: e.FromDevice}
	if w.Init != nil {
		o.Ack = k.ackFor(w.SID, s)
	}
	return o, nil
}

// trimSessions keeps the newest maxInSessions sessions from dev.
func (k *Keyring) trimSessions(dev devRef) {
	var ids []string
	for id, s := range k.in {
		if s.From == dev.User && s.FromDevice == dev.Device {
			ids = append(ids, id)
		}
	}
	if len(ids) <= maxInSessions {
		return
	}
	slices.SortFunc(ids, func(a, b string) int { // newest first; the same order in every process
		if c := k.in[b].Created.Compare(k.in[a].Created); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, id := range ids[maxInSessions:] {
		delete(k.in, id)
	}
}

func openBody(key []byte, id natter.MessageID, e *envelope, to natter.UserID) ([]byte, error) {
	g, nonce, err := aeadFor(key, "body")
	if err != nil {
		return nil, err
	}
	body, err := g.Open(nil, nonce, e.Body, bodyAAD(id, e.From, e.FromDevice, to))
	if err != nil {
		return nil, fmt.Errorf("%w: body", ErrCannotOpen)
	}
	return body, nil
}
