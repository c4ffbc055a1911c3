package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/natterim/natter/client"
)

// harness runs an App as a tea.Program would, but step by step: Cmds run
// on goroutines, their messages come back through msgs, and settle feeds
// them to Update until things are quiet. Update and View only ever run on
// the test's goroutine.
type harness struct {
	t     *testing.T
	a     *App
	b     *fakeBackend
	l     *fakeLocal
	msgs  chan tea.Msg
	sent  chan SentElsewhere // Session.Sent
	raw   []string           // what went to the terminal raw (the bell)
	endMu sync.Mutex
	ended []bool // End calls: loggedOut
}

// ends returns the End calls so far.
func (h *harness) ends() []bool {
	h.endMu.Lock()
	defer h.endMu.Unlock()
	return slices.Clone(h.ended)
}

// newHarness starts alice's session on a fake backend, w×h cells.
func newHarness(t *testing.T, w, h int) *harness {
	t.Helper()
	b, l := newFakeBackend(), newFakeLocal("alice")
	hs := &harness{t: t, b: b, l: l, msgs: make(chan tea.Msg, 4096), sent: make(chan SentElsewhere, 16)}
	s := &Session{User: "alice", Device: "dev1", Server: "chat.example:7443", Backend: b, Local: l, FilesDir: "/home/alice/files", Sent: hs.sent}
	s.End = func(_ context.Context, loggedOut bool) error {
		hs.endMu.Lock()
		defer hs.endMu.Unlock()
		hs.ended = append(hs.ended, loggedOut)
		return nil
	}
	a := New(Config{Session: s, Now: func() time.Time { return t0 }, Location: time.UTC})
	a.receiptDelay = time.Millisecond
	hs.a = a
	t.Cleanup(func() { close(b.events); close(hs.sent) })
	hs.send(tea.WindowSizeMsg{Width: w, Height: h})
	hs.run(a.Init())
	hs.settle()
	return hs
}

// run runs a Cmd (a batch's Cmds each) in the background.
func (h *harness) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() {
		if m := cmd(); m != nil {
			h.msgs <- m
		}
	}()
}

// send feeds one message to Update now and runs what it returns.
func (h *harness) send(m tea.Msg) {
	switch m := m.(type) {
	case tea.BatchMsg:
		for _, c := range m {
			h.run(c)
		}
		return
	case tea.QuitMsg:
		h.a.quitting = true
		return
	case tea.RawMsg:
		h.raw = append(h.raw, fmt.Sprint(m.Msg))
		return
	}
	_, cmd := h.a.Update(m)
	h.run(cmd)
}

// settle feeds the Cmds' messages to Update until none came for a while.
func (h *harness) settle() {
	h.t.Helper()
	quiet := time.NewTimer(60 * time.Millisecond)
	defer quiet.Stop()
	for {
		select {
		case m := <-h.msgs:
			h.send(m)
			quiet.Reset(60 * time.Millisecond)
		case <-quiet.C:
			return
		}
	}
}

// event hands the App an SDK event through the backend's channel.
func (h *harness) event(ev client.Event) {
	h.b.events <- ev
	h.settle()
}

// keys types: words in angle brackets are named keys (<enter>, <esc>,
// <alt+1>...), everything else is typed as text.
func (h *harness) keys(s string) {
	h.t.Helper()
	for s != "" {
		if strings.HasPrefix(s, "<") {
			if end := strings.Index(s, ">"); end > 1 {
				h.send(namedKey(s[1:end]))
				s = s[end+1:]
				h.settle()
				continue
			}
		}
		r := []rune(s)[0]
		h.send(tea.KeyPressMsg{Code: r, Text: string(r)})
		s = s[len(string(r)):]
	}
	h.settle()
}

// press presses a named key n times, then settles.
func (h *harness) press(name string, n int) {
	for range n {
		h.send(namedKey(name))
	}
	h.settle()
}

// namedKey makes the key press that String()s as name.
func namedKey(name string) tea.KeyPressMsg {
	var k tea.KeyPressMsg
	parts := strings.Split(name, "+")
	for _, m := range parts[:len(parts)-1] {
		switch m {
		case "alt":
			k.Mod |= tea.ModAlt
		case "ctrl":
			k.Mod |= tea.ModCtrl
		case "shift":
			k.Mod |= tea.ModShift
		}
	}
	switch base := parts[len(parts)-1]; base {
	case "enter":
		k.Code = tea.KeyEnter
	case "esc":
		k.Code = tea.KeyEscape
	case "tab":
		k.Code = tea.KeyTab
	case "up":
		k.Code = tea.KeyUp
	case "down":
		k.Code = tea.KeyDown
	case "pgup":
		k.Code = tea.KeyPgUp
	case "pgdown":
		k.Code = tea.KeyPgDown
	case "space":
		k.Code = tea.KeySpace
	case "home":
		k.Code = tea.KeyHome
	case "end":
		k.Code = tea.KeyEnd
	default:
		k.Code = []rune(base)[0]
		if k.Mod == 0 {
			k.Text = base
		}
	}
	return k
}

// screen is the current view without styling.
func (h *harness) screen() string {
	return ansi.Strip(h.a.View().Content)
}

// contains fails the test unless the screen has every want.
func (h *harness) contains(wants ...string) {
	h.t.Helper()
	s := h.screen()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			h.t.Fatalf("the screen has no %q:\n%s", w, s)
		}
	}
}

// lacks fails the test if the screen has any of these.
func (h *harness) lacks(nots ...string) {
	h.t.Helper()
	s := h.screen()
	for _, n := range nots {
		if strings.Contains(s, n) {
			h.t.Fatalf("the screen has %q:\n%s", n, s)
		}
	}
}
