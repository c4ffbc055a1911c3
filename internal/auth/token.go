package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// NewToken returns a new session token (256 random bits, URL-safe base64)
// and the hash under which the store keeps it. The store never holds the
// token itself, so a copy of the database cannot be used to log in.
func NewToken() (token string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken returns the SHA-256 of a token, the key it is stored under.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
