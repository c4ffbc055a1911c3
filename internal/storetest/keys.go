package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/natterim/natter"
)

// Key material in these tests is binary, with zero bytes and 0xff, as real
// keys are.
func key(s string) []byte { return append([]byte{0x00, 0xff}, s...) }

// userKeys calls UserKeys and fails t on error.
func userKeys(t *testing.T, s natter.Store, user natter.UserID, claim ...natter.DeviceID) natter.KeySet {
	t.Helper()
	ks, err := s.UserKeys(t.Context(), user, claim)
	if err != nil {
		t.Fatalf("UserKeys(%s, %v): %v", user, claim, err)
	}
	return ks
}

// wantDevice is what the suite expects of one device in a KeySet. Prekey nil
// means none claimed.
type wantDevice struct {
	device       natter.DeviceID
	bundle, cert []byte
	prekey       []byte
	left         int
}

// checkKeys fails t unless ks holds identity and exactly devices, in order.
func checkKeys(t *testing.T, what string, ks natter.KeySet, identity []byte, devices ...wantDevice) {
	t.Helper()
	if !bytes.Equal(ks.Identity, identity) {
		t.Fatalf("%s: Identity %q, want %q", what, ks.Identity, identity)
	}
	var got []natter.DeviceID
	for _, d := range ks.Devices {
		got = append(got, d.Device)
	}
	var want []natter.DeviceID
	for _, d := range devices {
		want = append(want, d.device)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: devices %v, want %v", what, got, want)
	}
	for i, w := range devices {
		g := ks.Devices[i]
		switch {
		case !bytes.Equal(g.Bundle, w.bundle):
			t.Fatalf("%s: %s: Bundle %q, want %q", what, w.device, g.Bundle, w.bundle)
		case !bytes.Equal(g.Cert, w.cert):
			t.Fatalf("%s: %s: Cert %q, want %q", what, w.device, g.Cert, w.cert)
		case !bytes.Equal(g.Prekey, w.prekey):
			t.Fatalf("%s: %s: Prekey %q, want %q", what, w.device, g.Prekey, w.prekey)
		case g.PrekeysLeft != w.left:
			t.Fatalf("%s: %s: PrekeysLeft %d, want %d", what, w.device, g.PrekeysLeft, w.left)
		}
	}
}

func testIdentity(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	k1, k2, k3 := key("identity one"), key("identity two"), key("identity three")

	for _, step := range []struct {
		name    string
		user    natter.UserID
		key     []byte
		reset   bool
		changed bool
		err     error
		after   []byte // alice's identity afterwards
	}{
		{"unknown user", "nobody", k1, false, false, natter.ErrNoSuchUser, nil},
		{"empty key", "alice", nil, false, false, natter.ErrBadRequest, nil},
		{"empty key with reset", "alice", []byte{}, true, false, natter.ErrBadRequest, nil},
		{"first key", "alice", k1, false, true, nil, k1},
		{"same key", "alice", k1, false, false, nil, k1},
		{"same key with reset", "alice", k1, true, false, nil, k1},
		{"different key", "alice", k2, false, false, natter.ErrKeyConflict, k1},
		{"prefix of the key", "alice", k1[:len(k1)-1], false, false, natter.ErrKeyConflict, k1},
		{"different key with reset", "alice", k2, true, true, nil, k2},
		{"the old key again", "alice", k1, false, false, natter.ErrKeyConflict, k2},
		{"another user, the same key", "bob", k2, false, true, nil, k2},
		{"another reset", "alice", k3, true, true, nil, k3},
	} {
		t.Run(step.name, func(t *testing.T) {
			changed, err := s.SetIdentity(ctx, step.user, step.key, step.reset)
			if step.err != nil {
				wantErr(t, "SetIdentity", err, step.err)
			} else if err != nil {
				t.Fatalf("SetIdentity: %v", err)
			}
			if changed != step.changed {
				t.Fatalf("SetIdentity changed = %v, want %v", changed, step.changed)
			}
			checkKeys(t, "UserKeys(alice)", userKeys(t, s, "alice"), step.after)
		})
	}
	checkKeys(t, "UserKeys(bob)", userKeys(t, s, "bob"), k2)
}

func testBundlesAndCerts(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	put := func(t *testing.T, user natter.UserID, dev natter.DeviceID, bundle []byte, want bool) {
		t.Helper()
		changed, err := s.PutBundle(ctx, user, dev, bundle)
		if err != nil {
			t.Fatalf("PutBundle(%s/%s): %v", user, dev, err)
		}
		if changed != want {
			t.Fatalf("PutBundle(%s/%s) changed = %v, want %v", user, dev, changed, want)
		}
	}
	cert := func(t *testing.T, user natter.UserID, dev natter.DeviceID, c []byte, want bool) {
		t.Helper()
		changed, err := s.PutCert(ctx, user, dev, c)
		if err != nil {
			t.Fatalf("PutCert(%s/%s): %v", user, dev, err)
		}
		if changed != want {
			t.Fatalf("PutCert(%s/%s) changed = %v, want %v", user, dev, changed, want)
		}
	}

	t.Run("errors", func(t *testing.T) {
		_, err := s.PutBundle(ctx, "nobody", "phone", key("b"))
		wantErr(t, "PutBundle of an unknown user", err, natter.ErrNoSuchUser)
		_, err = s.PutBundle(ctx, "alice", "phone", nil)
		wantErr(t, "PutBundle of an empty bundle", err, natter.ErrBadRequest)
		_, err = s.PutCert(ctx, "alice", "phone", key("c"))
		wantErr(t, "PutCert of a device without a bundle", err, natter.ErrNoSuchDevice)
		_, err = s.PutCert(ctx, "nobody", "phone", key("c"))
		wantErr(t, "PutCert of an unknown user", err, natter.ErrNoSuchUser)
		checkKeys(t, "UserKeys(alice) after refused writes", userKeys(t, s, "alice"), nil)
	})

	// Devices come back ordered by ID, whatever order they published in.
	put(t, "alice", "phone", key("phone 1"), true)
	put(t, "alice", "laptop", key("laptop 1"), true)
	put(t, "alice", "b-tablet", key("tablet 1"), true)
	put(t, "bob", "phone", key("bob's phone"), true) // same device ID, other user
	checkKeys(t, "after the first bundles", userKeys(t, s, "alice"), nil,
		wantDevice{device: "b-tablet", bundle: key("tablet 1")},
		wantDevice{device: "laptop", bundle: key("laptop 1")},
		wantDevice{device: "phone", bundle: key("phone 1")})

	put(t, "alice", "phone", key("phone 1"), false) // identical
	cert(t, "alice", "phone", key("phone cert"), true)
	cert(t, "alice", "phone", key("phone cert"), false)
	if _, err := s.PutCert(ctx, "alice", "phone", nil); err == nil {
		t.Fatalf("PutCert of an empty cert: no error")
	}
	if _, err := s.AddPrekeys(ctx, "alice", "phone", [][]byte{key("pk1"), key("pk2")}); err != nil {
		t.Fatalf("AddPrekeys: %v", err)
	}
	// A new bundle keeps the cert and the prekeys.
	put(t, "alice", "phone", key("phone 2"), true)
	cert(t, "alice", "laptop", key("laptop cert"), true)
	cert(t, "alice", "laptop", key("laptop cert 2"), true)
	_, err := s.PutCert(ctx, "alice", "desktop", key("c"))
	wantErr(t, "PutCert of another device without a bundle", err, natter.ErrNoSuchDevice)
	checkKeys(t, "after updates", userKeys(t, s, "alice"), nil,
		wantDevice{device: "b-tablet", bundle: key("tablet 1")},
		wantDevice{device: "laptop", bundle: key("laptop 1"), cert: key("laptop cert 2")},
		wantDevice{device: "phone", bundle: key("phone 2"), cert: key("phone cert"), left: 2})
	checkKeys(t, "bob is untouched", userKeys(t, s, "bob"), nil,
		wantDevice{device: "phone", bundle: key("bob's phone")})
}

func testIdentityResetClearsCerts(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	for _, u := range []natter.UserID{"alice", "bob"} {
		if _, err := s.SetIdentity(ctx, u, key("id "+string(u)), false); err != nil {
			t.Fatal(err)
		}
		for _, d := range []natter.DeviceID{"laptop", "phone"} {
			if _, err := s.PutBundle(ctx, u, d, key(string(u)+"/"+string(d))); err != nil {
				t.Fatal(err)
			}
			if _, err := s.PutCert(ctx, u, d, key("cert "+string(u)+"/"+string(d))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.AddPrekeys(ctx, "alice", "laptop", [][]byte{key("pk")}); err != nil {
		t.Fatal(err)
	}

	// Without reset nothing happens to the certs.
	_, err := s.SetIdentity(ctx, "alice", key("new id"), false)
	wantErr(t, "SetIdentity without reset", err, natter.ErrKeyConflict)
	checkKeys(t, "after a refused identity change", userKeys(t, s, "alice"), key("id alice"),
		wantDevice{device: "laptop", bundle: key("alice/laptop"), cert: key("cert alice/laptop"), left: 1},
		wantDevice{device: "phone", bundle: key("alice/phone"), cert: key("cert alice/phone")})

	// A reset to the same key is no change and clears nothing.
	if changed, err := s.SetIdentity(ctx, "alice", key("id alice"), true); err != nil || changed {
		t.Fatalf("SetIdentity(same key, reset) = %v, %v; want false, nil", changed, err)
	}
	if ks := userKeys(t, s, "alice"); ks.Devices[0].Cert == nil {
		t.Fatalf("a reset to the same key cleared a cert")
	}

	if changed, err := s.SetIdentity(ctx, "alice", key("new id"), true); err != nil || !changed {
		t.Fatalf("SetIdentity(new key, reset) = %v, %v; want true, nil", changed, err)
	}
	// Bundles and prekeys stay; certs go.
	checkKeys(t, "after a reset", userKeys(t, s, "alice"), key("new id"),
		wantDevice{device: "laptop", bundle: key("alice/laptop"), left: 1},
		wantDevice{device: "phone", bundle: key("alice/phone")})
	checkKeys(t, "the other user", userKeys(t, s, "bob"), key("id bob"),
		wantDevice{device: "laptop", bundle: key("bob/laptop"), cert: key("cert bob/laptop")},
		wantDevice{device: "phone", bundle: key("bob/phone"), cert: key("cert bob/phone")})

	// New certs, signed by the new identity, can follow.
	if changed, err := s.PutCert(ctx, "alice", "phone", key("new cert")); err != nil || !changed {
		t.Fatalf("PutCert after a reset = %v, %v", changed, err)
	}
}

func testPrekeys(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	add := func(t *testing.T, dev natter.DeviceID, from, n, wantLeft int) {
		t.Helper()
		var pks [][]byte
		for i := range n {
			pks = append(pks, key(fmt.Sprintf("%s-%03d", dev, from+i)))
		}
		left, err := s.AddPrekeys(ctx, "alice", dev, pks)
		if err != nil {
			t.Fatalf("AddPrekeys(%s, %d from %d): %v", dev, n, from, err)
		}
		if left != wantLeft {
			t.Fatalf("AddPrekeys(%s, %d from %d) left = %d, want %d", dev, n, from, left, wantLeft)
		}
	}
	pk := func(dev natter.DeviceID, i int) []byte { return key(fmt.Sprintf("%s-%03d", dev, i)) }

	_, err := s.AddPrekeys(ctx, "alice", "phone", [][]byte{key("x")})
	wantErr(t, "AddPrekeys to a device without a bundle", err, natter.ErrNoSuchDevice)
	_, err = s.AddPrekeys(ctx, "nobody", "phone", [][]byte{key("x")})
	wantErr(t, "AddPrekeys of an unknown user", err, natter.ErrNoSuchUser)
	for _, d := range []natter.DeviceID{"laptop", "phone"} {
		if _, err := s.PutBundle(ctx, "alice", d, key(string(d))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutBundle(ctx, "bob", "phone", key("bob")); err != nil {
		t.Fatal(err)
	}
	_, err = s.AddPrekeys(ctx, "alice", "phone", [][]byte{key("a"), {}, key("c")})
	wantErr(t, "AddPrekeys with an empty prekey", err, natter.ErrBadRequest)

	add(t, "phone", 0, 3, 3)
	add(t, "phone", 3, 2, 5)
	add(t, "phone", 5, 0, 5) // nothing to add
	add(t, "laptop", 0, 1, 1)
	laptop := func(prekey []byte, left int) wantDevice {
		return wantDevice{device: "laptop", bundle: key("laptop"), prekey: prekey, left: left}
	}
	phone := func(prekey []byte, left int) wantDevice {
		return wantDevice{device: "phone", bundle: key("phone"), prekey: prekey, left: left}
	}

	// Claims hand prekeys out oldest first, once each, only for the devices
	// named; counts are given for every device.
	for _, step := range []struct {
		name  string
		claim []natter.DeviceID
		want  []wantDevice
	}{
		{"no claim", nil, []wantDevice{laptop(nil, 1), phone(nil, 5)}},
		{"phone", []natter.DeviceID{"phone"}, []wantDevice{laptop(nil, 1), phone(pk("phone", 0), 4)}},
		{"phone again", []natter.DeviceID{"phone"}, []wantDevice{laptop(nil, 1), phone(pk("phone", 1), 3)}},
		{"both", []natter.DeviceID{"phone", "laptop"}, []wantDevice{laptop(pk("laptop", 0), 0), phone(pk("phone", 2), 2)}},
		{"laptop has none left", []natter.DeviceID{"laptop"}, []wantDevice{laptop(nil, 0), phone(nil, 2)}},
		{"named twice counts once", []natter.DeviceID{"phone", "phone"}, []wantDevice{laptop(nil, 0), phone(pk("phone", 3), 1)}},
		{"unknown devices are ignored", []natter.DeviceID{"tablet", ""}, []wantDevice{laptop(nil, 0), phone(nil, 1)}},
		{"last one", []natter.DeviceID{"tablet", "phone"}, []wantDevice{laptop(nil, 0), phone(pk("phone", 4), 0)}},
		{"empty", []natter.DeviceID{"phone"}, []wantDevice{laptop(nil, 0), phone(nil, 0)}},
	} {
		t.Run(step.name, func(t *testing.T) {
			checkKeys(t, fmt.Sprintf("UserKeys(alice, %v)", step.claim), userKeys(t, s, "alice", step.claim...), nil, step.want...)
		})
	}
	// Claiming alice's phone never touched bob's.
	checkKeys(t, "bob", userKeys(t, s, "bob", "phone"), nil, wantDevice{device: "phone", bundle: key("bob")})

	// New prekeys after the device ran out are handed out in order too.
	add(t, "phone", 10, 2, 2)
	checkKeys(t, "after a refill", userKeys(t, s, "alice", "phone"), nil, laptop(nil, 0), phone(pk("phone", 10), 1))

	t.Run("cap", func(t *testing.T) {
		add(t, "laptop", 100, natter.MaxPrekeys-10, natter.MaxPrekeys-10)
		for _, n := range []int{11, natter.MaxPrekeys + 1} {
			pks := make([][]byte, n)
			for i := range pks {
				pks[i] = key("over")
			}
			_, err := s.AddPrekeys(ctx, "alice", "laptop", pks)
			wantErr(t, fmt.Sprintf("AddPrekeys of %d over the cap", n), err, natter.ErrLimit)
		}
		add(t, "laptop", 1000, 10, natter.MaxPrekeys) // exactly the cap
		_, err := s.AddPrekeys(ctx, "alice", "laptop", [][]byte{key("one more")})
		wantErr(t, "AddPrekeys of one over the cap", err, natter.ErrLimit)
		// Nothing refused was stored: the oldest is still the first added,
		// and the device holds exactly the cap.
		checkKeys(t, "after refusals", userKeys(t, s, "alice", "laptop"), nil,
			laptop(pk("laptop", 100), natter.MaxPrekeys-1), phone(nil, 1))
		// The cap is per device: the phone still takes some.
		add(t, "phone", 20, 5, 6)
	})
}

func testUserKeysUnknownUser(t *testing.T, s natter.Store) {
	createUsers(t, s, "alice")
	for _, claim := range [][]natter.DeviceID{nil, {"phone"}} {
		_, err := s.UserKeys(t.Context(), "nobody", claim)
		wantErr(t, fmt.Sprintf("UserKeys(nobody, %v)", claim), err, natter.ErrNoSuchUser)
	}
	// A user who published nothing has an empty key set.
	checkKeys(t, "UserKeys(alice)", userKeys(t, s, "alice"), nil)
	checkKeys(t, "UserKeys(alice, phone)", userKeys(t, s, "alice", "phone"), nil)
}

// testConcurrentClaims has 8 goroutines claim from one device holding 50
// prekeys, 10 claims each: exactly 50 claims get a prekey, no two the same,
// and the other 30 get none.
func testConcurrentClaims(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice")
	if _, err := s.PutBundle(ctx, "alice", "phone", key("bundle")); err != nil {
		t.Fatal(err)
	}
	// A second device whose prekeys nobody claims.
	if _, err := s.PutBundle(ctx, "alice", "laptop", key("bundle")); err != nil {
		t.Fatal(err)
	}
	const (
		prekeys    = 50
		goroutines = 8
		perG       = 10
	)
	stored := map[string]bool{}
	var pks [][]byte
	for i := range prekeys {
		p := key(fmt.Sprintf("prekey %02d", i))
		pks = append(pks, p)
		stored[string(p)] = true
	}
	if _, err := s.AddPrekeys(ctx, "alice", "phone", pks); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddPrekeys(ctx, "alice", "laptop", pks[:5]); err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		claimed []string
		empties int
		wg      sync.WaitGroup
	)
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for range perG {
				ks, err := s.UserKeys(ctx, "alice", []natter.DeviceID{"phone"})
				if err != nil {
					t.Errorf("goroutine %d: UserKeys: %v", g, err)
					return
				}
				if len(ks.Devices) != 2 || ks.Devices[1].Device != "phone" {
					t.Errorf("goroutine %d: UserKeys devices %+v", g, ks.Devices)
					return
				}
				mu.Lock()
				if p := ks.Devices[1].Prekey; p != nil {
					claimed = append(claimed, string(p))
				} else {
					empties++
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(claimed) != prekeys || empties != goroutines*perG-prekeys {
		t.Fatalf("%d claims got a prekey and %d none; want %d and %d", len(claimed), empties, prekeys, goroutines*perG-prekeys)
	}
	seen := map[string]bool{}
	for _, p := range claimed {
		if seen[p] {
			t.Fatalf("prekey %q handed out twice", p)
		}
		if !stored[p] {
			t.Fatalf("prekey %q was never stored", p)
		}
		seen[p] = true
	}
	checkKeys(t, "afterwards", userKeys(t, s, "alice"), nil,
		wantDevice{device: "laptop", bundle: key("bundle"), left: 5},
		wantDevice{device: "phone", bundle: key("bundle")})
}

func testSetPassword(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	tok := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	for i, ss := range []natter.Session{
		{TokenHash: tok(1), User: "alice", Device: "phone"},
		{TokenHash: tok(2), User: "alice", Device: "laptop"},
		{TokenHash: tok(3), User: "alice", Device: "phone"}, // a second login of one device
		{TokenHash: tok(4), User: "bob", Device: "phone"},
	} {
		ss.Created, ss.Expires = at(i), at(i+1000)
		if err := s.CreateSession(ctx, ss); err != nil {
			t.Fatal(err)
		}
	}
	sessionIs := func(t *testing.T, hash []byte, want bool) {
		t.Helper()
		_, err := s.Session(ctx, hash)
		switch {
		case want && err != nil:
			t.Fatalf("Session(%x): %v, want it kept", hash[:1], err)
		case !want:
			wantErr(t, fmt.Sprintf("Session(%x)", hash[:1]), err, natter.ErrNoSession)
		}
	}
	hashIs := func(t *testing.T, user natter.UserID, want string) {
		t.Helper()
		if h, err := s.PasswordHash(ctx, user); err != nil || h != want {
			t.Fatalf("PasswordHash(%s) = %q, %v; want %q", user, h, err, want)
		}
	}

	err := s.SetPassword(ctx, "nobody", "new", natter.Session{})
	wantErr(t, "SetPassword of an unknown user", err, natter.ErrNoSuchUser)
	err = s.SetPassword(ctx, "alice", "new", natter.Session{TokenHash: tok(9), User: "bob", Device: "phone"})
	wantErr(t, "SetPassword keeping another user's session", err, natter.ErrBadRequest)
	hashIs(t, "alice", hashOf("alice"))
	for _, b := range []byte{1, 2, 3, 4} {
		sessionIs(t, tok(b), true)
	}
	sessionIs(t, tok(9), false)

	keep := natter.Session{TokenHash: tok(5), User: "alice", Device: "phone", Created: at(10), Expires: at(2000)}
	if err := s.SetPassword(ctx, "alice", "hash two", keep); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	hashIs(t, "alice", "hash two")
	hashIs(t, "bob", hashOf("bob"))
	for _, b := range []byte{1, 2, 3} {
		sessionIs(t, tok(b), false)
	}
	sessionIs(t, tok(4), true) // bob's
	got, err := s.Session(ctx, tok(5))
	if err != nil || got.User != "alice" || got.Device != "phone" || !sameTime(got.Expires, keep.Expires) {
		t.Fatalf("the kept session = %+v, %v; want %+v", got, err, keep)
	}

	// Without a session to keep, every session goes.
	if err := s.SetPassword(ctx, "alice", "hash three", natter.Session{}); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	hashIs(t, "alice", "hash three")
	sessionIs(t, tok(5), false)
	sessionIs(t, tok(4), true)
}
