package client_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// newPeerKeys makes a real device of user for a test to play: its keyring
// and the directory entry the fake server hands out for the user.
func newPeerKeys(t *testing.T, user natter.UserID, dev natter.DeviceID) (*seal.Keyring, *wire.Keys) {
	t.Helper()
	kr, err := seal.New(user, dev)
	if err == nil {
		err = kr.CreateIdentity()
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := kr.Bundle()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := kr.Certify(dev, kr.SignKey())
	if err != nil {
		t.Fatal(err)
	}
	return kr, &wire.Keys{User: user, Identity: kr.IdentityKey(), Devices: []wire.DeviceKeys{{Device: dev, Bundle: b, Cert: cert}}}
}

// keysOf returns what the fake server's directory holds for user.
func (fc *fakeConn) keysOf(user natter.UserID) *wire.Keys {
	fc.keys.Lock()
	defer fc.keys.Unlock()
	return fc.keys.users[user]
}

// TestSessionAckStopsInit plays carol's device against alice's SDK through
// the fake server: alice's messages carry their session's init until
// carol's device acknowledges it (a lost ack: the init keeps going), then
// no longer; and alice's SDK acknowledges a session carol's device opens to
// it with a Signal of kind ack that carol's keyring accepts, and that shows
// as no event.
func TestSessionAckStopsInit(t *testing.T) {
	fs := newFakeServer(t)
	ctx := t.Context()
	alice, fc, ev := dialLogin(t, fs, fs.opts("a1"), "alice", 0)
	carol, carolKeys := newPeerKeys(t, "carol", "c1")
	fc.keys.Lock()
	fc.keys.users["carol"] = carolKeys
	fc.keys.Unlock()
	lookup := func(natter.UserID, natter.DeviceID) (*seal.Bundle, error) {
		d, err := carol.Directory(fc.keysOf("alice"))
		if err != nil {
			return nil, err
		}
		return d.Device("a1").Bundle, nil
	}

	// send sends a 64-byte text to carol, plays the server, and opens it
	// as carol's device: it returns the envelope's size and carol's ack
	// (nil if it carried no init).
	conv := uint64(0)
	send := func() (int, *seal.SessionAck) {
		t.Helper()
		errc := make(chan error, 1)
		go func() {
			_, err := alice.Send(ctx, "carol", make([]byte, 64))
			errc <- err
		}()
		s := expect[wire.Send](fc)
		conv++
		fc.write(wire.SendAck{Ref: s.Ref, ID: s.ID, ConvSeq: conv, SentAt: time.Now(), Online: true})
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		o, err := carol.Open(s.ID, "alice", "carol", s.Body, lookup)
		if err != nil {
			t.Fatal(err)
		}
		return len(s.Body), o.Ack
	}

	before, ack := send()
	if ack == nil {
		t.Fatal("the first message of a session carries no init")
	}
	// The ack is lost: the next message carries the init again.
	again, ack2 := send()
	if ack2 == nil {
		t.Fatal("the init stopped without an ack")
	}
	// The ack arrives (then a typing notification: once its event is
	// out, the ack before it was handled).
	fc.write(wire.SignalIn{From: "carol", FromDevice: "c1", Session: hex.EncodeToString(ack.SID), Kind: "ack", Data: ack.MAC},
		wire.TypingIn{From: "carol"})
	if te, ok := ev.next().(client.TypingEvent); !ok || te.From != "carol" {
		t.Fatalf("after the ack: event %T %+v, want carol's TypingEvent", te, te)
	}
	after, ack3 := send()
	if ack3 != nil {
		t.Fatal("the init still goes after the ack")
	}
	t.Logf("sealed 64-byte text to one device: %d and %d bytes with the init, %d after the ack", before, again, after)
	if after >= before-1000 {
		t.Fatalf("the envelope went from %d to %d bytes: the init is still in it", before, after)
	}

	// The other way: carol's device opens a session to alice's.
	ad, err := carol.Directory(fc.keysOf("alice"))
	if err != nil {
		t.Fatal(err)
	}
	id := natter.NewMessageID(time.Now())
	body, err := carol.Seal(id, "alice", []byte("hello alice"), ad.Devices)
	if err != nil {
		t.Fatal(err)
	}
	fc.write(wire.Msg{Seq: 1, Message: wire.Message{ID: id, From: "carol", FromDevice: "c1", To: "alice", Body: body, ConvSeq: conv + 1, SentAt: time.Now()}})
	if me := ev.msg(id, false); string(me.Message.Body) != "hello alice" || me.OpenErr != nil {
		t.Fatalf("alice got %q, %v", me.Message.Body, me.OpenErr)
	}
	var sig *wire.Signal
	for sig == nil {
		switch v := fc.read().(type) {
		case *wire.Signal:
			sig = v
		case *wire.Receipt:
		default:
			t.Fatalf("got %T %+v, want the session ack", v, v)
		}
	}
	fc.write(wire.OK{Ref: sig.Ref}, wire.TypingIn{From: "carol"})
	if sig.Kind != "ack" || sig.To != "carol" || sig.Device != "c1" {
		t.Fatalf("ack signal %+v", sig)
	}
	sid, err := hex.DecodeString(sig.Session)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := carol.Acknowledged("alice", "a1", sid, sig.Data); !ok || err != nil {
		t.Fatalf("carol's keyring takes alice's ack: %v, %v", ok, err)
	}
	// Nothing but the message reached the app: the next event is the
	// typing notification that followed the ack.
	if te, ok := ev.next().(client.TypingEvent); !ok || te.From != "carol" {
		t.Fatalf("after the message: event %T %+v, want carol's TypingEvent", te, te)
	}
}
