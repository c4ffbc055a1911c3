package test

import (
	"strings"
	"testing"

	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// logged returns the lines of natterd's log with message msg.
func logged(in *servertest.Instance, msg string) []string {
	var out []string
	for _, l := range in.Log().Lines() {
		if strings.Contains(l, " msg=\""+msg+"\"") || strings.Contains(l, " msg="+msg+" ") {
			out = append(out, l)
		}
	}
	return out
}

// TestIdentityKeyLogSaysWhatHappened: natterd logs a user's first identity
// key as published and a reset as a reset; it never calls either a change.
func TestIdentityKeyLogSaysWhatHappened(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	steps := []struct {
		name    string
		publish wire.PublishKeys
		want    string // the message logged for this step; "" for none
	}{
		{"first identity", wire.PublishKeys{Identity: blob("id-1")}, "identity key published"},
		{"the same again", wire.PublishKeys{Identity: blob("id-1")}, ""},
		{"reset to a new one", wire.PublishKeys{Identity: blob("id-2"), Reset: true}, "identity key reset: the old key and its device certificates are gone"},
	}
	msgs := []string{"identity key published", "identity key reset: the old key and its device certificates are gone", "identity key changed"}
	before := map[string]int{}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			a.call(st.publish, wire.TOK)
			a.barrier() // the log line follows the OK
			for _, m := range msgs {
				lines := logged(in, m)
				grew := len(lines) - before[m]
				before[m] = len(lines)
				switch {
				case m == st.want && grew != 1:
					t.Errorf("%q logged %d times, want once; log:\n%s", m, grew, strings.Join(in.Log().Lines(), "\n"))
				case m == st.want && !strings.Contains(lines[len(lines)-1], "user=alice"):
					t.Errorf("%q does not name the user: %s", m, lines[len(lines)-1])
				case m != st.want && grew != 0:
					t.Errorf("%q logged: %s", m, strings.Join(lines, "\n"))
				}
			}
		})
	}
}
