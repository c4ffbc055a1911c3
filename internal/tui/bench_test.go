package tui

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// benchApp is alice's App, w×h, with a conversation with bob of n
// messages open on screen (read from the history as the UI reads it).
func benchApp(b *testing.B, n, w, h int) *App {
	b.Helper()
	fb, l := newFakeBackend(), newFakeLocal("alice")
	l.fill("bob", n)
	s := &Session{User: "alice", Backend: fb, Local: l}
	a := New(Config{Session: s, Now: func() time.Time { return t0 }, Location: time.UTC})
	a.start(s)
	a.Update(tea.WindowSizeMsg{Width: w, Height: h})
	a.contacts.set(someContacts())
	a.open("bob")
	c := a.conv("bob")
	entries, _, _ := l.Page(b.Context(), "bob", "", n)
	c.loaded, c.more = true, false
	c.prepend(entries)
	a.View()
	return a
}

// BenchmarkFrame measures one frame (Update and View) of a 100,000-message
// conversation: scrolling a page back (and to the newest again when the top
// is reached), a new message arriving, and a resize.
func BenchmarkFrame(b *testing.B) {
	const n = 100_000
	b.Run("scroll", func(b *testing.B) {
		a := benchApp(b, n, 120, 40)
		c := a.activeConv()
		pgup := namedKey("pgup")
		for b.Loop() {
			a.Update(pgup)
			if c.anchor == 0 {
				c.toBottom()
			}
			a.View()
		}
	})
	b.Run("scroll-wheel", func(b *testing.B) {
		a := benchApp(b, n, 120, 40)
		c := a.activeConv()
		wheel := tea.MouseWheelMsg{X: 80, Y: 10, Button: tea.MouseWheelUp}
		for b.Loop() {
			a.Update(wheel)
			if c.anchor == 0 {
				c.toBottom()
			}
			a.View()
		}
	})
	b.Run("new-message", func(b *testing.B) {
		a := benchApp(b, n, 120, 40)
		i := 0
		for b.Loop() {
			i++
			m := wire.Message{ID: natter.MessageID(fmt.Sprintf("new%d", i)), From: "bob", To: "alice",
				Body: []byte("a new message that arrives while the conversation is on screen"), ConvSeq: uint64(n + i), SentAt: t0}
			a.Update(eventMsg{gen: a.gen, ev: client.MessageEvent{Message: m}})
			a.View()
		}
	})
	b.Run("resize", func(b *testing.B) {
		a := benchApp(b, n, 120, 40)
		w := 120
		for b.Loop() {
			w = 240 - w + 1 // 120, 121, 120, ...
			a.Update(tea.WindowSizeMsg{Width: w, Height: 40})
			a.View()
		}
	})
}

// BenchmarkOpenConversation is opening a conversation: reading its newest
// page from the history and the first frame.
func BenchmarkOpenConversation(b *testing.B) {
	l := newFakeLocal("alice")
	l.fill("bob", pageSize)
	entries, _, _ := l.Page(b.Context(), "bob", "", pageSize)
	for b.Loop() {
		a := benchApp(b, 0, 120, 40)
		a.conv("bob").prepend(entries)
		a.View()
	}
}

// BenchmarkContacts500 is a model with 500 contacts, each with a few
// messages: it reports the heap the model holds (bytes/model) and the cost
// of a presence change (which re-sorts the list) with its frame.
func BenchmarkContacts500(b *testing.B) {
	build := func() *App {
		fb := newFakeBackend()
		s := &Session{User: "alice", Backend: fb}
		a := New(Config{Session: s, Now: func() time.Time { return t0 }, Location: time.UTC})
		a.start(s)
		a.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
		var list []wire.Contact
		for i := range 500 {
			st := []natter.Status{natter.StatusOnline, natter.StatusAway, natter.StatusBusy, natter.StatusOffline}[i%4]
			list = append(list, contact(fmt.Sprintf("user%03d", i), st, "a status text of some length"))
		}
		a.Update(eventMsg{gen: a.gen, ev: client.ContactsEvent{Contacts: list}})
		for i := range 500 {
			for j := range 4 {
				a.Update(eventMsg{gen: a.gen, ev: client.MessageEvent{Message: wire.Message{ID: natter.MessageID(fmt.Sprintf("m%d-%d", i, j)),
					From: natter.UserID(fmt.Sprintf("user%03d", i)), To: "alice", Body: []byte("hello there, how are you?"), ConvSeq: uint64(j + 1), SentAt: t0}}})
			}
		}
		a.View()
		return a
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	a := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	i := 0
	for b.Loop() {
		i++
		st := natter.StatusOnline
		if i%2 == 0 {
			st = natter.StatusAway
		}
		a.Update(eventMsg{gen: a.gen, ev: client.PresenceEvent{Presence: wire.Presence{User: "user123", Status: st}}})
		a.View()
	}
	b.ReportMetric(heap, "bytes/model")
	runtime.KeepAlive(a)
}
