package tui

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

func TestContactListSections(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.event(client.ContactsEvent{Contacts: someContacts()})
	s := h.screen()
	order := []string{"● bob", "◐ carol", "⊘ dave", "── offline", "○ erin", "○ frank", "── requests", "? gina", "… hank", "── blocked", "✕ ivan"}
	last := -1
	for _, w := range order {
		i := strings.Index(s, w)
		if i < 0 || i < last {
			t.Fatalf("%q missing or out of order:\n%s", w, s)
		}
		last = i
	}
	h.contains("at my desk", "lunch", "last seen 3 h ago", "wants to add you", "request sent")
	if a := h.a; a.contacts.sel != "bob" {
		t.Errorf("selected %q at start, want bob", a.contacts.sel)
	}
}

func TestContactListColours(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.event(client.ContactsEvent{Contacts: someContacts()})
	h.keys("j") // select carol, so that bob's line is not in reverse video
	view := h.a.View().Content
	for _, tc := range []struct {
		who, sgr string
	}{
		{"● bob", "32"},   // green
		{"◐ carol", "33"}, // yellow (selected: reversed too)
		{"⊘ dave", "31"},  // red
		{"○ erin", "90"},  // grey
	} {
		line := lineWith(view, tc.who)
		if !regexp.MustCompile(`\x1b\[([0-9]+;)*` + tc.sgr + `m` + regexp.QuoteMeta(tc.who)).MatchString(line) {
			t.Errorf("%s is not drawn with %q: %q", tc.who, tc.sgr, line)
		}
	}
}

// lineWith returns the line of a styled view that has s (ignoring styles).
func lineWith(view, s string) string {
	for _, l := range strings.Split(view, "\n") {
		if strings.Contains(stripANSI(l), s) {
			return l
		}
	}
	return ""
}

func TestContactListMovesAndOpens(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.event(client.ContactsEvent{Contacts: someContacts()})
	h.keys("jj")
	if h.a.contacts.sel != "dave" {
		t.Fatalf("selected %q after jj, want dave", h.a.contacts.sel)
	}
	h.keys("<down><up>k")
	if h.a.contacts.sel != "carol" {
		t.Fatalf("selected %q, want carol", h.a.contacts.sel)
	}
	h.keys("<enter>")
	if h.a.pane != paneChat || h.a.activeConv().peer != "carol" || h.a.focus != focusMain {
		t.Fatalf("enter did not open carol's conversation: pane %d focus %d", h.a.pane, h.a.focus)
	}
	h.contains("◐ carol away · lunch", "path: server")
	h.keys("<esc>")
	if h.a.focus != focusList {
		t.Fatal("esc did not go back to the list")
	}
}

func TestContactListActions(t *testing.T) {
	for _, tc := range []struct {
		select_ string // j presses from the first contact
		key     string
		call    string
	}{
		{strings.Repeat("j", 5), "a", "Accept gina"},
		{strings.Repeat("j", 5), "x", "Refuse gina"},
		{strings.Repeat("j", 6), "x", "Remove hank"},
		{strings.Repeat("j", 7), "u", "Unblock ivan"},
	} {
		t.Run(tc.call, func(t *testing.T) {
			h := newHarness(t, 100, 24)
			h.event(client.ContactsEvent{Contacts: someContacts()})
			h.keys(tc.select_ + tc.key)
			if !h.b.has(tc.call) {
				t.Fatalf("no %s call: %v", tc.call, h.b.called())
			}
		})
	}
}

func TestContactListUpdates(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.event(client.ContactsEvent{Contacts: someContacts()})
	h.event(client.PresenceEvent{Presence: wire.Presence{User: "erin", Status: natter.StatusOnline, Text: "back"}})
	h.contains("● erin back")
	if i, j := strings.Index(h.screen(), "● erin"), strings.Index(h.screen(), "── offline"); i > j {
		t.Fatalf("erin did not move up to the online contacts:\n%s", h.screen())
	}
	h.event(client.PresenceEvent{Presence: wire.Presence{User: "bob", Status: natter.StatusOffline, LastSeen: t0}})
	h.contains("○ bob last seen just now")
	h.event(client.ContactEvent{Contact: wire.Contact{User: "gina", State: natter.ContactApproved, Status: natter.StatusOnline}})
	h.contains("● gina", "gina is your contact")
	h.event(client.ContactEvent{Contact: wire.Contact{User: "zoe", State: natter.ContactPendingIn}})
	h.contains("? zoe wants to add you", "/accept zoe")
	h.event(client.ContactEvent{Contact: wire.Contact{User: "ivan", State: natter.ContactNone}})
	h.lacks("ivan")
}

func TestUnreadCounts(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.event(client.ContactsEvent{Contacts: someContacts()})
	for i := range 3 {
		h.event(client.MessageEvent{Message: msgFrom("carol", uint64(i+1), fmt.Sprintf("hi %d", i), t0)})
	}
	h.contains("◐ carol (3) lunch", "3 unread")
	if title := h.a.View().WindowTitle; title != "(3) natter — alice" {
		t.Errorf("title %q", title)
	}
	if !h.b.has("MarkDelivered carol 3") || h.b.has("MarkRead carol") {
		t.Errorf("receipts: %v", h.b.called())
	}
	h.keys("j<enter>")
	h.lacks("(3)", "unread")
	if !h.b.has("MarkRead carol 3") {
		t.Errorf("no read receipt when the conversation came on screen: %v", h.b.called())
	}
}

// TestLastSeen: an offline contact shows when they were last online (or
// that they never were) and the status text they left.
func TestLastSeen(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at   time.Time
		text string
		want string
	}{
		{time.Time{}, "", "not seen online yet"},
		{time.Time{}, "on holiday", "not seen online yet · on holiday"},
		{now.Add(-10 * time.Second), "", "last seen just now"},
		{now.Add(-10 * time.Second), "at lunch", "last seen just now · at lunch"},
	} {
		if got := lastSeen(tc.at, tc.text, now, time.UTC); got != tc.want {
			t.Errorf("lastSeen(%v, %q) = %q, want %q", tc.at, tc.text, got, tc.want)
		}
	}
}
