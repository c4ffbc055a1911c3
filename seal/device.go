package seal

import (
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/natterim/natter"
)

// device is one device's private keys.
type device struct {
	user natter.UserID
	id   natter.DeviceID
	sign ed25519.PrivateKey
	kem  hpke.PrivateKey // last resort, when a sender finds no prekey
	self []byte          // wraps this device's own copy of what it sends
	dtls string
}

func newDevice(user natter.UserID, id natter.DeviceID) (*device, error) {
	_, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal: device key: %w", err)
	}
	k, err := kem.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("seal: device key: %w", err)
	}
	self := make([]byte, 32)
	rand.Read(self)
	return &device{user: user, id: id, sign: sign, kem: k, self: self}, nil
}

func (d *device) signKey() []byte {
	return append([]byte(nil), d.sign.Public().(ed25519.PublicKey)...)
}

// signedBundle returns the device's bundle, signed, naming the DTLS
// fingerprint fp.
func (d *device) signedBundle(created time.Time) ([]byte, error) {
	body, err := json.Marshal(Bundle{
		V: 1, User: d.user, Device: d.id, SignKey: d.signKey(),
		KEMKey: d.kem.PublicKey().Bytes(), DTLS: d.dtls, Created: created.UTC(),
	})
	if err != nil {
		return nil, err
	}
	return signed(d.sign, tuple(Suite+" bundle", body), body), nil
}

// newPrekey makes a one-time prekey with id: its private half and its
// signed public blob.
func (d *device) newPrekey(id uint32) (priv []byte, blob []byte, err error) {
	k, err := kem.GenerateKey()
	if err != nil {
		return nil, nil, fmt.Errorf("seal: prekey: %w", err)
	}
	priv, err = k.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("seal: prekey: %w", err)
	}
	body, err := json.Marshal(Prekey{ID: id, Key: k.PublicKey().Bytes()})
	if err != nil {
		return nil, nil, err
	}
	return priv, signed(d.sign, tuple(Suite+" prekey", []byte(d.user), []byte(d.id), body), body), nil
}
