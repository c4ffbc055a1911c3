package seal

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Files are sealed in chunks under a file key (docs/files.md). The key is
// derived from the file's content and a secret of the sending device
// (convergent within one device, never across devices or users): sending
// the same file again yields the same sealed chunks, which natterd stores
// once and which a resumed upload finds already there, while nobody else
// can tell that two devices hold the same file.

// ErrBadChunk reports a sealed chunk that does not open.
var ErrBadChunk = errors.New("seal: file chunk does not open")

// FileKey returns the key of a file whose SHA-256 is contentHash, as this
// device seals it.
func (k *Keyring) FileKey(contentHash []byte) ([]byte, error) {
	k.mu.Lock()
	secret, err := hkdf.Key(sha256.New, k.dev.self, nil, Suite+" file keys", 32)
	k.mu.Unlock()
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, secret)
	m.Write(contentHash)
	return m.Sum(nil), nil
}

// SealChunk seals chunk index of a file of total chunks under key.
func SealChunk(key []byte, index, total int, plain []byte) ([]byte, error) {
	g, nonce, err := aeadFor(key, "file chunk")
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint64(nonce[4:], uint64(index)) // unique per chunk under this key
	return g.Seal(nil, nonce, plain, chunkAAD(index, total)), nil
}

// OpenChunk opens what SealChunk sealed.
func OpenChunk(key []byte, index, total int, sealed []byte) ([]byte, error) {
	g, nonce, err := aeadFor(key, "file chunk")
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint64(nonce[4:], uint64(index))
	p, err := g.Open(nil, nonce, sealed, chunkAAD(index, total))
	if err != nil {
		return nil, fmt.Errorf("%w: chunk %d of %d", ErrBadChunk, index, total)
	}
	return p, nil
}

func chunkAAD(index, total int) []byte {
	return tuple(Suite+" file chunk", []byte(fmt.Sprint(index)), []byte(fmt.Sprint(total)))
}
