package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/leaktest"
	"github.com/natterim/natter/internal/tlscert"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// TestMain fails the run if any of the SDK's goroutines outlive the tests:
// every test closes its Clients, and Close must stop them all (the
// peer-to-peer layer's included).
func TestMain(m *testing.M) {
	leaktest.Main(m,
		"client.(*conn).readLoop", "client.(*conn).writeLoop",
		"client.(*Client).dispatchLoop", "client.(*Client).reconnectLoop",
		"client.(*direct).")
}

// fakeServer is a scripted natterd for unit tests: it does TLS and the
// Hello/Welcome exchange, then the test plays the server's part frame by
// frame on each accepted connection.
type fakeServer struct {
	t       testing.TB
	ln      net.Listener
	roots   *x509.CertPool
	welcome wire.Welcome
	hello   func(*fakeConn) bool // if set, replaces sending Welcome; false closes
	conns   chan *fakeConn
	keys    *fakeDir
}

func newFakeServer(t testing.TB) *fakeServer {
	t.Helper()
	cert, err := tlscert.LoadOrCreate(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeServer{
		t: t, ln: ln, roots: roots,
		welcome: wire.Welcome{V: wire.Version, Server: "fake", Node: "n1", MaxFrame: wire.DefaultMaxFrame, MaxBody: wire.MaxBody, Keepalive: 30},
		conns:   make(chan *fakeConn, 16),
		keys:    newFakeDir(),
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
		for {
			select {
			case fc := <-fs.conns:
				fc.nc.Close()
			default:
				return
			}
		}
	})
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			fc := &fakeConn{t: t, nc: nc, r: wire.NewReader(nc, 0), keys: fs.keys}
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			if _, ok := fc.tryRead().(*wire.Hello); !ok {
				nc.Close()
				continue
			}
			nc.SetDeadline(time.Time{})
			if fs.hello != nil {
				if !fs.hello(fc) {
					nc.Close()
					continue
				}
			} else {
				fc.write(fs.welcome)
			}
			fs.conns <- fc
		}
	}()
	return fs
}

// opts returns Options that reach and trust the fake server.
func (fs *fakeServer) opts(dev natter.DeviceID) client.Options {
	return client.Options{
		Addr:         fs.ln.Addr().String(),
		TLSConfig:    &tls.Config{RootCAs: fs.roots, ServerName: "127.0.0.1"},
		Device:       dev,
		ClientName:   "client-test",
		ReconnectMin: 10 * time.Millisecond,
		ReconnectMax: 50 * time.Millisecond,
	}
}

// accept returns the next connection that completed Hello/Welcome.
func (fs *fakeServer) accept() *fakeConn {
	fs.t.Helper()
	select {
	case fc := <-fs.conns:
		return fc
	case <-time.After(5 * time.Second):
		fs.t.Fatal("fake server: no connection")
		return nil
	}
}

// noConn fails if a connection arrives within d.
func (fs *fakeServer) noConn(d time.Duration) {
	fs.t.Helper()
	select {
	case fc := <-fs.conns:
		fc.nc.Close()
		fs.t.Fatal("fake server: unexpected connection")
	case <-time.After(d):
	}
}

// fakeConn is the server's side of one connection.
type fakeConn struct {
	t  testing.TB
	nc net.Conn
	r  *wire.Reader

	user natter.UserID // set by authed
	dev  natter.DeviceID
	keys *fakeDir // the fake server's key directory
	// heldAcks are Acks keySetup read past, for expectAck.
	heldAcks []*wire.Ack
}

// fakeDir is the fake server's key directory: what clients publish, and
// real keys for "bob", so that the SDK can seal messages to him. Frames of
// the key directory are answered as they come, out of the tests' script.
type fakeDir struct {
	sync.Mutex
	users map[natter.UserID]*wire.Keys
}

// bobKeys are real keys of bob's device b1, made once.
var bobKeys = sync.OnceValue(func() *wire.Keys {
	kr, err := seal.New("bob", "b1")
	if err == nil {
		err = kr.CreateIdentity()
	}
	if err != nil {
		panic(err)
	}
	b, _ := kr.Bundle()
	cert, _ := kr.Certify("b1", kr.SignKey())
	return &wire.Keys{User: "bob", Identity: kr.IdentityKey(),
		Devices: []wire.DeviceKeys{{Device: "b1", Bundle: b, Cert: cert}}}
})

func newFakeDir() *fakeDir {
	return &fakeDir{users: map[natter.UserID]*wire.Keys{"bob": bobKeys()}}
}

// serveKeys answers a key-directory frame and reports whether v was one.
func (fc *fakeConn) serveKeys(v any) bool {
	if fc.keys == nil {
		fc.keys = newFakeDir()
	}
	fakeKeys := fc.keys
	fakeKeys.Lock()
	defer fakeKeys.Unlock()
	switch v := v.(type) {
	case *wire.ArchiveGet: // the archive, asked after login: off
		fc.write(wire.ArchiveState{Ref: v.Ref})
		return true
	case *wire.FetchKeys:
		k := fakeKeys.users[v.User]
		if k == nil || v.User == "alice" && fc.user != "alice" {
			k = &wire.Keys{User: v.User}
		}
		out := *k
		out.Ref = v.Ref
		fc.write(out)
		return true
	case *wire.PublishKeys:
		k := fakeKeys.users[fc.user]
		if k == nil || v.Identity != nil {
			k = &wire.Keys{User: fc.user, Identity: v.Identity}
			fakeKeys.users[fc.user] = k
		}
		var d *wire.DeviceKeys
		for i := range k.Devices {
			if k.Devices[i].Device == fc.dev {
				d = &k.Devices[i]
			}
		}
		if d == nil {
			k.Devices = append(k.Devices, wire.DeviceKeys{Device: fc.dev})
			d = &k.Devices[len(k.Devices)-1]
		}
		if v.Bundle != nil {
			d.Bundle = v.Bundle
		}
		for _, c := range v.Certs {
			if c.Device == fc.dev {
				d.Cert = c.Cert
			}
		}
		fc.write(wire.OK{Ref: v.Ref})
		return true
	}
	return false
}

func (fc *fakeConn) tryRead() any {
	f, err := fc.r.ReadFrame()
	if err != nil {
		return err
	}
	v, err := wire.Decode(f)
	if err != nil {
		return err
	}
	return v
}

// read returns the next frame from the client other than Ping and Ack
// (which the client sends on its own schedule), answering Pings.
func (fc *fakeConn) read() any {
	fc.t.Helper()
	for {
		v := fc.readAny()
		if fc.serveKeys(v) {
			continue
		}
		switch v := v.(type) {
		case *wire.Ping:
			fc.write(wire.Pong{Ref: v.Ref})
		case *wire.Ack:
		default:
			return v
		}
	}
}

// readAny returns the next frame from the client, whatever it is.
func (fc *fakeConn) readAny() any {
	fc.t.Helper()
	fc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	v := fc.tryRead()
	if err, ok := v.(error); ok {
		fc.t.Fatalf("fake server: read: %v", err)
	}
	return v
}

// expect reads the next frame (other than Ping and Ack) and fails unless
// it is a *T.
func expect[T any](fc *fakeConn) *T {
	fc.t.Helper()
	v := fc.read()
	t, ok := v.(*T)
	if !ok {
		fc.t.Fatalf("fake server: got %T %+v, want %T", v, v, t)
	}
	return t
}

// expectAck reads frames until an Ack for at least upto arrives.
func (fc *fakeConn) expectAck(upto uint64) {
	fc.t.Helper()
	for {
		var v any
		if len(fc.heldAcks) > 0 {
			v, fc.heldAcks = fc.heldAcks[0], fc.heldAcks[1:]
		} else {
			v = fc.readAny()
		}
		if fc.serveKeys(v) {
			continue
		}
		switch v := v.(type) {
		case *wire.Ack:
			if v.Upto > upto {
				fc.t.Fatalf("fake server: ack %d, want %d", v.Upto, upto)
			}
			if v.Upto == upto {
				return
			}
		case *wire.Ping:
			fc.write(wire.Pong{Ref: v.Ref})
		default:
			fc.t.Fatalf("fake server: got %T %+v while waiting for ack %d", v, v, upto)
		}
	}
}

func (fc *fakeConn) write(vs ...any) {
	fc.t.Helper()
	var b []byte
	for _, v := range vs {
		f, err := wire.Encode(v)
		if err != nil {
			fc.t.Fatal(err)
		}
		b = append(b, f...)
	}
	fc.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := fc.nc.Write(b); err != nil {
		fc.t.Errorf("fake server: write: %v", err)
	}
}

func (fc *fakeConn) close() { fc.nc.Close() }

// keySetup plays the server's part in the key setup that follows an
// explicit login: the device fetches its user's keys and publishes its own.
func (fc *fakeConn) keySetup() {
	fc.t.Helper()
	for _, want := range []string{"fetch", "publish"} {
		v := fc.readAny()
		for {
			if p, ok := v.(*wire.Ping); ok {
				// With a short keepalive (TestKeepalive's 1 s) the SDK
				// may ping while it makes its prekeys.
				fc.write(wire.Pong{Ref: p.Ref})
			} else if a, ok := v.(*wire.Ack); ok {
				fc.heldAcks = append(fc.heldAcks, a) // for expectAck
			} else {
				break
			}
			v = fc.readAny()
		}
		switch v.(type) {
		case *wire.FetchKeys, *wire.PublishKeys:
			if (want == "fetch") != isFetch(v) {
				fc.t.Fatalf("fake server: got %T, want %s keys", v, want)
			}
			fc.serveKeys(v)
		default:
			fc.t.Fatalf("fake server: got %T %+v during the key setup", v, v)
		}
	}
}

func isFetch(v any) bool { _, ok := v.(*wire.FetchKeys); return ok }

// authed answers a Signup, Login or Resume of user with Authed, the contact
// list and an inbox of the given groups (which covers through).
func (fc *fakeConn) authed(ref uint64, user natter.UserID, dev natter.DeviceID, through uint64, groups ...wire.InboxGroup) {
	fc.t.Helper()
	fc.user, fc.dev = user, dev
	fc.write(
		wire.Authed{Ref: ref, User: user, Device: dev, Token: "tok-" + string(user), Expires: time.Now().Add(time.Hour)},
		wire.Contacts{Contacts: []wire.Contact{}},
		wire.Inbox{Groups: groups, Through: through, Done: true},
	)
}

// dialLogin dials the fake server and logs in as user, with an empty
// inbox through `through`; it returns the client, the server's side of
// the connection, and a reader of the client's events past the login's
// ContactsEvent and InboxEvent.
func dialLogin(t *testing.T, fs *fakeServer, o client.Options, user natter.UserID, through uint64) (*client.Client, *fakeConn, *events) {
	t.Helper()
	ctx := t.Context()
	c, err := client.Dial(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fc := fs.accept()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Login(ctx, user, "password")
		errc <- err
	}()
	l := expect[wire.Login](fc)
	if l.User != user || l.Device != o.Device || l.Password != "password" {
		t.Fatalf("login frame %+v", l)
	}
	fc.authed(l.Ref, user, o.Device, through)
	fc.keySetup()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	ev := newEvents(t, c)
	ev.want(func(e client.Event) bool { _, ok := e.(client.ContactsEvent); return ok })
	ev.want(func(e client.Event) bool {
		ib, ok := e.(client.InboxEvent)
		return ok && ib.Done && len(ib.Groups) == 0
	})
	return c, fc, ev
}

// events reads a Client's events for a test.
type events struct {
	t  testing.TB
	ch <-chan client.Event
}

func newEvents(t testing.TB, c *client.Client) *events { return &events{t: t, ch: c.Events()} }

// next returns the next event, failing after a timeout.
func (e *events) next() client.Event {
	e.t.Helper()
	select {
	case ev, ok := <-e.ch:
		if !ok {
			e.t.Fatal("events closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		e.t.Fatal("no event")
		return nil
	}
}

// want fails unless the next event satisfies ok.
func (e *events) want(ok func(client.Event) bool) client.Event {
	e.t.Helper()
	ev := e.next()
	if !ok(ev) {
		e.t.Fatalf("unexpected event %T %+v", ev, ev)
	}
	return ev
}

// none fails if an event arrives within d.
func (e *events) none(d time.Duration) {
	e.t.Helper()
	select {
	case ev := <-e.ch:
		e.t.Fatalf("unexpected event %T %+v", ev, ev)
	case <-time.After(d):
	}
}

// msg wants the next event to be the MessageEvent of ID id.
func (e *events) msg(id natter.MessageID, offline bool) client.MessageEvent {
	e.t.Helper()
	ev := e.next()
	me, ok := ev.(client.MessageEvent)
	if !ok || me.Message.ID != id || me.Offline != offline {
		e.t.Fatalf("got %T %+v, want message %s (offline %v)", ev, ev, id, offline)
	}
	return me
}

// conn wants the next event to be a ConnEvent with the given Up and Final.
func (e *events) conn(up, final bool) client.ConnEvent {
	e.t.Helper()
	ev := e.next()
	ce, ok := ev.(client.ConnEvent)
	if !ok || ce.Up != up || ce.Final != final {
		e.t.Fatalf("got %T %+v, want ConnEvent{Up: %v, Final: %v}", ev, ev, up, final)
	}
	return ce
}

// wireCode returns the code of the *wire.Err in err's chain, or "".
func wireCode(err error) wire.Code {
	var we *wire.Err
	if errors.As(err, &we) {
		return we.Code
	}
	return ""
}

// testMsg makes a pushed message from `from` to `to`.
func testMsg(seq uint64, id natter.MessageID, from, to natter.UserID, conv uint64) wire.Msg {
	return wire.Msg{Seq: seq, Message: wire.Message{
		ID: id, From: from, FromDevice: "dev-" + natter.DeviceID(from), To: to,
		Body: []byte("body of " + string(id)), ConvSeq: conv, SentAt: time.Now().UTC(),
	}}
}

var _ = context.Background
