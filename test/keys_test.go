package test

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// The key directory is opaque to the server: these tests publish arbitrary
// bytes (with zero bytes and 0xff, as real keys have) and check that they come
// back as published, to whom, and how often.

func blob(s string) []byte { return append([]byte{0, 0xff}, s...) }

func prekeys(prefix string, from, n int) [][]byte {
	var out [][]byte
	for i := range n {
		out = append(out, blob(fmt.Sprintf("%s-%04d", prefix, from+i)))
	}
	return out
}

// fetch asks for user's keys, claiming prekeys of the devices in claim.
func (r *raw) fetch(user natter.UserID, claim ...natter.DeviceID) *wire.Keys {
	r.t.Helper()
	k := r.call(wire.FetchKeys{User: user, Claim: claim}, wire.TKeys).(*wire.Keys)
	if k.User != user {
		r.t.Fatalf("%s: Keys for %s, asked for %s", r.user, k.User, user)
	}
	return k
}

// device returns the entry of dev in k, failing the test if there is none.
func device(t *testing.T, k *wire.Keys, dev natter.DeviceID) wire.DeviceKeys {
	t.Helper()
	for _, d := range k.Devices {
		if d.Device == dev {
			return d
		}
	}
	t.Fatalf("Keys of %s has no device %s: %+v", k.User, dev, k.Devices)
	return wire.DeviceKeys{}
}

// keysChanged reads frames until a KeysChanged arrives (keeping the others).
func (r *raw) keysChanged() *wire.KeysChanged {
	r.t.Helper()
	return r.expect(wire.TKeysChanged).(*wire.KeysChanged)
}

// noKeysChanged checks that no KeysChanged is waiting for r: it makes a Ping
// round trip (pushes queued for r before it come before the Pong) and looks
// at everything that came in meanwhile.
func (r *raw) noKeysChanged() {
	r.t.Helper()
	r.call(wire.Ping{}, wire.TPong)
	for _, v := range r.queue {
		if kc, ok := v.(*wire.KeysChanged); ok {
			r.t.Fatalf("%s got %+v, want no KeysChanged", r.user, *kc)
		}
	}
}

// TestKeysPublishFetchClaim: a user publishes an identity, a bundle and
// one-time prekeys; an approved contact fetches them and each claim gets
// another prekey, oldest first; the user sees how many are left, others do
// not; a non-contact, an unknown name and a blocked user all get the same
// not_contact.
func TestKeysPublishFetchClaim(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	c := signup(t, in, "carol")
	d := signup(t, in, "dave")
	befriend(t, a, b)
	befriend(t, d, a)

	// A bundle and prekeys first, then the identity alone.
	a.call(wire.PublishKeys{Bundle: blob("alice bundle"), Prekeys: prekeys("alice", 0, 3)}, wire.TOK)
	a.call(wire.PublishKeys{Identity: blob("alice identity")}, wire.TOK)

	k := b.fetch("alice", a.device)
	if !bytes.Equal(k.Identity, blob("alice identity")) || len(k.Devices) != 1 {
		t.Fatalf("bob's fetch: %+v", k)
	}
	got := device(t, k, a.device)
	if !bytes.Equal(got.Bundle, blob("alice bundle")) || got.Cert != nil ||
		!bytes.Equal(got.Prekey, prekeys("alice", 0, 1)[0]) || got.PrekeysLeft != 0 {
		t.Fatalf("bob's first claim: %+v (prekeys_left is only for alice herself)", got)
	}
	if got2 := device(t, b.fetch("alice", a.device), a.device); !bytes.Equal(got2.Prekey, prekeys("alice", 1, 1)[0]) {
		t.Fatalf("bob's second claim got %q, want the next prekey", got2.Prekey)
	}
	// Without a claim: no prekey, nothing used up. alice sees her count.
	if got := device(t, b.fetch("alice"), a.device); got.Prekey != nil {
		t.Fatalf("a fetch without a claim handed out %q", got.Prekey)
	}
	if own := device(t, a.fetch("alice"), a.device); own.PrekeysLeft != 1 || own.Prekey != nil {
		t.Fatalf("alice's own fetch: %+v, want 1 prekey left", own)
	}
	// Claims of devices alice does not have, or of another user's device,
	// are ignored; a device named twice gives one prekey.
	k = b.fetch("alice", "no-such-device", b.device, a.device, a.device)
	if got := device(t, k, a.device); !bytes.Equal(got.Prekey, prekeys("alice", 2, 1)[0]) || len(k.Devices) != 1 {
		t.Fatalf("claim with strangers and a repeat: %+v", k)
	}
	// None left: the device is still listed, without a prekey.
	if got := device(t, b.fetch("alice", a.device), a.device); got.Prekey != nil {
		t.Fatalf("claim of an empty stock got %q", got.Prekey)
	}
	// bob has published nothing: an empty key set, not an error.
	if k := a.fetch("bob"); k.Identity != nil || len(k.Devices) != 0 {
		t.Fatalf("keys of a user who published nothing: %+v", k)
	}

	// dave was a contact; alice blocks him. Then he is refused exactly like
	// carol (never a contact) and like a name that does not exist.
	a.call(wire.ContactOp{Op: natter.OpBlock, User: "dave"}, wire.TOK)
	for _, tc := range []struct {
		name string
		from *raw
		user natter.UserID
	}{
		{"non-contact", c, "alice"},
		{"blocked by alice", d, "alice"},
		{"alice fetching whom she blocked", a, "dave"},
		{"unknown user", b, "nobody"},
		{"invalid name", b, "No Such"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.from.try(wire.FetchKeys{User: tc.user, Claim: []natter.DeviceID{a.device}}, wire.TKeys)
			if e, ok := err.(*wire.Err); !ok || e.Code != wire.CodeNotContact || e.Message != fmt.Sprintf("%s is not your contact", tc.user) {
				t.Fatalf("FetchKeys(%s) by %s: %v, want the not_contact every contact-only request gets", tc.user, tc.from.user, err)
			}
		})
	}
}

// TestKeysIdentityConflictResetCerts: a different identity without reset is
// key_conflict and changes nothing; a device certifies another device of
// the same user; a reset replaces the identity and drops every cert.
func TestKeysIdentityConflictResetCerts(t *testing.T) {
	in := servertest.Start(t)
	a1 := signup(t, in, "alice")
	a2 := login(t, in, "alice", "")
	a2.drainLogin()
	b := signup(t, in, "bob")
	befriend(t, a1, b)

	a1.call(wire.PublishKeys{Identity: blob("id-1"), Bundle: blob("bundle a1")}, wire.TOK)
	a2.call(wire.PublishKeys{Bundle: blob("bundle a2"), Prekeys: prekeys("a2", 0, 2)}, wire.TOK)
	// a1 holds the identity and approves a2.
	a1.call(wire.PublishKeys{Certs: []wire.DeviceCert{{Device: a2.device, Cert: blob("a2 signed by id-1")}}}, wire.TOK)
	k := b.fetch("alice")
	if got := device(t, k, a2.device); !bytes.Equal(got.Cert, blob("a2 signed by id-1")) || !bytes.Equal(got.Bundle, blob("bundle a2")) {
		t.Fatalf("a2 after a1's cert: %+v", got)
	}
	if want := slices.Sorted(slices.Values([]natter.DeviceID{a1.device, a2.device})); len(k.Devices) != 2 ||
		k.Devices[0].Device != want[0] || k.Devices[1].Device != want[1] {
		t.Fatalf("devices %+v, want %v in order", k.Devices, want)
	}

	// A cert for a device that published no bundle is bad_request (and so
	// is one for a device of another user: it names no device of alice).
	for _, dev := range []natter.DeviceID{"never-published", b.device} {
		_, err := a1.try(wire.PublishKeys{Certs: []wire.DeviceCert{{Device: dev, Cert: blob("c")}}}, wire.TOK)
		if errCode(err) != wire.CodeBadRequest {
			t.Fatalf("cert for %s: %v, want bad_request", dev, err)
		}
	}

	// A different identity without reset: key_conflict, nothing changes,
	// and nothing after it in the frame is applied either.
	_, err := a2.try(wire.PublishKeys{Identity: blob("id-2"), Bundle: blob("bundle a2 v2")}, wire.TOK)
	if errCode(err) != wire.CodeKeyConflict {
		t.Fatalf("a different identity without reset: %v, want key_conflict", err)
	}
	k = b.fetch("alice")
	if !bytes.Equal(k.Identity, blob("id-1")) || !bytes.Equal(device(t, k, a2.device).Bundle, blob("bundle a2")) ||
		device(t, k, a2.device).Cert == nil {
		t.Fatalf("after key_conflict: %+v", k)
	}
	// The same identity again is fine.
	a1.call(wire.PublishKeys{Identity: blob("id-1")}, wire.TOK)

	// Reset: the identity is replaced, every cert is gone, bundles and
	// prekeys stay.
	a2.call(wire.PublishKeys{Identity: blob("id-2"), Reset: true}, wire.TOK)
	k = a2.fetch("alice")
	if !bytes.Equal(k.Identity, blob("id-2")) {
		t.Fatalf("identity after reset: %q", k.Identity)
	}
	for _, d := range k.Devices {
		if d.Cert != nil {
			t.Fatalf("device %s kept its cert across a reset: %q", d.Device, d.Cert)
		}
	}
	if got := device(t, k, a2.device); !bytes.Equal(got.Bundle, blob("bundle a2")) || got.PrekeysLeft != 2 {
		t.Fatalf("a2 after reset: %+v, want its bundle and 2 prekeys", got)
	}
	// Reset without an identity is malformed.
	if _, err := a1.try(wire.PublishKeys{Reset: true}, wire.TOK); errCode(err) != wire.CodeBadRequest {
		t.Fatalf("reset without an identity: %v", err)
	}
}

// TestKeysLimits: every limit is a clear error, nothing of a refused frame
// is stored, and the connection goes on.
func TestKeysLimits(t *testing.T) {
	in := servertest.Start(t)
	a := signup(t, in, "alice")

	// Prekeys before any bundle: bad_request.
	if _, err := a.try(wire.PublishKeys{Prekeys: prekeys("p", 0, 1)}, wire.TOK); errCode(err) != wire.CodeBadRequest {
		t.Fatalf("prekeys before a bundle: %v", err)
	}
	a.call(wire.PublishKeys{Bundle: blob("b")}, wire.TOK)

	certs := func(n, size int) []wire.DeviceCert {
		var cs []wire.DeviceCert
		for range n {
			cs = append(cs, wire.DeviceCert{Device: a.device, Cert: make([]byte, size)})
		}
		return cs
	}
	for _, tc := range []struct {
		name string
		m    wire.PublishKeys
		code wire.Code
	}{
		{"identity over 256 bytes", wire.PublishKeys{Identity: make([]byte, 257)}, wire.CodeTooLarge},
		{"bundle over 16 KiB", wire.PublishKeys{Identity: blob("id"), Bundle: make([]byte, 16<<10+1)}, wire.CodeTooLarge},
		{"101 prekeys", wire.PublishKeys{Identity: blob("id"), Prekeys: prekeys("p", 0, 101)}, wire.CodeTooLarge},
		{"prekey over 4 KiB", wire.PublishKeys{Prekeys: [][]byte{blob("ok"), make([]byte, 4<<10+1)}}, wire.CodeTooLarge},
		{"empty prekey", wire.PublishKeys{Prekeys: [][]byte{blob("ok"), {}}}, wire.CodeBadRequest},
		{"33 certs", wire.PublishKeys{Certs: certs(33, 10)}, wire.CodeTooLarge},
		{"cert over 512 bytes", wire.PublishKeys{Certs: certs(1, 513)}, wire.CodeTooLarge},
		{"empty cert", wire.PublishKeys{Certs: certs(1, 0)}, wire.CodeBadRequest},
		{"cert for an invalid device ID", wire.PublishKeys{Certs: []wire.DeviceCert{{Device: "no spaces", Cert: blob("c")}}}, wire.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.try(tc.m, wire.TOK)
			if e, ok := err.(*wire.Err); !ok || e.Code != tc.code || e.Message == "" {
				t.Fatalf("%v, want %s with a message", err, tc.code)
			}
		})
	}
	// Nothing of the refused frames was stored (they carried an identity
	// and prekeys), and the connection still answers.
	a.call(wire.Ping{}, wire.TPong)
	k := a.fetch("alice")
	if k.Identity != nil || device(t, k, a.device).PrekeysLeft != 0 {
		t.Fatalf("refused frames left key material behind: %+v", k)
	}

	// The sizes at the limits are accepted.
	a.call(wire.PublishKeys{Identity: make([]byte, 256), Bundle: make([]byte, 16<<10),
		Prekeys: append(prekeys("p", 0, 99), make([]byte, 4<<10)), Certs: certs(32, 512)}, wire.TOK)

	// A device holds at most 200 prekeys: the third frame of 100 is refused
	// whole.
	a.call(wire.PublishKeys{Prekeys: prekeys("p", 100, 100)}, wire.TOK)
	_, err := a.try(wire.PublishKeys{Prekeys: prekeys("p", 200, 1)}, wire.TOK)
	if e, ok := err.(*wire.Err); !ok || e.Code != wire.CodeTooLarge {
		t.Fatalf("prekey 201: %v, want too_large", err)
	}
	if left := device(t, a.fetch("alice"), a.device).PrekeysLeft; left != natter.MaxPrekeys {
		t.Fatalf("%d prekeys held, want %d", left, natter.MaxPrekeys)
	}

	// FetchKeys: too many devices to claim, or an invalid one.
	many := make([]natter.DeviceID, 65)
	for i := range many {
		many[i] = natter.DeviceID(fmt.Sprint("d", i))
	}
	if _, err := a.try(wire.FetchKeys{User: "alice", Claim: many}, wire.TKeys); errCode(err) != wire.CodeTooLarge {
		t.Fatalf("claim of 65 devices: %v", err)
	}
	if _, err := a.try(wire.FetchKeys{User: "alice", Claim: []natter.DeviceID{"bad id"}}, wire.TKeys); errCode(err) != wire.CodeBadRequest {
		t.Fatalf("claim of an invalid device ID: %v", err)
	}
	a.call(wire.Ping{}, wire.TPong)
}

// TestKeysChanged: a change to alice's keys reaches her other devices and
// her online approved contacts, not the connection that made it, not a
// non-contact, a pending contact or a blocked user; a republish of the same
// keys announces nothing; a claim that leaves fewer than 20 prekeys tells
// the owning device alone.
func TestKeysChanged(t *testing.T) {
	in := servertest.Start(t)
	a1 := signup(t, in, "alice")
	a2 := login(t, in, "alice", "")
	a2.drainLogin()
	b := signup(t, in, "bob")   // approved contact
	c := signup(t, in, "carol") // no relation
	d := signup(t, in, "dave")  // asked alice; pending
	e := signup(t, in, "erin")  // was a contact, then blocked alice
	f := signup(t, in, "frank") // was a contact, then alice blocked him
	befriend(t, a1, b)
	befriend(t, a1, e)
	befriend(t, a1, f)
	d.call(wire.ContactOp{Op: natter.OpAdd, User: "alice"}, wire.TOK)
	e.call(wire.ContactOp{Op: natter.OpBlock, User: "alice"}, wire.TOK)
	a1.call(wire.ContactOp{Op: natter.OpBlock, User: "frank"}, wire.TOK)
	outsiders := []*raw{c, d, e, f}

	check := func(t *testing.T, want wire.KeysChanged) {
		t.Helper()
		for _, r := range []*raw{a2, b} {
			if got := r.keysChanged(); *got != want {
				t.Fatalf("%s got %+v, want %+v", r.user, *got, want)
			}
		}
		a1.noKeysChanged()
		for _, r := range outsiders {
			r.noKeysChanged()
		}
	}

	t.Run("bundle", func(t *testing.T) {
		a1.call(wire.PublishKeys{Bundle: blob("a1 bundle"), Prekeys: prekeys("a1", 0, 21)}, wire.TOK)
		check(t, wire.KeysChanged{User: "alice", Device: a1.device})
	})
	t.Run("unchanged", func(t *testing.T) {
		a1.call(wire.PublishKeys{Bundle: blob("a1 bundle")}, wire.TOK)
		for _, r := range append([]*raw{a1, a2, b}, outsiders...) {
			r.noKeysChanged()
		}
	})
	t.Run("cert", func(t *testing.T) {
		a2.call(wire.PublishKeys{Bundle: blob("a2 bundle")}, wire.TOK)
		// a2's own bundle: a1 and bob hear of it.
		for _, r := range []*raw{a1, b} {
			if got := r.keysChanged(); got.Device != a2.device {
				t.Fatalf("%s got %+v for a2's bundle", r.user, *got)
			}
		}
		a1.call(wire.PublishKeys{Certs: []wire.DeviceCert{{Device: a2.device, Cert: blob("cert")}}}, wire.TOK)
		check(t, wire.KeysChanged{User: "alice", Device: a2.device})
	})
	t.Run("identity", func(t *testing.T) {
		a1.call(wire.PublishKeys{Identity: blob("id")}, wire.TOK)
		check(t, wire.KeysChanged{User: "alice"})
		a1.call(wire.PublishKeys{Identity: blob("id 2"), Reset: true}, wire.TOK)
		check(t, wire.KeysChanged{User: "alice"})
	})
	t.Run("prekeys low", func(t *testing.T) {
		// 21 prekeys: the first claim leaves 20 (not low), the second 19.
		b.fetch("alice", a1.device)
		b.call(wire.Ping{}, wire.TPong) // bob's requests are handled in order: the claim's pushes are out
		a1.noKeysChanged()
		b.fetch("alice", a1.device)
		if got := a1.keysChanged(); *got != (wire.KeysChanged{User: "alice", Device: a1.device, PrekeysLow: true}) {
			t.Fatalf("a1 got %+v", *got)
		}
		b.call(wire.Ping{}, wire.TPong)
		for _, r := range append([]*raw{a2, b}, outsiders...) {
			r.noKeysChanged()
		}
		// alice's own device is told even when alice herself claimed.
		a2.fetch("alice", a1.device)
		if got := a1.keysChanged(); !got.PrekeysLow {
			t.Fatalf("a1 got %+v", *got)
		}
	})
}

// TestPrekeyClaimsSurviveSIGKILL: prekeys claimed while natterd is killed
// with SIGKILL are never handed out again after the restart: every prekey is
// handed out at most once across the crash.
func TestPrekeyClaimsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills natterd")
	}
	dir := t.TempDir()
	p := startProc(t, dir, "127.0.0.1:0")
	a := p.signup(t, "alice")
	b := p.signup(t, "bob")
	befriend(t, a, b)
	a.call(wire.PublishKeys{Bundle: blob("bundle"), Prekeys: prekeys("pk", 0, 100)}, wire.TOK)
	a.call(wire.PublishKeys{Prekeys: prekeys("pk", 100, 100)}, wire.TOK)
	stored := map[string]bool{}
	for _, pk := range prekeys("pk", 0, 200) {
		stored[string(pk)] = true
	}

	// bob pipelines claims; natterd is killed among them.
	var (
		mu      sync.Mutex
		before  []string
		wg      sync.WaitGroup
		written int
	)
	stop := make(chan struct{})
	wg.Go(func() {
		for n := 0; n < 400; n++ {
			select {
			case <-stop:
				return
			default:
			}
			frame, _ := wire.Encode(wire.FetchKeys{Ref: uint64(1000 + n), User: "alice", Claim: []natter.DeviceID{a.device}})
			b.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := b.c.Write(frame); err != nil {
				return
			}
			mu.Lock()
			written++
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	})
	wg.Go(func() {
		for {
			b.c.SetReadDeadline(time.Now().Add(20 * time.Second))
			f, err := b.r.ReadFrame()
			if err != nil {
				return
			}
			if f.Type != wire.TKeys {
				continue
			}
			v, err := wire.Decode(f)
			if err != nil {
				continue
			}
			for _, d := range v.(*wire.Keys).Devices {
				if d.Prekey != nil {
					mu.Lock()
					before = append(before, string(d.Prekey))
					mu.Unlock()
				}
			}
		}
	})
	// Kill once some claims were answered, with more in flight.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(before)
		mu.Unlock()
		if n >= 40 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	close(stop)
	b.c.Close()
	wg.Wait()
	if len(before) < 40 || len(before) >= 200 {
		t.Fatalf("the kill should land among the claims: %d prekeys received of 200 (%d claims written)", len(before), written)
	}

	// After the restart, claim until the stock is empty.
	p2 := startProc(t, dir, "127.0.0.1:0")
	b2 := p2.hello(t)
	b2.call(wire.Login{User: "bob", Password: "password-bob", Device: b.device}, wire.TAuthed)
	var after []string
	for range 201 {
		k := b2.fetch("alice", a.device)
		pk := device(t, k, a.device).Prekey
		if pk == nil {
			break
		}
		after = append(after, string(pk))
	}
	seen := map[string]bool{}
	for _, pk := range append(slices.Clone(before), after...) {
		if seen[pk] {
			t.Fatalf("prekey %q handed out twice across the crash", pk)
		}
		if !stored[pk] {
			t.Fatalf("prekey %q was never published", pk)
		}
		seen[pk] = true
	}
	// Claims whose answer the kill cut off are gone too: at most a claim
	// window's worth may be lost, never one given twice.
	t.Logf("before SIGKILL: %d prekeys received (%d claims written); after restart: %d; lost with their answers: %d",
		len(before), written, len(after), 200-len(before)-len(after))
	if len(before)+len(after) > 200 {
		t.Fatalf("%d prekeys handed out, 200 published", len(before)+len(after))
	}
}
