package cluster

import (
	"errors"
	"testing"

	"github.com/natterim/natter/wire"
)

// TestClusterLoginThrottle: a wrong password on one node puts the account
// in back-off on the others too, so guesses spread over the nodes meet one
// back-off.
func TestClusterLoginThrottle(t *testing.T) {
	c := newCluster(t, 2)
	c.signup("alice", []string{c.nodes[0].addr})
	code := func(err error) wire.Code {
		var we *wire.Err
		if errors.As(err, &we) {
			return we.Code
		}
		return ""
	}
	guess1 := c.dial("alice", "guesser-1", []string{c.nodes[0].addr})
	if _, err := guess1.Login(t.Context(), "alice", "wrong guess one"); code(err) != wire.CodeBadCredentials {
		t.Fatalf("wrong password on n1: %v, want %s", err, wire.CodeBadCredentials)
	}
	guess2 := c.dial("alice", "guesser-2", []string{c.nodes[1].addr})
	if _, err := guess2.Login(t.Context(), "alice", "wrong guess two"); code(err) != wire.CodeRateLimited {
		t.Fatalf("next guess, on n2: %v, want %s (the back-off n1 set)", err, wire.CodeRateLimited)
	}
}
