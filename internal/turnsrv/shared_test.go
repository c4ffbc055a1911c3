package turnsrv

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

// TestSharedSecret: nodes that share a secret accept each other's
// credentials (a client's relay may be another node than the one that gave
// them); a node with another secret does not; and the key that signs
// changes from one day to the next.
func TestSharedSecret(t *testing.T) {
	secret := []byte("the cluster's turn secret")
	a := startServer(t, Config{Secret: secret, TTL: time.Hour})
	b := startServer(t, Config{Secret: secret, TTL: time.Hour})
	other := startServer(t, Config{Secret: []byte("another secret"), TTL: time.Hour})
	u, p, _ := a.Credentials("alice", time.Now())
	want := turn.GenerateAuthKey(u, "natter", p)
	for _, tc := range []struct {
		name   string
		s      *Server
		accept bool
	}{{"same node", a.Server, true}, {"another node, same secret", b.Server, true}, {"another secret", other.Server, false}} {
		_, key, ok := tc.s.authenticate(&turn.RequestAttributes{Username: u, Realm: "natter", SrcAddr: &net.UDPAddr{}})
		if !ok {
			t.Fatalf("%s: refused", tc.name)
		}
		if got := bytes.Equal(key, want); got != tc.accept {
			t.Errorf("%s: key matches %v, want %v", tc.name, got, tc.accept)
		}
	}
	day := time.Unix(20000*86400, 0)
	if bytes.Equal(a.secretFor(day), a.secretFor(day.Add(24*time.Hour))) {
		t.Error("two days' credentials are signed with the same key")
	}
	if bytes.Equal(a.secretFor(day), secret) {
		t.Error("credentials are signed with the secret itself")
	}
}
