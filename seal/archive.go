package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/natterim/natter"
)

// The archive (server-side history, docs/history.md) is sealed under an
// archive key: 32 random bytes that only the user's devices hold. The
// device that turns the archive on makes it; a device holding it wraps it
// for each of the user's other certified devices with HPKE to that
// device's last-resort key, signed by the wrapping device, so that the
// server, which stores the wrapped keys, can neither read nor forge one.
// Records are sealed with AES-256-GCM under a key derived from it.

// ErrNoArchiveKey: the device holds no archive key (none was made, or none
// was wrapped for it yet).
var ErrNoArchiveKey = errors.New("seal: no archive key on this device")

// ErrBadArchiveKey: a wrapped archive key that does not open or is not
// signed by one of the user's certified devices.
var ErrBadArchiveKey = errors.New("seal: bad wrapped archive key")

const maxWrapped = 8 << 10

// wrappedArchiveKey is a wrapped archive key as stored (before the signature).
type wrappedArchiveKey struct {
	V    int             `json:"v"`
	User natter.UserID   `json:"user"`
	From natter.DeviceID `json:"from"`
	To   natter.DeviceID `json:"to"`
	CT   []byte          `json:"ct"` // HPKE to To's last-resort key
}

// HasArchiveKey reports whether the device holds the archive key.
func (k *Keyring) HasArchiveKey() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.archive != nil
}

// NewArchiveKey makes a fresh archive key, replacing any (turning the
// archive off and on again starts a new one).
func (k *Keyring) NewArchiveKey() error {
	key := make([]byte, 32)
	rand.Read(key)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.archive, k.archiveAt = key, time.Now()
	return k.save()
}

// DropArchiveKey forgets the archive key (the archive was turned off).
func (k *Keyring) DropArchiveKey() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.archive, k.archiveAt = nil, time.Now()
	return k.save()
}

// WrapArchiveKey wraps the archive key for b, one of the user's own
// devices whose bundle the caller verified and found certified.
func (k *Keyring) WrapArchiveKey(b *Bundle) ([]byte, error) {
	k.mu.Lock()
	key := k.archive
	k.mu.Unlock()
	if key == nil {
		return nil, ErrNoArchiveKey
	}
	if b.User != k.dev.user {
		return nil, fmt.Errorf("seal: wrap archive key: %s is not one of %s's devices", b.User, k.dev.user)
	}
	pk, err := kem.NewPublicKey(b.KEMKey)
	if err != nil {
		return nil, fmt.Errorf("seal: wrap archive key: %w", err)
	}
	ct, err := hpke.Seal(pk, kdf, hpke.AES256GCM(), archiveInfo(k.dev.user, k.dev.id, b.Device), key)
	if err != nil {
		return nil, fmt.Errorf("seal: wrap archive key: %w", err)
	}
	body, err := json.Marshal(wrappedArchiveKey{V: 1, User: k.dev.user, From: k.dev.id, To: b.Device, CT: ct})
	if err != nil {
		return nil, err
	}
	return signed(k.dev.sign, tuple(Suite+" archive key", body), body), nil
}

// UnwrapArchiveKey opens an archive key wrapped for this device and keeps
// it. signer returns the bundle of the wrapping device if it is one of the
// user's certified devices (else an error): a key wrapped by anyone else,
// the server included, is refused.
func (k *Keyring) UnwrapArchiveKey(wrapped []byte, signer func(natter.DeviceID) (*Bundle, error)) error {
	body, sig, err := splitSigned(wrapped, maxWrapped)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadArchiveKey, err)
	}
	var w wrappedArchiveKey
	if err := strictJSON(body, &w); err != nil {
		return fmt.Errorf("%w: %w", ErrBadArchiveKey, err)
	}
	if w.V != 1 || w.User != k.dev.user || w.To != k.dev.id {
		return fmt.Errorf("%w: not wrapped for this device", ErrBadArchiveKey)
	}
	b, err := signer(w.From)
	if err != nil {
		return fmt.Errorf("%w: wrapped by %s: %w", ErrBadArchiveKey, w.From, err)
	}
	if b.User != k.dev.user || b.Device != w.From || !ed25519.Verify(b.SignKey, tuple(Suite+" archive key", body), sig) {
		return fmt.Errorf("%w: signature", ErrBadArchiveKey)
	}
	key, err := hpke.Open(k.dev.kem, kdf, hpke.AES256GCM(), archiveInfo(w.User, w.From, w.To), w.CT)
	if err != nil || len(key) != 32 {
		return fmt.Errorf("%w: does not open", ErrBadArchiveKey)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.archive, k.archiveAt = key, time.Now()
	return k.save()
}

func archiveInfo(user natter.UserID, from, to natter.DeviceID) []byte {
	return tuple(Suite+" archive key wrap", []byte(user), []byte(from), []byte(to))
}

// archiveSecret derives a key for purpose from the archive key.
func (k *Keyring) archiveSecret(purpose string) ([]byte, error) {
	k.mu.Lock()
	key := k.archive
	k.mu.Unlock()
	if key == nil {
		return nil, ErrNoArchiveKey
	}
	return hkdf.Key(sha256.New, key, nil, Suite+" archive "+purpose, 32)
}

// RecordKey names the archive record of message id from sender: a keyed
// hash, the same on every device holding the archive key (so the server
// keeps one copy of a message however many devices put it) and
// meaningless to the server.
func (k *Keyring) RecordKey(from natter.UserID, id natter.MessageID) (string, error) {
	s, err := k.archiveSecret("record name")
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, s)
	m.Write(tuple("record", []byte(from), []byte(id)))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// SealRecord seals an archive record (its random nonce first).
func (k *Keyring) SealRecord(plain []byte) ([]byte, error) {
	a, err := k.recordAEAD()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	rand.Read(nonce)
	return a.Seal(nonce, nonce, plain, []byte(Suite+" archive record")), nil
}

// OpenRecord opens what SealRecord sealed.
func (k *Keyring) OpenRecord(sealed []byte) ([]byte, error) {
	a, err := k.recordAEAD()
	if err != nil {
		return nil, err
	}
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return nil, ErrCannotOpen
	}
	p, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], []byte(Suite+" archive record"))
	if err != nil {
		return nil, ErrCannotOpen
	}
	return p, nil
}

func (k *Keyring) recordAEAD() (cipher.AEAD, error) {
	s, err := k.archiveSecret("record")
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(s)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
