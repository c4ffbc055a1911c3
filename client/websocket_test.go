package client_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/servertest"
)

// overWebSocket makes a Client connect to inst's /ws, as the browser
// client does, instead of its TLS listener.
func overWebSocket(inst *servertest.Instance) func(*client.Options) {
	return func(o *client.Options) { o.Addr = "wss://" + inst.HTTPAddr + "/ws" }
}

// TestWebSocketTransport: a Client over WebSocket and one over TLS sign
// up, become contacts and exchange sealed messages both ways; across a
// restart of natterd the WebSocket one reconnects, resumes, and gets what
// was sent meanwhile, once and in order.
func TestWebSocketTransport(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob := signup(t, inst, "bob", "b1", overWebSocket(inst))
	befriend(t, alice, bob)

	for i := range 3 {
		res, err := alice.Send(ctx, "bob", fmt.Appendf(nil, "to bob %d", i))
		if err != nil {
			t.Fatal(err)
		}
		if got := bob.ev.message(res.ID); string(got.Message.Body) != fmt.Sprintf("to bob %d", i) || got.OpenErr != nil {
			t.Fatalf("bob got %q (%v)", got.Message.Body, got.OpenErr)
		}
		res, err = bob.Send(ctx, "alice", fmt.Appendf(nil, "to alice %d", i))
		if err != nil {
			t.Fatal(err)
		}
		if got := alice.ev.message(res.ID); string(got.Message.Body) != fmt.Sprintf("to alice %d", i) {
			t.Fatalf("alice got %q", got.Message.Body)
		}
	}

	inst.Stop()
	bob.ev.until(func(e client.Event) bool { ce, ok := e.(client.ConnEvent); return ok && !ce.Up })
	inst.Restart()
	alice.ev.until(func(e client.Event) bool { ce, ok := e.(client.ConnEvent); return ok && ce.Up })
	var want []string
	for i := range 5 {
		res, err := alice.Send(ctx, "bob", fmt.Appendf(nil, "after %d", i))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, string(res.ID))
	}
	for i, id := range want {
		got := bob.ev.until(func(e client.Event) bool { _, ok := e.(client.MessageEvent); return ok }).(client.MessageEvent)
		if string(got.Message.ID) != id || string(got.Message.Body) != fmt.Sprintf("after %d", i) {
			t.Fatalf("message %d: got %s %q, want %s", i, got.Message.ID, got.Message.Body, id)
		}
	}
	bob.ev.noMessage(200 * time.Millisecond)
}
