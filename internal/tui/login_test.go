package tui

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter/client"
)

// loginHarness is a harness on the login form, whose LoginFunc asks the
// trust question once and then gives a session on a fake backend.
type loginHarness struct {
	*harness
	mu      sync.Mutex
	reqs    []LoginRequest
	trusted []bool
	fail    error
	backend *fakeBackend
}

func newLoginHarness(t *testing.T, server string) *loginHarness {
	lh := &loginHarness{backend: newFakeBackend()}
	t.Cleanup(func() { close(lh.backend.events) })
	login := func(ctx context.Context, req LoginRequest, trust TrustFunc) (*Session, error) {
		lh.mu.Lock()
		lh.reqs = append(lh.reqs, req)
		fail := lh.fail
		lh.mu.Unlock()
		ok := trust(ctx, req.Server, strings.Repeat("ab12", 16))
		lh.mu.Lock()
		lh.trusted = append(lh.trusted, ok)
		lh.mu.Unlock()
		if !ok {
			return nil, errors.New("the server's certificate was not trusted")
		}
		if fail != nil {
			return nil, fail
		}
		return &Session{User: req.User, Server: req.Server, Backend: lh.backend}, nil
	}
	a := New(Config{Login: login, Server: server, Now: func() time.Time { return t0 }, Location: time.UTC})
	h := &harness{t: t, a: a, msgs: make(chan tea.Msg, 4096)}
	h.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	h.run(a.Init())
	h.settle()
	lh.harness = h
	return lh
}

func TestLoginFormTrustAndSignup(t *testing.T) {
	h := newLoginHarness(t, "chat.example:7443")
	h.contains("natter", "server     [ chat.example:7443", "user", "password", "(•) log in   ( ) sign up")
	if h.a.login.focus != fieldUser {
		t.Fatalf("focus on field %d, want the user name (the server is prefilled)", h.a.login.focus)
	}
	h.keys("alice<tab>secret<tab><space>")
	h.contains("( ) log in   (•) sign up", "[ ••••••")
	h.lacks("secret")
	h.keys("<enter>")
	h.contains("First connection to chat.example:7443.", "ab12 ab12 ab12 ab12 ab12 ab12 ab12 ab12", "Trust this server from now on? (y/n)")
	h.keys("y")
	if h.a.Session() == nil {
		t.Fatalf("no session after the login:\n%s", h.screen())
	}
	h.contains("natter  ● alice online")
	if r := h.reqs[0]; r.Server != "chat.example:7443" || r.User != "alice" || r.Password != "secret" || !r.Signup {
		t.Errorf("request %+v", r)
	}
	h.backend.events <- client.ContactsEvent{Contacts: someContacts()}
	h.settle()
	h.contains("● bob at my desk")
}

func TestLoginRefusedTrust(t *testing.T) {
	h := newLoginHarness(t, "chat.example:7443")
	h.keys("alice<tab>secret<enter>")
	h.keys("n")
	h.contains("the server's certificate was not trusted")
	if h.a.Session() != nil || h.a.login.busy {
		t.Fatal("logged in, or still busy, after refusing the certificate")
	}
}

func TestLoginErrors(t *testing.T) {
	for _, tc := range []struct{ server, typed, want string }{
		{"", "<enter><enter><enter>", "which server? (host:port)"},
		{"s:1", "<enter>", "user"},
		{"s:1", "Bob!<enter><enter>", "user"},
		{"s:1", "bob<enter><enter>", "the password is empty"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			h := newLoginHarness(t, tc.server)
			h.keys(tc.typed)
			h.contains(tc.want)
			if len(h.reqs) != 0 {
				t.Fatalf("logged in with a bad form: %v", h.reqs)
			}
		})
	}
}

func TestLoginServerError(t *testing.T) {
	h := newLoginHarness(t, "s:1")
	h.fail = errors.New("wrong user name or password")
	h.keys("bob<tab>pw<enter>y")
	h.contains("wrong user name or password")
	h.keys("<enter>y") // try again
	if len(h.reqs) != 2 {
		t.Fatalf("%d logins", len(h.reqs))
	}
}

func TestQuitEndsTheSession(t *testing.T) {
	b := newFakeBackend()
	defer close(b.events)
	var ended []bool
	s := &Session{User: "alice", Backend: b, End: func(_ context.Context, loggedOut bool) error {
		ended = append(ended, loggedOut)
		return nil
	}}
	in, out := strings.NewReader("\x03"), &strings.Builder{} // ctrl-c
	err := Run(context.Background(), Config{Session: s, Input: in, Output: out, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if len(ended) != 1 || ended[0] {
		t.Fatalf("End calls %v, want one, not logged out", ended)
	}
}
