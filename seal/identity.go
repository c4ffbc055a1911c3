package seal

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/natterim/natter"
)

// Suite names this version of the scheme; it is part of every signed or
// derived value, so that nothing of one version can be replayed as another.
const Suite = "natter-seal-v1"

// Identity is a user's identity key pair. It lives on the device that made
// it; it signs the user's device certificates.
type Identity struct {
	priv ed25519.PrivateKey
}

// NewIdentity generates an identity key pair.
func NewIdentity() (*Identity, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal: identity: %w", err)
	}
	return &Identity{priv: priv}, nil
}

// IdentityFromSeed makes the identity whose Ed25519 seed is seed (32
// bytes). Anyone with the seed holds the identity: it is for provisioning
// and for load generators, whose users are throwaway.
func IdentityFromSeed(seed []byte) (*Identity, error) { return identityFromSeed(seed) }

// identityFromSeed rebuilds an identity from its stored seed.
func identityFromSeed(seed []byte) (*Identity, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("seal: identity seed has the wrong size")
	}
	return &Identity{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// Public returns the identity public key, as published and as compared
// for safety numbers.
func (id *Identity) Public() []byte {
	return append([]byte(nil), id.priv.Public().(ed25519.PublicKey)...)
}

// Certify signs a device certificate: user's device with this signing key
// belongs to the user.
func (id *Identity) Certify(user natter.UserID, device natter.DeviceID, signKey []byte) []byte {
	return ed25519.Sign(id.priv, certMessage(user, device, signKey))
}

// VerifyCert reports whether cert is identity's signature over user's
// device with signKey.
func VerifyCert(identity []byte, user natter.UserID, device natter.DeviceID, signKey, cert []byte) bool {
	if len(identity) != ed25519.PublicKeySize || len(cert) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(identity, certMessage(user, device, signKey), cert)
}

func certMessage(user natter.UserID, device natter.DeviceID, signKey []byte) []byte {
	return tuple(Suite+" device certificate", []byte(user), []byte(device), signKey)
}

// tuple encodes a label and fields unambiguously (each field prefixed with
// its length), for signing and key derivation.
func tuple(label string, fields ...[]byte) []byte {
	b := appendField(nil, []byte(label))
	for _, f := range fields {
		b = appendField(b, f)
	}
	return b
}

func appendField(b, f []byte) []byte {
	n := len(f)
	b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(b, f...)
}
