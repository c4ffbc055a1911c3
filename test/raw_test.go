package test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// raw is a protocol-level test client: it writes frames and reads them one
// by one, with nothing hidden.
type raw struct {
	t      *testing.T
	c      net.Conn
	r      *wire.Reader
	ref    uint64
	user   natter.UserID
	device natter.DeviceID
	token  string
	queue  []any // frames read while waiting for something else
}

// dialRaw connects over TLS without saying anything.
func dialRaw(t *testing.T, in *servertest.Instance) *raw {
	t.Helper()
	return dialTo(t, in.Addr, in.ClientTLS())
}

// dialTo connects to addr over TLS without saying anything.
func dialTo(t *testing.T, addr string, cfg *tls.Config) *raw {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, r: wire.NewReader(c, 4<<20)}
}

// hello connects and says Hello.
func hello(t *testing.T, in *servertest.Instance) *raw {
	t.Helper()
	r := dialRaw(t, in)
	r.send(wire.Hello{V: wire.Version, Client: "rawtest"})
	r.expect(wire.TWelcome)
	return r
}

// signup creates user and logs in on a new connection.
func signup(t *testing.T, in *servertest.Instance, user string) *raw {
	t.Helper()
	r := hello(t, in)
	r.device = natter.NewDeviceID()
	a := r.call(wire.Signup{User: natter.UserID(user), Password: "password-" + user, Device: r.device}, wire.TAuthed).(*wire.Authed)
	r.user, r.token = a.User, a.Token
	r.drainLogin()
	return r
}

// login logs user in on a new connection (device: a new one unless given).
func login(t *testing.T, in *servertest.Instance, user string, device natter.DeviceID) *raw {
	t.Helper()
	r := hello(t, in)
	if device == "" {
		device = natter.NewDeviceID()
	}
	r.device = device
	a := r.call(wire.Login{User: natter.UserID(user), Password: "password-" + user, Device: device}, wire.TAuthed).(*wire.Authed)
	r.user, r.token = a.User, a.Token
	return r
}

// drainLogin reads the frames that follow Authed up to the last Inbox.
func (r *raw) drainLogin() (contacts *wire.Contacts, inbox []*wire.Inbox) {
	r.t.Helper()
	for {
		switch v := r.next().(type) {
		case *wire.Contacts:
			contacts = v
		case *wire.Inbox:
			inbox = append(inbox, v)
			if v.Done {
				return contacts, inbox
			}
		}
	}
}

func (r *raw) send(v any) {
	r.t.Helper()
	b, err := wire.Encode(v)
	if err != nil {
		r.t.Fatal(err)
	}
	r.writeBytes(b)
}

func (r *raw) writeBytes(b []byte) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// read reads one frame (or returns the read error).
func (r *raw) read(timeout time.Duration) (any, error) {
	if len(r.queue) > 0 {
		v := r.queue[0]
		r.queue = r.queue[1:]
		return v, nil
	}
	r.c.SetReadDeadline(time.Now().Add(timeout))
	f, err := r.r.ReadFrame()
	if err != nil {
		return nil, err
	}
	v, err := wire.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", f.Type, err)
	}
	return v, nil
}

func (r *raw) next() any {
	r.t.Helper()
	v, err := r.read(10 * time.Second)
	if err != nil {
		r.t.Fatalf("%s: read: %v", r.user, err)
	}
	return v
}

// expect reads frames until one of type t arrives, keeping the others for
// later reads; an Error or Bye instead fails the test.
func (r *raw) expect(t wire.Type) any {
	r.t.Helper()
	var skipped []any
	defer func() { r.queue = append(skipped, r.queue...) }()
	for {
		v := r.next()
		got, _ := wire.TypeOf(v)
		if got == t {
			return v
		}
		if got == wire.TError || got == wire.TBye {
			r.t.Fatalf("%s: waiting for %s, got %s %+v", r.user, t, got, v)
		}
		skipped = append(skipped, v)
	}
}

// call sends a request (its Ref set here) and waits for its answer of type
// want; an Error for it fails the test.
func (r *raw) call(v any, want wire.Type) any {
	r.t.Helper()
	ans, err := r.try(v, want)
	if err != nil {
		r.t.Fatalf("%s: %T: %v", r.user, v, err)
	}
	return ans
}

// try is call that returns an Error answer as *wire.Err.
func (r *raw) try(v any, want wire.Type) (any, error) {
	r.t.Helper()
	r.ref++
	ref := r.ref
	setRef(r.t, &v, ref)
	r.send(v)
	var skipped []any
	defer func() { r.queue = append(skipped, r.queue...) }()
	for {
		ans := r.next()
		switch a := ans.(type) {
		case *wire.Error:
			if a.Ref == ref {
				return nil, a.AsError()
			}
		case *wire.Bye:
			return nil, fmt.Errorf("bye: %s: %s", a.Code, a.Message)
		}
		if got, _ := wire.TypeOf(ans); got == want && refOf(ans) == ref {
			return ans, nil
		}
		skipped = append(skipped, ans)
	}
}

// closed waits for the server to close the connection, returning the Bye it
// sent first (if any).
func (r *raw) closed(timeout time.Duration) *wire.Bye {
	r.t.Helper()
	var bye *wire.Bye
	deadline := time.Now().Add(timeout)
	for {
		v, err := r.read(time.Until(deadline))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.t.Fatalf("connection still open after %v", timeout)
			}
			return bye
		}
		if b, ok := v.(*wire.Bye); ok {
			bye = b
		}
	}
}

func errCode(err error) wire.Code {
	var e *wire.Err
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
