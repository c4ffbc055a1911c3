package cluster

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/seal"
)

const password = "correct horse battery staple"

// user is one device of a user, connected through the SDK.
type user struct {
	*client.Client
	t    *testing.T
	name natter.UserID
	dev  natter.DeviceID
	ch   <-chan client.Event
}

// identities holds each test user's identity key, so that a user's later
// devices adopt it (as if approved by the first; approval has its own tests).
var identities sync.Map // "test/user" → *seal.Identity

// dial connects a device of name to the given node addresses.
func (c *cluster) dial(name natter.UserID, dev natter.DeviceID, addrs []string, mod ...func(*client.Options)) *user {
	t := c.t
	t.Helper()
	kr, err := seal.New(name, dev)
	if err != nil {
		t.Fatal(err)
	}
	key := t.Name() + "/" + string(name)
	id, ok := identities.Load(key)
	if !ok {
		nid, err := seal.NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		id, _ = identities.LoadOrStore(key, nid)
	}
	if err := kr.AdoptIdentity(id.(*seal.Identity)); err != nil {
		t.Fatal(err)
	}
	o := client.Options{
		Addr:         addrs[0],
		Addrs:        addrs[1:],
		TLSConfig:    c.tls.Clone(),
		Device:       dev,
		Keys:         kr,
		ClientName:   "cluster-test",
		ReconnectMin: 50 * time.Millisecond,
		ReconnectMax: 500 * time.Millisecond,
		EventBuffer:  4096,
	}
	for _, m := range mod {
		m(&o)
	}
	var cl *client.Client
	for try := 0; ; try++ {
		var err error
		cl, err = client.Dial(t.Context(), o)
		if err != nil {
			t.Fatalf("%s/%s dials %v: %v", name, dev, addrs, err)
		}
		// The client picks one of its addresses at random; a test that
		// wants the device on a given node dials again until it is.
		if c.place == "" || cl.Welcome().Node == c.place {
			break
		}
		cl.Close()
		if try == 50 {
			t.Fatalf("%s/%s: 50 dials of %v never reached node %s", name, dev, addrs, c.place)
		}
	}
	t.Cleanup(func() { cl.Close() })
	return &user{Client: cl, t: t, name: name, dev: dev, ch: cl.Events()}
}

// signup signs name up on a new device connected to addrs.
func (c *cluster) signup(name natter.UserID, addrs []string, mod ...func(*client.Options)) *user {
	c.t.Helper()
	u := c.dial(name, natter.DeviceID(string(name)+"-1"), addrs, mod...)
	if _, err := u.Signup(c.t.Context(), name, password); err != nil {
		c.t.Fatalf("signup %s: %v", name, err)
	}
	u.inboxDone()
	return u
}

// login logs name in on device dev connected to addrs and returns it with
// the inbox of the login.
func (c *cluster) login(name natter.UserID, dev natter.DeviceID, addrs []string, mod ...func(*client.Options)) (*user, []client.InboxEvent) {
	c.t.Helper()
	u := c.dial(name, dev, addrs, mod...)
	if _, err := u.Login(c.t.Context(), name, password); err != nil {
		c.t.Fatalf("login %s/%s: %v", name, dev, err)
	}
	return u, u.inboxDone()
}

// until returns the first event that satisfies ok, skipping others, and
// fails after d.
func (u *user) until(d time.Duration, what string, ok func(client.Event) bool) client.Event {
	u.t.Helper()
	deadline := time.After(d)
	var skipped []string
	for {
		select {
		case ev, open := <-u.ch:
			if !open {
				u.t.Fatalf("%s/%s: events closed waiting for %s; skipped %v", u.name, u.dev, what, skipped)
			}
			if ok(ev) {
				return ev
			}
			if len(skipped) < 50 {
				skipped = append(skipped, fmt.Sprintf("%T%+v", ev, ev))
			}
		case <-deadline:
			u.t.Fatalf("%s/%s: no %s within %s; skipped %v", u.name, u.dev, what, d, skipped)
			return nil
		}
	}
}

// inboxDone returns the InboxEvents up to the one with Done.
func (u *user) inboxDone() []client.InboxEvent {
	u.t.Helper()
	var ibs []client.InboxEvent
	u.until(10*time.Second, "end of the inbox", func(e client.Event) bool {
		ib, ok := e.(client.InboxEvent)
		if ok {
			ibs = append(ibs, ib)
		}
		return ok && ib.Done
	})
	return ibs
}

// message waits for the message id.
func (u *user) message(id natter.MessageID) client.MessageEvent {
	u.t.Helper()
	return u.until(10*time.Second, "message "+string(id), func(e client.Event) bool {
		m, ok := e.(client.MessageEvent)
		return ok && m.Message.ID == id
	}).(client.MessageEvent)
}

// presence waits until contact's presence is status.
func (u *user) presence(contact natter.UserID, status natter.Status, d time.Duration) {
	u.t.Helper()
	u.until(d, fmt.Sprintf("%s %s", contact, status), func(e client.Event) bool {
		p, ok := e.(client.PresenceEvent)
		return ok && p.User == contact && p.Status == status
	})
}

// befriend makes a and b approved contacts.
func befriend(t *testing.T, a, b *user) {
	t.Helper()
	if err := a.Add(t.Context(), b.name); err != nil {
		t.Fatalf("%s adds %s: %v", a.name, b.name, err)
	}
	b.until(10*time.Second, "request from "+string(a.name), func(e client.Event) bool {
		ce, ok := e.(client.ContactEvent)
		return ok && ce.User == a.name && ce.State == natter.ContactPendingIn
	})
	if err := b.Accept(t.Context(), a.name); err != nil {
		t.Fatalf("%s accepts %s: %v", b.name, a.name, err)
	}
	a.until(10*time.Second, string(b.name)+" approved", func(e client.Event) bool {
		ce, ok := e.(client.ContactEvent)
		return ok && ce.User == b.name && ce.State == natter.ContactApproved
	})
}

// send sends text from u to peer and returns its ID.
func (u *user) send(to natter.UserID, text string) natter.MessageID {
	u.t.Helper()
	r, err := u.Send(u.t.Context(), to, []byte(text))
	if err != nil {
		u.t.Fatalf("%s sends to %s: %v", u.name, to, err)
	}
	return r.ID
}
