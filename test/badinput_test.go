package test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/server"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// TestBadFrames sends each kind of bad input and checks the answer: a clear
// Error (connection kept) or a Bye and a clean close. After every case the
// server must still serve a well-behaved user.
func TestBadFrames(t *testing.T) {
	in := servertest.Start(t, func(c *server.Config) {
		c.HandshakeTimeout = 500 * time.Millisecond
		c.MaxFrame = 64 << 10
	})
	lengthOnly := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	frame := func(typ wire.Type, payload string) []byte { return wire.AppendFrame(nil, typ, []byte(payload)) }
	helloFrame, _ := wire.Encode(wire.Hello{V: wire.Version})

	cases := []struct {
		name      string
		hello     bool   // say Hello first
		login     bool   // and log in
		send      []byte // then send these bytes
		closeSend bool   // then close our side
		wantErr   wire.Code
		wantBye   wire.Code
		byeSays   string // the Bye's message contains it
		wantClose bool
	}{
		{name: "oversized length", send: lengthOnly(0xFFFFFFFF), wantBye: wire.CodeTooLarge},
		{name: "over the limit", hello: true, send: lengthOnly(64<<10 + 1), wantBye: wire.CodeTooLarge},
		{name: "zero length", send: lengthOnly(0), wantBye: wire.CodeBadFrame},
		{name: "first frame not hello", send: frame(wire.TPing, "{}"), wantBye: wire.CodeProtocol},
		{name: "garbage hello", send: frame(wire.THello, "{not json"), wantBye: wire.CodeBadFrame},
		{name: "unsupported version", send: frame(wire.THello, `{"v":99}`), wantBye: wire.CodeUnsupportedVersion},
		{name: "unknown type", hello: true, send: frame(0x55, "{}"), wantErr: wire.CodeUnknownType},
		{name: "server type from client", hello: true, send: frame(wire.TWelcome, "{}"), wantErr: wire.CodeProtocol},
		{name: "malformed payload", hello: true, send: frame(wire.TLogin, `{"user":`), wantErr: wire.CodeBadFrame},
		{name: "wrong field types", hello: true, send: frame(wire.TLogin, `{"user":5}`), wantErr: wire.CodeBadFrame},
		{name: "send before login", hello: true, send: frame(wire.TSend, `{"ref":1,"id":"x","to":"bob"}`), wantErr: wire.CodeProtocol},
		{name: "truncated frame", hello: true, send: append(lengthOnly(100), "abc"...), closeSend: true, wantClose: true},
		{name: "truncated header", hello: true, send: []byte{0, 0}, closeSend: true, wantClose: true},
		{name: "silent client", wantBye: wire.CodeTimeout, byeSays: "no hello within the handshake timeout (500ms)"},
		{name: "bad message id", login: true, send: frame(wire.TSend, `{"ref":7,"id":"no spaces allowed","to":"ok-user"}`), wantErr: wire.CodeBadRequest},
	}
	signup(t, in, "ok-user")
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r *raw
			switch {
			case tc.login:
				r = signup(t, in, "user-"+string(rune('a'+i)))
			case tc.hello:
				r = dialRaw(t, in)
				r.writeBytes(helloFrame)
				r.expect(wire.TWelcome)
			default:
				r = dialRaw(t, in)
			}
			if tc.send != nil {
				r.writeBytes(tc.send)
			}
			if tc.closeSend {
				r.c.(interface{ CloseWrite() error }).CloseWrite()
			}
			switch {
			case tc.wantErr != "":
				v := r.next()
				e, ok := v.(*wire.Error)
				if !ok || e.Code != tc.wantErr || e.Message == "" {
					t.Fatalf("got %T %+v, want Error %s", v, v, tc.wantErr)
				}
				// The connection is still usable.
				r.call(wire.Ping{}, wire.TPong)
			case tc.wantBye != "":
				bye := r.closed(5 * time.Second)
				if bye == nil || bye.Code != tc.wantBye || bye.Message == "" || !strings.Contains(bye.Message, tc.byeSays) {
					t.Fatalf("bye %+v, want %s saying %q", bye, tc.wantBye, tc.byeSays)
				}
			case tc.wantClose:
				r.closed(5 * time.Second)
			}
			// Everyone else is still served.
			login(t, in, "ok-user", "").drainLogin()
		})
	}
}

func TestTooManyProtocolErrorsDisconnect(t *testing.T) {
	in := servertest.Start(t)
	r := hello(t, in)
	var junk []byte
	for range 40 {
		junk = wire.AppendFrame(junk, 0x66, nil)
	}
	r.writeBytes(junk)
	if bye := r.closed(5 * time.Second); bye == nil || bye.Code != wire.CodeUnknownType {
		t.Fatalf("bye %+v", bye)
	}
}

func TestOversizedBody(t *testing.T) {
	in := servertest.Start(t, func(c *server.Config) { c.MaxFrame = 2 << 20 })
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	befriend(t, a, b)
	_, err := a.try(wire.Send{ID: "big", To: "bob", Body: make([]byte, wire.MaxBody+1)}, wire.TSendAck)
	if errCode(err) != wire.CodeTooLarge {
		t.Fatalf("oversized body: %v", err)
	}
	sendMsg(t, a, "bob", "still fine")
}

// TestSlowConsumer: a client that never reads is disconnected once its
// queue is full: its socket is closed, its contacts see it go offline, and
// the sender and everyone else go on unhindered. Nothing is lost: at its
// next login the device's replay holds exactly the messages sent to it, in
// order, each once.
func TestSlowConsumer(t *testing.T) {
	in := servertest.Start(t, func(c *server.Config) { c.MaxQueueBytes = 256 << 10 })
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	c := signup(t, in, "carol")
	befriend(t, a, b)
	befriend(t, a, c)
	// bob stops reading. alice sends far more than socket buffers hold.
	body := strings.Repeat("x", 32<<10)
	var sent []natter.MessageID
	deadline := time.Now().Add(60 * time.Second)
	slow := false
	for i := 0; i < 2000 && time.Now().Before(deadline); i++ {
		id := natter.NewMessageID(time.Now())
		a.call(wire.Send{ID: id, To: "bob", Body: []byte(fmt.Sprint(i, body))}, wire.TSendAck)
		sent = append(sent, id)
		if i%50 == 49 {
			// Meanwhile carol is served promptly.
			start := time.Now()
			sendMsg(t, a, "carol", "ping")
			for {
				if m, ok := c.expect(wire.TMsg).(*wire.Msg); ok && string(m.Body) == "ping" {
					break
				}
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("carol waited %v while bob was stuck", d)
			}
			// Has the server given up on bob? The metric says when to stop
			// sending; what follows checks that it really dropped him.
			if metric(t, in, "natter_slow_consumers_total") >= 1 {
				slow = true
				break
			}
		}
	}
	if !slow {
		t.Fatal("bob was never found to be a slow consumer")
	}

	// bob's socket is closed: reading what the socket buffers hold ends in
	// EOF, not in a connection waiting for more.
	b.closed(20 * time.Second)
	// alice sees bob go offline.
	for {
		if p := a.expect(wire.TPresence).(*wire.Presence); p.User == "bob" && p.Status == natter.StatusOffline {
			break
		}
	}

	// bob comes back and gets exactly what was sent to him from the store.
	b2 := login(t, in, "bob", b.device)
	_, inbox := b2.drainLogin()
	var got []natter.MessageID
	for _, f := range inbox {
		for _, g := range f.Groups {
			if len(g.Messages) > 0 && g.From != "alice" {
				t.Errorf("replay has a group from %s", g.From)
			}
			for _, m := range g.Messages {
				got = append(got, m.ID)
			}
		}
	}
	if !slices.Equal(got, sent) {
		t.Fatalf("bob's replay holds %d messages, want the %d alice sent, in order, each once", len(got), len(sent))
	}
}

// TestDiskFull fills the data folder's file system for real (a small
// tmpfs) and checks that sends fail with a clear, retryable error, that
// nothing crashes, and that sending works again once there is room.
func TestDiskFull(t *testing.T) {
	dir := smallDisk(t, "3m")
	in := servertest.Start(t, func(c *server.Config) { c.DataDir = filepath.Join(dir, "data") })
	// The refused writes are logged as errors, as an operator must see them.
	in.Log().Expect("disk is full", "no space left on device")
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	befriend(t, a, b)
	sendMsg(t, a, "bob", "before")

	// Fill the file system.
	filler := fillDisk(t, dir)
	var code wire.Code
	for i := 0; i < 500 && code == ""; i++ {
		_, err := a.try(wire.Send{ID: natter.NewMessageID(time.Now()), To: "bob", Body: make([]byte, 16<<10)}, wire.TSendAck)
		code = errCode(err)
	}
	if code != wire.CodeUnavailable {
		t.Fatalf("send on a full disk: code %q, want %s", code, wire.CodeUnavailable)
	}
	// Still serving: ping, and reads.
	a.call(wire.Ping{}, wire.TPong)
	a.call(wire.History{Peer: "bob"}, wire.TMessages)

	// Room again: sends work.
	os.Remove(filler)
	var ok bool
	for i := 0; i < 50 && !ok; i++ {
		_, err := a.try(wire.Send{ID: natter.NewMessageID(time.Now()), To: "bob", Body: []byte("after")}, wire.TSendAck)
		ok = err == nil
		if !ok {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !ok {
		t.Fatal("sending did not recover after the disk had room again")
	}
}
