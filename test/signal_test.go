package test

import (
	"testing"
	"time"

	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

func TestSignalRouting(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	b2 := login(t, in, "bob", "")
	b2.drainLogin()
	c := signup(t, in, "carol")
	befriend(t, a, b)

	// To one device of an approved contact, and only that device.
	a.call(wire.Signal{To: "bob", Device: b2.device, Session: "s1", Kind: "offer", Data: []byte(`{"sdp":"x"}`)}, wire.TOK)
	got := b2.expect(wire.TSignalIn).(*wire.SignalIn)
	if got.From != "alice" || got.FromDevice != a.device || got.Session != "s1" || got.Kind != "offer" || string(got.Data) != `{"sdp":"x"}` {
		t.Fatalf("bob's second device got %+v", got)
	}
	for {
		v, err := b.read(300 * time.Millisecond)
		if err != nil {
			break
		}
		if s, ok := v.(*wire.SignalIn); ok {
			t.Fatalf("bob's other device got a signal meant for %s: %+v", b2.device, s)
		}
	}

	for _, tc := range []struct {
		name string
		from *raw
		sig  wire.Signal
		code wire.Code
	}{
		{"non-contact", c, wire.Signal{To: "bob", Device: b.device, Session: "s", Kind: "offer"}, wire.CodeNotContact},
		{"offline device", a, wire.Signal{To: "bob", Device: "gone", Session: "s", Kind: "offer"}, wire.CodeOffline},
		{"bad kind", a, wire.Signal{To: "bob", Device: b.device, Session: "s", Kind: "telegram"}, wire.CodeBadRequest},
		{"no session", a, wire.Signal{To: "bob", Device: b.device, Kind: "offer"}, wire.CodeBadRequest},
		{"oversized data", a, wire.Signal{To: "bob", Device: b.device, Session: "s", Kind: "offer", Data: make([]byte, 65<<10)}, wire.CodeBadRequest},
	} {
		if _, err := tc.from.try(tc.sig, wire.TOK); errCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}
