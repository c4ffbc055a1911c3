package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
)

// chain is a symmetric ratchet: each step yields a one-use message key and
// replaces the chain key by a one-way function of it.
type chain struct {
	CK []byte `json:"ck"`
	N  uint32 `json:"n"` // index of the next message key
}

// step returns the message key for index c.N and advances the chain.
func (c *chain) step() []byte {
	mk := hmacSHA256(c.CK, 0x01)
	c.CK = hmacSHA256(c.CK, 0x02)
	c.N++
	return mk
}

func hmacSHA256(key []byte, b byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte{b})
	return m.Sum(nil)
}

// aeadFor returns AES-256-GCM under a key and nonce derived from secret for
// purpose: every secret passed here is used for one seal only.
func aeadFor(secret []byte, purpose string) (cipher.AEAD, []byte, error) {
	kn, err := hkdf.Key(sha256.New, secret, nil, Suite+" "+purpose, 32+12)
	if err != nil {
		return nil, nil, err
	}
	b, err := aes.NewCipher(kn[:32])
	if err != nil {
		return nil, nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, nil, err
	}
	return g, kn[32:], nil
}
