package tui

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// chatWith opens the conversation with peer from the contact list.
func chatWith(t *testing.T, w, h int, peer string) *harness {
	t.Helper()
	hs := newHarness(t, w, h)
	hs.event(client.ContactsEvent{Contacts: someContacts()})
	hs.send(tea.KeyPressMsg{Code: 'x'}) // nothing: x acts on requests only
	hs.a.contacts.sel = natter.UserID(peer)
	hs.keys("<enter>")
	return hs
}

func TestChatShowsHistoryNewestAtBottom(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.l.fill("bob", 50)
	h.event(client.ContactsEvent{Contacts: someContacts()})
	h.keys("<enter>")
	h.contains("● bob online · at my desk", "14:29 bob   message number 49 from the history")
	lines := strings.Split(h.screen(), "\n")
	if !strings.Contains(lines[len(lines)-5], "message number 49") {
		t.Fatalf("the newest message is not at the bottom of the dialog:\n%s", h.screen())
	}
	h.contains("14:27 alice message number 47") // the user's own, from the history
	h.lacks("message number 20 ")
	if h.l.pages != 1 {
		t.Errorf("%d pages read, want 1", h.l.pages)
	}
}

func TestChatScrollsBackThroughPages(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.l.fill("bob", 450) // three pages
	h.event(client.ContactsEvent{Contacts: someContacts()})
	h.keys("<enter>")
	h.press("pgup", 30)
	if h.l.pages < 2 {
		t.Fatalf("scrolling back read %d pages", h.l.pages)
	}
	for range 20 {
		h.press("pgup", 10)
	}
	h.contains("message number 0 from the history", "Tuesday, 5 March 2024")
	if h.l.pages != 3 {
		t.Errorf("%d pages read, want 3", h.l.pages)
	}
	h.keys("<ctrl+end>")
	h.contains("message number 449")
	// The mouse wheel scrolls too.
	h.send(tea.MouseWheelMsg{X: 60, Y: 10, Button: tea.MouseWheelUp})
	h.send(tea.MouseWheelMsg{X: 60, Y: 10, Button: tea.MouseWheelUp})
	h.lacks("message number 449")
	for range 2 {
		h.send(tea.MouseWheelMsg{X: 60, Y: 10, Button: tea.MouseWheelDown})
	}
	h.contains("message number 449")
}

func TestChatSendAndDeliveryStates(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	h.b.block = make(chan struct{})
	h.keys("hello bob<enter>")
	h.contains("14:30 alice hello bob … sending")
	close(h.b.block)
	h.settle()
	h.contains("14:30 alice hello bob ✓ sent")
	if !h.b.has("SendID bob hello bob") {
		t.Fatalf("calls: %v", h.b.called())
	}
	h.event(client.ReceiptEvent{Rcpt: wire.Rcpt{From: "bob", To: "alice", Upto: 1, State: natter.ReceiptDelivered}})
	h.contains("hello bob ✓✓ delivered")
	h.event(client.ReceiptEvent{Rcpt: wire.Rcpt{From: "bob", To: "alice", Upto: 1, State: natter.ReceiptRead}})
	h.contains("hello bob ✓✓ read")
	// Peer to peer: acknowledged by bob's device, so delivered at once;
	// read once a receipt covers it by ID (it has no conv seq).
	h.b.path = client.PathDirect
	h.keys("direct<enter>")
	h.contains("direct ✓✓ delivered")
	c := h.a.convs["bob"]
	direct := c.entries[len(c.entries)-1]
	direct.convSeq = 0 // as the SDK gives it for a message that went peer to peer
	h.event(client.ReceiptEvent{Rcpt: wire.Rcpt{From: "bob", To: "alice", Upto: 1, ID: "bob-saw-it", State: natter.ReceiptRead}, Direct: []natter.MessageID{direct.id}})
	h.contains("direct ✓✓ read")
	// A failure says why.
	h.b.sendErr = client.ErrNoKeys
	h.keys("nope<enter>")
	h.contains("nope ✗ not sent: bob has no end-to-end keys yet")
}

func TestChatMultiLineInput(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	h.keys("first<alt+enter>second<enter>")
	if !h.b.has("SendID bob first\nsecond") {
		t.Fatalf("calls: %v", h.b.called())
	}
	h.contains("14:30 alice first", "            second ✓ sent")
}

func TestChatIncomingAndTyping(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	h.send(eventMsg{gen: h.a.gen, msg: TypingMsg{From: "bob"}})
	h.settle()
	h.contains("bob is typing…")
	h.event(client.MessageEvent{Message: msgFrom("bob", 7, "hi alice", t0.Add(-time.Minute))})
	h.contains("14:29 bob   hi alice")
	h.lacks("is typing")
	if !h.b.has("MarkRead bob 7") || !h.b.has("MarkDelivered bob 7") {
		t.Errorf("receipts: %v", h.b.called())
	}
	// A message that went peer to peer has no conv seq: the receipts name
	// it by ID.
	direct := msgFrom("bob", 0, "over the channel", t0)
	direct.ID = "bob-direct"
	h.event(client.MessageEvent{Message: direct, Path: client.PathDirect})
	h.contains("over the channel")
	if !h.b.has("MarkReadID bob bob-direct") || !h.b.has("MarkDeliveredID bob bob-direct") {
		t.Errorf("receipts for a message that went peer to peer: %v", h.b.called())
	}
	// Typing notifications: one, however fast the user types, until
	// typingEvery passes.
	h.keys("abc")
	n := 0
	for _, c := range h.b.called() {
		if c == "SendTyping bob" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d typing notifications, want 1", n)
	}
	// "is typing" goes away by itself.
	h.send(eventMsg{gen: h.a.gen, msg: TypingMsg{From: "bob"}})
	h.settle()
	h.send(typingOverMsg{peer: "bob", gen: h.a.convs["bob"].typingGen})
	h.lacks("is typing")
}

func TestChatHeaderPath(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	h.contains("path: server")
	h.event(client.PathEvent{Peer: "bob", Path: client.PathDirect, RTT: 12 * time.Millisecond})
	h.contains("path: direct 12 ms")
	h.event(client.PathEvent{Peer: "bob", Path: client.PathRelayed, RTT: 48 * time.Millisecond})
	h.contains("path: relayed 48 ms")
	h.event(client.PathEvent{Peer: "bob", Path: client.PathServer})
	h.contains("path: server")
}

func TestChatKeyChangeBlocksSending(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	h.event(client.KeysEvent{User: "bob", Changed: true, Err: seal.ErrKeyChanged})
	h.contains("⚠ bob's identity key changed since you verified it", "/verify confirm bob")
	h.keys("secret<enter>")
	if h.b.has("SendID") {
		t.Fatal("sent to a contact whose verified key changed")
	}
	h.contains("› secret") // kept in the input
	h.a.input.Reset()
	h.keys("/verify<enter>")
	h.contains("Safety number with bob", "12345 67890 12345 67890 12345 67890", "identity key changed since you verified it")
	h.keys("/verify confirm<enter>")
	if !h.b.has("MarkVerified bob 12345 67890") {
		t.Fatalf("calls: %v", h.b.called())
	}
	h.keys("<esc>")
	h.lacks("⚠")
	h.keys("now<enter>")
	if !h.b.has("SendID bob now") {
		t.Fatalf("still blocked: %v", h.b.called())
	}
}

func TestChatSendFailsOnKeyChange(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	h.b.sendErr = fmt.Errorf("seal: %w", seal.ErrKeyChanged)
	h.keys("hi<enter>")
	h.contains("✗ not sent: bob's key changed: /verify", "⚠ bob's identity key changed")
}

func TestChatTabs(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	h.keys("<esc>j<enter>") // carol
	h.contains(" 1 bob ", " 2 carol ", "◐ carol away")
	h.keys("draft for carol")
	h.keys("<alt+1>")
	h.contains("● bob online")
	h.lacks("draft for carol")
	h.event(client.MessageEvent{Message: msgFrom("carol", 1, "psst", t0)})
	h.contains(" 2 carol (1) ")
	h.keys("<ctrl+n>")
	h.contains("◐ carol away", "› draft for carol", "psst")
	h.lacks("(1)")
	h.keys("<ctrl+w>") // with a draft: deletes a word
	if got := h.a.input.Value(); got != "draft for " {
		t.Fatalf("ctrl-w left %q", got)
	}
	h.a.input.Reset()
	h.keys("<ctrl+w>") // with none: closes the conversation
	h.contains("● bob online")
	h.lacks(" 2 carol")
}

func TestChatMouseDoubleClickOpens(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.event(client.ContactsEvent{Contacts: someContacts()})
	// Rows start under the top bar and the list's title: carol is on
	// the second row.
	h.send(tea.MouseClickMsg{X: 3, Y: 3, Button: tea.MouseLeft})
	if h.a.contacts.sel != "carol" || h.a.pane == paneChat {
		t.Fatalf("one click: selected %q, pane %d", h.a.contacts.sel, h.a.pane)
	}
	h.send(tea.MouseClickMsg{X: 3, Y: 3, Button: tea.MouseLeft})
	h.settle()
	if c := h.a.activeConv(); c == nil || c.peer != "carol" || h.a.pane != paneChat {
		t.Fatal("a double click did not open carol's conversation")
	}
}

func TestNarrowLayout(t *testing.T) {
	h := newHarness(t, 60, 20)
	h.event(client.ContactsEvent{Contacts: someContacts()})
	h.contains("contacts (8)", "● bob at my desk")
	h.lacks("│")
	h.keys("<enter>")
	h.contains("● bob online · at my desk")
	h.lacks("contacts (8)")
	h.keys("<esc>")
	h.contains("contacts (8)")
	// Resizing re-flows.
	h.send(tea.WindowSizeMsg{Width: 120, Height: 30})
	h.contains("contacts (8)", "│")
	for _, l := range strings.Split(h.screen(), "\n") {
		if w := visibleWidth(l); w != 120 {
			t.Fatalf("a line is %d cells wide, want 120: %q", w, l)
		}
	}
}

func TestChatWrapsAndReflows(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	long := strings.Repeat("word ", 30)
	h.event(client.MessageEvent{Message: msgFrom("bob", 1, long, t0)})
	for _, l := range strings.Split(h.screen(), "\n") {
		if visibleWidth(l) != 100 {
			t.Fatalf("line of %d cells: %q", visibleWidth(l), l)
		}
	}
	wide := strings.Count(h.screen(), "word")
	h.send(tea.WindowSizeMsg{Width: 60, Height: 20})
	if n := strings.Count(h.screen(), "word"); n != wide {
		t.Fatalf("after a resize %d words show, before %d:\n%s", n, wide, h.screen())
	}
}

func TestControlCharactersAreShownNotObeyed(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	h.event(client.MessageEvent{Message: msgFrom("bob", 1, "evil \x1b[2J\x07 text", t0)})
	h.contains(`evil \x1b[2J\x07 text`)
	if strings.Contains(h.a.View().Content, "\x1b[2J") {
		t.Fatal("an escape sequence from the network reached the screen")
	}
}

func TestEventsClosed(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	h.event(client.ConnEvent{Up: false, Err: errors.New("reset")})
	h.contains("reconnecting…")
	h.event(client.ConnEvent{Up: true})
	h.lacks("reconnecting…")
	h.event(client.ConnEvent{Final: true, Err: errors.New("session expired")})
	h.contains("the session ended: session expired: log in again", "password")
	if e := h.ends(); len(e) != 1 || e[0] {
		t.Errorf("End calls: %v", e)
	}
}

// TestChatShowsMessagesSentElsewhere: a message the device sent outside
// the UI (a natter command handed to it) appears in its conversation,
// once, with its delivery state.
func TestChatShowsMessagesSentElsewhere(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	res := client.SendResult{ID: natter.NewMessageID(t0), ConvSeq: 3, SentAt: t0, Path: client.PathServer}
	h.sent <- SentElsewhere{To: "bob", Text: "sent by a script", Result: res}
	h.sent <- SentElsewhere{To: "bob", Text: "sent by a script", Result: res} // the same message again
	h.settle()
	h.contains("alice sent by a script")
	if n := strings.Count(h.screen(), "sent by a script"); n != 1 {
		t.Errorf("shown %d times:\n%s", n, h.screen())
	}
}
