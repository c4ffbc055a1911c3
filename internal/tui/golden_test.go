package tui

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// Golden screens: the App runs in a real tea.Program (teatest), fed by a
// fake backend's events and typed keys; when the screen shows what the test
// waits for, its content, colour codes included, is compared with
// testdata/TestName.golden (go test -update rewrites them; cat one to see
// it in colour). The clock and time zone are fixed, and so is the program's
// colour profile.

// probe asks the program for its current screen.
type probe struct{ reply chan string }

// probed is an App that answers probes.
type probed struct{ *App }

func (p probed) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if pr, ok := msg.(probe); ok {
		pr.reply <- p.App.View().Content
		return p, nil
	}
	_, cmd := p.App.Update(msg)
	return p, cmd
}

// goldenRun is a program under test.
type goldenRun struct {
	t  *testing.T
	tm *teatest.TestModel
	b  *fakeBackend
	l  *fakeLocal
}

// startGolden runs alice's session (or, with login set, the login form) in
// a w×h terminal.
func startGolden(t *testing.T, w, h int, login LoginFunc) *goldenRun {
	b, l := newFakeBackend(), newFakeLocal("alice")
	l.fill("bob", 40)
	b.contacts = someContacts()
	cfg := Config{Now: func() time.Time { return t0 }, Location: time.UTC, Login: login, Server: "chat.example:7443"}
	if login == nil {
		cfg.Session = &Session{User: "alice", Server: "chat.example:7443", Backend: b, Local: l, FilesDir: "/tmp/files"}
	}
	a := New(cfg)
	tm := teatest.NewTestModel(t, probed{a}, teatest.WithInitialTermSize(w, h),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.ANSI)))
	g := &goldenRun{t: t, tm: tm, b: b, l: l}
	t.Cleanup(func() {
		tm.Quit()
		tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
		close(b.events)
	})
	return g
}

// screen waits until the screen (without styles) has every want, and
// returns it with its styles.
func (g *goldenRun) screen(wants ...string) string {
	g.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		reply := make(chan string, 1)
		g.tm.Send(probe{reply})
		var got string
		select {
		case got = <-reply:
		case <-time.After(time.Second):
		}
		plain := stripANSI(got)
		ok := got != ""
		for _, w := range wants {
			ok = ok && strings.Contains(plain, w)
		}
		if ok {
			return got
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("the screen never showed %q:\n%s", wants, plain)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keys types like harness.keys.
func (g *goldenRun) keys(s string) {
	for s != "" {
		if strings.HasPrefix(s, "<") {
			if end := strings.Index(s, ">"); end > 1 {
				g.tm.Send(namedKey(s[1:end]))
				s = s[end+1:]
				continue
			}
		}
		r := []rune(s)[0]
		g.tm.Send(tea.KeyPressMsg{Code: r, Text: string(r)})
		s = s[len(string(r)):]
	}
}

func TestGoldenContactList(t *testing.T) {
	g := startGolden(t, 100, 24, nil)
	g.b.events <- client.ContactsEvent{Contacts: someContacts()}
	g.b.events <- client.MessageEvent{Message: msgFrom("carol", 1, "lunch?", t0)}
	g.b.events <- client.MessageEvent{Message: msgFrom("carol", 2, "we're at the usual place", t0)}
	teatest.RequireEqualOutput(t, []byte(g.screen("◐ carol (2) lunch", "✕ ivan blocked", "2 unread")))
}

func TestGoldenChat(t *testing.T) {
	g := startGolden(t, 100, 24, nil)
	g.b.events <- client.ContactsEvent{Contacts: someContacts()}
	g.screen("● bob at my desk")
	g.keys("<enter>")
	g.screen("message number 39")
	g.b.events <- client.PathEvent{Peer: "bob", Path: client.PathDirect, RTT: 12 * time.Millisecond}
	g.keys("see you at three<enter>")
	g.screen("see you at three ✓ sent")
	g.b.events <- client.ReceiptEvent{Rcpt: wire.Rcpt{From: "bob", To: "alice", Upto: 1, State: natter.ReceiptRead}}
	g.keys("and bring the slides, the long version with the appendix, the one we did for the review last spring<enter>")
	g.screen("review last spring ✓ sent")
	g.b.events <- client.MessageEvent{Message: msgFrom("bob", 41, "will do", t0)}
	g.screen("will do") // a message ends "is typing": it must come first
	g.tm.Send(TypingMsg{From: "bob"})
	teatest.RequireEqualOutput(t, []byte(g.screen("see you at three ✓✓ read", "path: direct 12 ms", "bob is typing…", "will do")))
}

func TestGoldenInbox(t *testing.T) {
	g := startGolden(t, 100, 24, nil)
	g.b.events <- client.ContactsEvent{Contacts: someContacts()}
	for _, ev := range awayInbox() {
		g.b.events <- ev
	}
	teatest.RequireEqualOutput(t, []byte(g.screen("While you were away", "the build is green")))
}

func TestGoldenNarrow(t *testing.T) {
	g := startGolden(t, 60, 20, nil)
	g.b.events <- client.ContactsEvent{Contacts: someContacts()}
	list := g.screen("● bob at my desk")
	g.keys("<enter>")
	chat := g.screen("message number 39", "path: server")
	teatest.RequireEqualOutput(t, []byte(list+"\n"+strings.Repeat("=", 60)+"\n"+chat))
}

func TestGoldenLogin(t *testing.T) {
	login := func(ctx context.Context, req LoginRequest, trust TrustFunc) (*Session, error) {
		trust(ctx, req.Server, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
		return nil, context.Canceled
	}
	g := startGolden(t, 80, 24, login)
	form := g.screen("password")
	g.keys("alice<tab>secret<enter>")
	ask := g.screen("Trust this server")
	teatest.RequireEqualOutput(t, []byte(form+"\n"+strings.Repeat("=", 80)+"\n"+ask))
}

// TestGoldenMonochrome is the contact list as a NO_COLOR terminal shows it
// (the renderer drops the colours): the markers still tell the presence.
func TestGoldenMonochrome(t *testing.T) {
	g := startGolden(t, 100, 24, nil)
	g.b.events <- client.ContactsEvent{Contacts: someContacts()}
	var out bytes.Buffer
	w := &colorprofile.Writer{Forward: &out, Profile: colorprofile.Ascii}
	if _, err := w.WriteString(g.screen("✕ ivan blocked")); err != nil {
		t.Fatal(err)
	}
	for _, mark := range []string{"● bob", "◐ carol", "⊘ dave", "○ erin"} {
		if !strings.Contains(stripANSI(out.String()), mark) {
			t.Errorf("no %q in monochrome", mark)
		}
	}
	if strings.Contains(out.String(), "[32m") {
		t.Error("colour in monochrome")
	}
	teatest.RequireEqualOutput(t, out.Bytes())
}
