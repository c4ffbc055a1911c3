package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/natterim/natter"
)

// The HPKE suite of every session: hybrid post-quantum KEM, HKDF-SHA-256;
// sessions use only the exporter (messages are sealed with keys derived
// from it).
var (
	kem = hpke.MLKEM768X25519()
	kdf = hpke.HKDFSHA256()
)

// Limits on what the decoders accept.
const (
	maxBundle = 8 << 10
	maxPrekey = 4 << 10
)

// ErrBadBundle reports a bundle, prekey or certificate that does not parse
// or whose signature does not verify.
var ErrBadBundle = errors.New("seal: bad key bundle")

// Bundle is a device's public keys, signed by the device's own signing key
// (and vouched for by a certificate from the user's identity).
type Bundle struct {
	V       int             `json:"v"`
	User    natter.UserID   `json:"user"`
	Device  natter.DeviceID `json:"device"`
	SignKey []byte          `json:"sign"` // Ed25519 public key
	KEMKey  []byte          `json:"kem"`  // last-resort HPKE public key
	// DTLS is the fingerprint of the device's DTLS certificate for
	// peer-to-peer channels ("sha-256 AB:CD:..."), empty if it has none.
	DTLS    string    `json:"dtls,omitempty"`
	Created time.Time `json:"created"`
}

// ParseBundle decodes a published bundle and checks its signature and that
// it is user's device. It does not check the identity certificate (see
// VerifyCert).
func ParseBundle(blob []byte, user natter.UserID, device natter.DeviceID) (*Bundle, error) {
	body, sig, err := splitSigned(blob, maxBundle)
	if err != nil {
		return nil, err
	}
	var b Bundle
	if err := strictJSON(body, &b); err != nil {
		return nil, err
	}
	switch {
	case b.V != 1:
		return nil, fmt.Errorf("%w: version %d", ErrBadBundle, b.V)
	case b.User != user || b.Device != device:
		return nil, fmt.Errorf("%w: it is %s/%s's, not %s/%s's", ErrBadBundle, b.User, b.Device, user, device)
	case len(b.SignKey) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("%w: signing key size", ErrBadBundle)
	case !ed25519.Verify(b.SignKey, tuple(Suite+" bundle", body), sig):
		return nil, fmt.Errorf("%w: signature", ErrBadBundle)
	}
	if _, err := kem.NewPublicKey(b.KEMKey); err != nil {
		return nil, fmt.Errorf("%w: encryption key: %v", ErrBadBundle, err)
	}
	return &b, nil
}

// Prekey is a one-time prekey as published: an HPKE public key and the ID
// under which its owner keeps the private half.
type Prekey struct {
	ID  uint32 `json:"id"`
	Key []byte `json:"key"`
}

// ParsePrekey decodes a published one-time prekey of the device whose
// bundle is b and checks its signature.
func ParsePrekey(blob []byte, b *Bundle) (*Prekey, error) {
	body, sig, err := splitSigned(blob, maxPrekey)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(b.SignKey, tuple(Suite+" prekey", []byte(b.User), []byte(b.Device), body), sig) {
		return nil, fmt.Errorf("%w: prekey signature", ErrBadBundle)
	}
	var p Prekey
	if err := strictJSON(body, &p); err != nil {
		return nil, err
	}
	if p.ID == 0 {
		return nil, fmt.Errorf("%w: prekey id 0", ErrBadBundle)
	}
	if _, err := kem.NewPublicKey(p.Key); err != nil {
		return nil, fmt.Errorf("%w: prekey: %v", ErrBadBundle, err)
	}
	return &p, nil
}

// signed returns body followed by its signature under priv with label.
func signed(priv ed25519.PrivateKey, label []byte, body []byte) []byte {
	return append(append([]byte(nil), body...), ed25519.Sign(priv, label)...)
}

// splitSigned splits a signed blob into body and signature.
func splitSigned(blob []byte, limit int) (body, sig []byte, err error) {
	if len(blob) > limit {
		return nil, nil, fmt.Errorf("%w: %d bytes, over %d", ErrBadBundle, len(blob), limit)
	}
	if len(blob) <= ed25519.SignatureSize {
		return nil, nil, fmt.Errorf("%w: truncated", ErrBadBundle)
	}
	n := len(blob) - ed25519.SignatureSize
	return blob[:n], blob[n:], nil
}

func strictJSON(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadBundle, err)
	}
	if d.More() {
		return fmt.Errorf("%w: trailing data", ErrBadBundle)
	}
	return nil
}
