package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// This file checks the device directory's bounds: RemoveDevice,
// IdleDevices and TouchDevice's cap.

// fullDevice gives user's device everything a device can have: a cursor
// (a login at at(n)), a session, a bundle with a certificate, prekeys and a
// wrapped archive key (user's archive must be on). It returns the session's
// token hash.
func fullDevice(t *testing.T, s natter.Store, user natter.UserID, dev natter.DeviceID, n int) []byte {
	t.Helper()
	ctx := t.Context()
	touchDev(t, s, user, dev, n)
	token := []byte("token of " + string(user) + "/" + string(dev))
	if err := s.CreateSession(ctx, natter.Session{TokenHash: token, User: user, Device: dev, Created: at(n), Expires: at(n + 100)}); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if _, err := s.PutBundle(ctx, user, dev, key("bundle of "+string(dev))); err != nil {
		t.Fatalf("PutBundle: %v", err)
	}
	if _, err := s.PutCert(ctx, user, dev, key("cert of "+string(dev))); err != nil {
		t.Fatalf("PutCert: %v", err)
	}
	if _, err := s.AddPrekeys(ctx, user, dev, [][]byte{key("p1"), key("p2")}); err != nil {
		t.Fatalf("AddPrekeys: %v", err)
	}
	if err := s.PutArchiveKey(ctx, user, dev, key("wrapped for "+string(dev))); err != nil {
		t.Fatalf("PutArchiveKey: %v", err)
	}
	return token
}

// keyDevices returns the devices UserKeys lists for user.
func keyDevices(t *testing.T, s natter.Store, user natter.UserID) []natter.DeviceID {
	t.Helper()
	var out []natter.DeviceID
	for _, d := range userKeys(t, s, user).Devices {
		out = append(out, d.Device)
	}
	return out
}

// testRemoveDevice removes one device of two and checks that all of it is
// gone (cursor, keys, prekeys, archive key, sessions) and nothing of the
// other device or of another user is.
func testRemoveDevice(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	archiveOn(t, s, "alice")
	archiveOn(t, s, "bob")
	phone := fullDevice(t, s, "alice", "phone", 1)
	laptop := fullDevice(t, s, "alice", "laptop", 2)
	bobs := fullDevice(t, s, "bob", "laptop", 3)
	send(t, s, "bob", "alice", "m1", "hi")
	ackDev(t, s, "alice", "laptop", 1)

	remove := func(t *testing.T, user natter.UserID, dev natter.DeviceID, unseenSince time.Time, want bool) {
		t.Helper()
		got, err := s.RemoveDevice(ctx, user, dev, unseenSince)
		if err != nil || got != want {
			t.Fatalf("RemoveDevice(%s/%s, %v) = %v, %v; want %v", user, dev, unseenSince, got, err, want)
		}
	}
	t.Run("logged in since: nothing is removed", func(t *testing.T) {
		remove(t, "alice", "laptop", at(2), false) // last login at(2): not before it
		checkDevs(t, "alice's keys", keyDevices(t, s, "alice"), "laptop", "phone")
		if _, err := s.Session(ctx, laptop); err != nil {
			t.Fatalf("Session(laptop) after a refused removal: %v", err)
		}
		if c := touchDev(t, s, "alice", "laptop", 2); c != 1 {
			t.Fatalf("laptop's cursor = %d, want 1 (kept)", c)
		}
	})
	t.Run("removed", func(t *testing.T) {
		remove(t, "alice", "laptop", time.Time{}, true)
		checkDevs(t, "alice's keys", keyDevices(t, s, "alice"), "phone")
		checkDevs(t, "bob's keys", keyDevices(t, s, "bob"), "laptop")
		if _, err := s.Session(ctx, laptop); !errors.Is(err, natter.ErrNoSession) {
			t.Fatalf("Session(laptop's token) after removal: %v, want ErrNoSession", err)
		}
		for _, tok := range [][]byte{phone, bobs} {
			if _, err := s.Session(ctx, tok); err != nil {
				t.Fatalf("Session(%s) of another device: %v", tok, err)
			}
		}
		keys, err := s.ArchiveKeys(ctx, "alice")
		if err != nil || len(keys) != 1 || keys["phone"] == nil {
			t.Fatalf("ArchiveKeys(alice) = %q, %v; want phone's only", keys, err)
		}
		wantErr(t, "AddPrekeys to the removed device", func() error {
			_, err := s.AddPrekeys(ctx, "alice", "laptop", [][]byte{key("p")})
			return err
		}(), natter.ErrNoSuchDevice)
		wantErr(t, "AckInbox of the removed device", s.AckInbox(ctx, "alice", "laptop", 1), natter.ErrNoSuchDevice)
		ks := userKeys(t, s, "alice", "phone")
		if len(ks.Devices) != 1 || ks.Devices[0].PrekeysLeft != 1 {
			t.Fatalf("phone's prekeys after claiming one = %+v, want 1 left", ks.Devices)
		}
	})
	t.Run("again: nothing to remove", func(t *testing.T) {
		remove(t, "alice", "laptop", time.Time{}, false)
		remove(t, "alice", "tablet", time.Time{}, false)
		remove(t, "alice", "laptop", at(50), false)
	})
	t.Run("it comes back as a new device", func(t *testing.T) {
		if c := touchDev(t, s, "alice", "laptop", 5); c != 0 {
			t.Fatalf("laptop's cursor after removal = %d, want 0", c)
		}
	})
	t.Run("keys without a login are removed", func(t *testing.T) {
		if _, err := s.PutBundle(ctx, "bob", "tablet", key("b")); err != nil {
			t.Fatal(err)
		}
		remove(t, "bob", "tablet", time.Time{}, true)
		checkDevs(t, "bob's keys", keyDevices(t, s, "bob"), "laptop")
	})
	t.Run("unknown user", func(t *testing.T) {
		_, err := s.RemoveDevice(ctx, "nobody", "phone", time.Time{})
		wantErr(t, "RemoveDevice(nobody)", err, natter.ErrNoSuchUser)
	})
}

func checkDevs(t *testing.T, what string, got []natter.DeviceID, want ...natter.DeviceID) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// testIdleDevices lists devices by their last login, in (user, device)
// order, a page at a time, and checks that a login takes a device off the
// list.
func testIdleDevices(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	touchDev(t, s, "bob", "phone", 1)
	touchDev(t, s, "alice", "phone", 3)
	touchDev(t, s, "alice", "laptop", 2)
	touchDev(t, s, "alice", "tablet", 9)
	idle := func(t *testing.T, n, limit int) []string {
		t.Helper()
		ds, err := s.IdleDevices(ctx, at(n), limit)
		if err != nil {
			t.Fatalf("IdleDevices(at(%d), %d): %v", n, limit, err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, fmt.Sprintf("%s/%s@%d", d.User, d.Device, (d.LastLogin.Sub(t0)+500*time.Millisecond)/(time.Second+time.Millisecond)))
		}
		return out
	}
	for _, tt := range []struct {
		n, limit int
		want     []string
	}{
		{1, 10, nil},
		{2, 10, []string{"bob/phone@1"}},
		{4, 10, []string{"alice/laptop@2", "alice/phone@3", "bob/phone@1"}},
		{4, 2, []string{"alice/laptop@2", "alice/phone@3"}},
		{4, 0, []string{"alice/laptop@2"}},
		{10, 10, []string{"alice/laptop@2", "alice/phone@3", "alice/tablet@9", "bob/phone@1"}},
	} {
		t.Run(fmt.Sprintf("before at(%d), limit %d", tt.n, tt.limit), func(t *testing.T) {
			if got := idle(t, tt.n, tt.limit); !slices.Equal(got, tt.want) {
				t.Fatalf("IdleDevices = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("a login or a removal takes a device off", func(t *testing.T) {
		touchDev(t, s, "alice", "laptop", 20)
		if _, err := s.RemoveDevice(ctx, "bob", "phone", at(4)); err != nil {
			t.Fatal(err)
		}
		if got, want := idle(t, 10, 10), []string{"alice/phone@3", "alice/tablet@9"}; !slices.Equal(got, want) {
			t.Fatalf("IdleDevices = %v, want %v", got, want)
		}
	})
}

// testDeviceCap checks TouchDevice's maxDevices: a new device over the cap
// is refused and stored nowhere, a known one is never refused, and removing
// one makes room.
func testDeviceCap(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	touch := func(dev natter.DeviceID, maxDevices int) error {
		_, err := s.TouchDevice(ctx, "alice", dev, at(1), maxDevices)
		return err
	}
	for _, st := range []struct {
		name string
		dev  natter.DeviceID
		max  int
		want error
	}{
		{"first", "d1", 2, nil},
		{"second", "d2", 2, nil},
		{"third: over the cap", "d3", 2, natter.ErrTooManyDevices},
		{"a known device at the cap", "d1", 2, nil},
		{"a lower cap than the devices held, known device", "d2", 1, nil},
		{"no cap", "d3", 0, nil},
		{"over the cap again", "d4", 3, natter.ErrTooManyDevices},
		{"a negative cap is none", "d4", -1, nil},
	} {
		t.Run(st.name, func(t *testing.T) {
			err := touch(st.dev, st.max)
			if st.want == nil && err != nil || st.want != nil && !errors.Is(err, st.want) {
				t.Fatalf("TouchDevice(%s, max %d) = %v, want %v", st.dev, st.max, err, st.want)
			}
		})
	}
	t.Run("a refused device is not stored", func(t *testing.T) {
		wantErr(t, "TouchDevice(d5)", touch("d5", 4), natter.ErrTooManyDevices)
		ds, err := s.IdleDevices(ctx, at(100), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 4 {
			t.Fatalf("IdleDevices = %v, want alice's 4 devices", ds)
		}
	})
	t.Run("another user has room", func(t *testing.T) {
		if _, err := s.TouchDevice(ctx, "bob", "d1", at(1), 1); err != nil {
			t.Fatalf("TouchDevice(bob/d1, max 1): %v", err)
		}
	})
	t.Run("removing one makes room", func(t *testing.T) {
		if _, err := s.RemoveDevice(ctx, "alice", "d1", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := touch("d5", 4); err != nil {
			t.Fatalf("TouchDevice(d5, max 4) after a removal: %v", err)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		_, err := s.TouchDevice(ctx, "nobody", "d1", at(1), 2)
		wantErr(t, "TouchDevice(nobody)", err, natter.ErrNoSuchUser)
	})
}
