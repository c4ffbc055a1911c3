package tui

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

var demo = flag.Bool("demo", false, "run the UI on this terminal, on a fake backend (go test -c, then run the binary with -test.run TestDemo -demo)")

// TestDemo shows the UI on a fake backend, to look at it: bob writes now
// and then, carol and dave wrote while alice was away.
func TestDemo(t *testing.T) {
	if !*demo {
		t.Skip("-demo runs the UI on the terminal")
	}
	b, l := newFakeBackend(), newFakeLocal("alice")
	l.fill("bob", 5000)
	b.contacts = someContacts()
	b.events <- client.ContactsEvent{Contacts: someContacts()}
	b.events <- client.InboxEvent{Done: true, Groups: []wire.InboxGroup{
		{From: "carol", Messages: []wire.Msg{{Seq: 1, Message: msgFrom("carol", 1, "are you there?", t0.Add(-2*time.Hour))}, {Seq: 3, Message: msgFrom("carol", 2, "call me when you can", t0.Add(-time.Hour))}}},
		{From: "dave", Messages: []wire.Msg{{Seq: 2, Message: msgFrom("dave", 1, "the build is green", t0.Add(-90*time.Minute))}}},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for i := 1; ctx.Err() == nil; i++ {
			time.Sleep(4 * time.Second)
			b.events <- client.PathEvent{Peer: "bob", Path: client.PathDirect, RTT: time.Duration(10+i) * time.Millisecond}
			time.Sleep(3 * time.Second)
			b.events <- client.MessageEvent{Message: wire.Message{ID: natter.MessageID(fmt.Sprintf("live%d", i)), From: "bob", To: "alice",
				Body: []byte(fmt.Sprintf("live message %d: the quick brown fox jumps over the lazy dog", i)), ConvSeq: uint64(5000 + i), SentAt: time.Now()}}
		}
	}()
	s := &Session{User: "alice", Server: "demo", Backend: b, Local: l, FilesDir: t.TempDir()}
	if err := Run(ctx, Config{Session: s, Bell: true}); err != nil {
		t.Fatal(err)
	}
}
