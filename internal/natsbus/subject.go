package natsbus

import "strings"

// escape turns a name (a user, a device) into one NATS subject token that
// is also a valid key-value key token: A-Z, a-z, 0-9, '-' and '_' stand
// for themselves, every other byte (the '.' user names may hold, and
// anything else) becomes '=' and two hex digits. Distinct names give
// distinct tokens, and a token never contains '.', so "alice.x" and
// "alice" with something after it cannot collide. The empty name is "=".
func escape(name string) string {
	if name == "" {
		return "="
	}
	plain := true
	for i := 0; i < len(name); i++ {
		if !plainByte(name[i]) {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	const hexDigits = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(name) + 8)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if plainByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
