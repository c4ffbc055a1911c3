package tui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// awayInbox is what carol and dave sent while alice was away, in two parts
// (carol's messages span both), and a receipt from bob.
func awayInbox() []client.InboxEvent {
	return []client.InboxEvent{
		{Groups: []wire.InboxGroup{
			{From: "carol", Messages: []wire.Msg{{Seq: 1, Message: msgFrom("carol", 1, "are you there?", t0.Add(-2*time.Hour))}}},
			{From: "dave", Messages: []wire.Msg{{Seq: 2, Message: msgFrom("dave", 1, "the build is green", t0.Add(-90*time.Minute))}}},
		}},
		{Done: true, Groups: []wire.InboxGroup{
			{From: "carol", Messages: []wire.Msg{{Seq: 3, Message: msgFrom("carol", 2, "call me\nwhen you can", t0.Add(-time.Hour))}}},
			{From: "bob", Receipts: []wire.Rcpt{{Seq: 4, From: "bob", To: "alice", Upto: 9, State: natter.ReceiptRead}}},
		}},
	}
}

func TestInboxGroupedBySender(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.event(client.ContactsEvent{Contacts: someContacts()})
	for _, ev := range awayInbox() {
		h.event(ev)
	}
	h.contains("While you were away: 3 messages from 2 contacts", "◐ carol (2)", "⊘ dave (1)",
		"12:30 are you there?", "13:30 call me ⏎ when you can", "13:00 the build is green")
	s := h.screen()
	if strings.Count(s, "carol (2)") != 2 { // the list and the inbox, once each
		t.Errorf("carol's group shows %d times:\n%s", strings.Count(s, "carol (2)"), s)
	}
	carol, there, call, dave := strings.Index(s, "› ◐ carol"), strings.Index(s, "are you there"), strings.Index(s, "call me"), strings.Index(s, "⊘ dave (1)\n")
	if !(carol < there && there < call) || strings.LastIndex(s, "dave (1)") < call {
		t.Errorf("not grouped in order:\n%s", s)
	}
	_ = dave
	h.contains("3 unread")
	if !h.b.has("MarkDelivered carol 2") || !h.b.has("MarkDelivered dave 1") {
		t.Errorf("no delivered receipts: %v", h.b.called())
	}
	// j selects dave; enter opens his conversation, with the message.
	h.keys("j<enter>")
	h.contains("⊘ dave busy", "13:00 dave  the build is green")
	if !h.b.has("MarkRead dave 1") {
		t.Errorf("no read receipt: %v", h.b.called())
	}
	// The inbox comes back with /inbox, and esc closes it.
	h.keys("/inbox<enter>")
	h.contains("While you were away")
	h.keys("<esc>")
	h.contains("⊘ dave busy")
}

func TestInboxEmpty(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.event(client.InboxEvent{Done: true})
	h.lacks("While you were away")
	h.contains("Welcome to natter, alice.")
}

func TestInboxReceiptsApply(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	h.keys("one<enter>")
	h.contains("one ✓ sent")
	h.event(client.InboxEvent{Done: true, Groups: []wire.InboxGroup{
		{From: "bob", Receipts: []wire.Rcpt{{Seq: 4, From: "bob", To: "alice", Upto: 1, State: natter.ReceiptRead}}},
	}})
	h.contains("one ✓✓ read")
}

func TestKeptMessagesJoinTheInbox(t *testing.T) {
	b, l := newFakeBackend(), newFakeLocal("alice")
	defer close(b.events)
	h := &harness{t: t, b: b, l: l, msgs: make(chan tea.Msg, 4096)}
	s := &Session{User: "alice", Backend: b, Local: l, Kept: []wire.InboxGroup{
		{From: "carol", Messages: []wire.Msg{{Seq: 1, Message: msgFrom("carol", 1, "kept from yesterday", t0.Add(-24*time.Hour))}}},
	}}
	h.a = New(Config{Session: s, Now: func() time.Time { return t0 }, Location: time.UTC})
	h.send(tea.WindowSizeMsg{Width: 100, Height: 24})
	h.run(h.a.Init())
	h.settle()
	b.events <- awayInbox()[1] // the login's inbox: carol again, then Done
	h.settle()
	h.contains("While you were away: 2 messages from 1 contact", "Mar 4 14:30 kept from yesterday", "13:30 call me")
}
