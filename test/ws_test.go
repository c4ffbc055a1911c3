package test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// TestWebSocketFraming speaks the same protocol over WebSocket (binary
// messages, no length prefix) to a user on TLS/TCP.
func TestWebSocketFraming(t *testing.T) {
	in := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: in.ClientTLS()}}
	ws, _, err := websocket.Dial(ctx, "wss://"+in.HTTPAddr+"/ws", &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{"natter.v1"}})
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(4 << 20)
	send := func(v any) {
		b, err := wire.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.Write(ctx, websocket.MessageBinary, b[4:]); err != nil {
			t.Fatalf("ws write: %v", err)
		}
	}
	recv := func(want wire.Type) any {
		for {
			typ, b, err := ws.Read(ctx)
			if err != nil {
				t.Fatalf("ws read (waiting for %s): %v", want, err)
			}
			if typ != websocket.MessageBinary {
				t.Fatalf("text message from server")
			}
			f, err := wire.ParseMessage(b, 0)
			if err != nil {
				t.Fatal(err)
			}
			v, err := wire.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if e, ok := v.(*wire.Error); ok {
				t.Fatalf("error waiting for %s: %+v", want, e)
			}
			if f.Type == want {
				return v
			}
		}
	}
	send(wire.Hello{V: wire.Version, Client: "ws-test"})
	recv(wire.TWelcome)
	send(wire.Signup{Ref: 1, User: "webby", Password: "password-webby", Device: "browser1"})
	recv(wire.TAuthed)
	for {
		if inb := recv(wire.TInbox).(*wire.Inbox); inb.Done {
			break
		}
	}

	bob := signup(t, in, "bob")
	send(wire.ContactOp{Ref: 2, Op: natter.OpAdd, User: "bob"})
	recv(wire.TOK)
	bob.expect(wire.TContactUpdate)
	bob.call(wire.ContactOp{Op: natter.OpAccept, User: "webby"}, wire.TOK)
	send(wire.Send{Ref: 3, ID: "ws-1", To: "bob", Body: []byte("from the browser")})
	ack := recv(wire.TSendAck).(*wire.SendAck)
	if !ack.Online || ack.ConvSeq != 1 {
		t.Fatalf("ack %+v", ack)
	}
	if m := bob.expect(wire.TMsg).(*wire.Msg); string(m.Body) != "from the browser" || m.From != "webby" {
		t.Fatalf("bob got %+v", m)
	}
	sendMsg(t, bob, "webby", "to the browser")
	for {
		m := recv(wire.TMsg).(*wire.Msg)
		if m.From == "bob" {
			if string(m.Body) != "to the browser" {
				t.Fatalf("webby got %+v", m)
			}
			break
		}
	}
	// A text message is refused with a clear Bye.
	ws.Write(ctx, websocket.MessageText, []byte("hello?"))
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal("closed without a Bye")
		}
		f, _ := wire.ParseMessage(b, 0)
		if f.Type == wire.TBye {
			v, _ := wire.Decode(f)
			if v.(*wire.Bye).Code != wire.CodeBadFrame {
				t.Fatalf("bye %+v", v)
			}
			break
		}
	}
}
