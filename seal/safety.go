package seal

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/natterim/natter"
)

// SafetyNumber is what two users compare to verify each other's identity
// keys: 30 digits in six groups, the same on both sides (the pairs are
// ordered by user ID) and different for any other pair of keys.
func SafetyNumber(a natter.UserID, aKey []byte, b natter.UserID, bKey []byte) string {
	if b < a {
		a, aKey, b, bKey = b, bKey, a, aKey
	}
	h := sha256.Sum256(tuple(Suite+" safety number", []byte(a), aKey, []byte(b), bKey))
	groups := make([]string, 6)
	for i := range groups {
		var v [8]byte
		copy(v[3:], h[i*5:i*5+5])
		groups[i] = fmt.Sprintf("%05d", binary.BigEndian.Uint64(v[:])%100000)
	}
	return strings.Join(groups, " ")
}
