package tui

import (
	"testing"

	"github.com/natterim/natter/client"
)

func TestBellAndTitle(t *testing.T) {
	for _, bell := range []bool{true, false} {
		h := chatWith(t, 100, 24, "bob")
		h.a.cfg.Bell = bell
		h.event(client.MessageEvent{Message: msgFrom("bob", 1, "on screen: no bell", t0)})
		if len(h.raw) != 0 {
			t.Fatalf("bell for a message on screen: %q", h.raw)
		}
		h.event(client.MessageEvent{Message: msgFrom("carol", 1, "elsewhere", t0)})
		if rang := len(h.raw) == 1 && h.raw[0] == "\a"; rang != bell {
			t.Errorf("bell %v: rang %q", bell, h.raw)
		}
		if got := h.a.View().WindowTitle; got != "(1) natter — alice · bob" {
			t.Errorf("title %q", got)
		}
	}
}

func TestSlowServerDoesNotBlockTyping(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	h.b.block = make(chan struct{}) // SendID hangs
	defer close(h.b.block)
	h.keys("first<enter>")
	h.keys("still typing")
	h.contains("first … sending", "› still typing")
	h.keys("<esc>j") // and the list still moves
	if h.a.contacts.sel != "carol" {
		t.Fatalf("selection %q", h.a.contacts.sel)
	}
}

func TestDraftKeptPerConversation(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	h.keys("half a thought<esc>")
	h.contains("› half a thought") // dim: the list has the keys now
	h.keys("/status busy<enter>")
	h.keys("<tab>")
	if got := h.a.input.Value(); got != "half a thought" {
		t.Fatalf("draft %q after going back", got)
	}
}
