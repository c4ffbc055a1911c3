package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/natterim/natter"
)

func testUsers(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")

	for _, tt := range []struct {
		user   natter.UserID
		exists bool
	}{
		{"alice", true},
		{"bob", true},
		{"carol", false},
		{"alic", false},
		{"alice2", false},
	} {
		t.Run(string(tt.user), func(t *testing.T) {
			ok, err := s.UserExists(ctx, tt.user)
			if err != nil {
				t.Fatalf("UserExists: %v", err)
			}
			if ok != tt.exists {
				t.Errorf("UserExists = %v, want %v", ok, tt.exists)
			}
			hash, err := s.PasswordHash(ctx, tt.user)
			if !tt.exists {
				wantErr(t, "PasswordHash of a missing user", err, natter.ErrNoSuchUser)
				return
			}
			if err != nil {
				t.Fatalf("PasswordHash: %v", err)
			}
			if hash != hashOf(tt.user) {
				t.Errorf("PasswordHash = %q, want %q", hash, hashOf(tt.user))
			}
		})
	}

	t.Run("taken", func(t *testing.T) {
		err := s.CreateUser(ctx, "alice", "another hash", at(9))
		wantErr(t, "CreateUser of a taken name", err, natter.ErrUserExists)
		hash, err := s.PasswordHash(ctx, "alice")
		if err != nil {
			t.Fatalf("PasswordHash: %v", err)
		}
		if hash != hashOf("alice") {
			t.Errorf("PasswordHash after a refused CreateUser = %q, want the first %q", hash, hashOf("alice"))
		}
	})
}

func testSessions(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")

	// Token hashes are binary: include zero bytes, 0xff, and two hashes
	// that differ only in their last byte.
	hash := func(last byte) []byte {
		h := bytes.Repeat([]byte{0x00, 0xff, 0x7f, 0x80}, 8)
		h[31] = last
		return h
	}
	sessions := []natter.Session{
		{TokenHash: hash(1), User: "alice", Device: "phone", Created: at(1), Expires: at(1).Add(30 * 24 * time.Hour)},
		{TokenHash: hash(2), User: "alice", Device: "laptop", Created: at(2), Expires: at(2).Add(time.Hour)},
		{TokenHash: hash(0), User: "bob", Device: "phone", Created: at(3), Expires: at(3).Add(time.Minute)},
	}
	for _, ss := range sessions {
		if err := s.CreateSession(ctx, ss); err != nil {
			t.Fatalf("CreateSession(%s/%s): %v", ss.User, ss.Device, err)
		}
	}
	check := func(t *testing.T, want natter.Session) {
		t.Helper()
		got, err := s.Session(ctx, want.TokenHash)
		if err != nil {
			t.Fatalf("Session(%s/%s): %v", want.User, want.Device, err)
		}
		if !bytes.Equal(got.TokenHash, want.TokenHash) || got.User != want.User || got.Device != want.Device ||
			!sameTime(got.Created, want.Created) || !sameTime(got.Expires, want.Expires) {
			t.Fatalf("Session = %+v, want %+v", got, want)
		}
	}
	for _, ss := range sessions {
		check(t, ss)
	}

	_, err := s.Session(ctx, hash(3))
	wantErr(t, "Session of an unknown token", err, natter.ErrNoSession)
	_, err = s.Session(ctx, hash(1)[:31])
	wantErr(t, "Session of a prefix of a token", err, natter.ErrNoSession)

	if err := s.DeleteSession(ctx, sessions[0].TokenHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	_, err = s.Session(ctx, sessions[0].TokenHash)
	wantErr(t, "Session after DeleteSession", err, natter.ErrNoSession)
	check(t, sessions[1]) // the user's other session is untouched
	check(t, sessions[2])

	if err := s.DeleteSession(ctx, sessions[0].TokenHash); err != nil {
		t.Errorf("DeleteSession of a deleted session: %v, want nil", err)
	}
	if err := s.DeleteSession(ctx, hash(9)); err != nil {
		t.Errorf("DeleteSession of a session that never was: %v, want nil", err)
	}
}

func testDevices(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	touch := func(t *testing.T, user natter.UserID, dev natter.DeviceID, want uint64) {
		t.Helper()
		got, err := s.TouchDevice(ctx, user, dev, at(int(want)))
		if err != nil {
			t.Fatalf("TouchDevice(%s/%s): %v", user, dev, err)
		}
		if got != want {
			t.Fatalf("TouchDevice(%s/%s) = %d, want %d", user, dev, got, want)
		}
	}
	ack := func(t *testing.T, user natter.UserID, dev natter.DeviceID, upto uint64) {
		t.Helper()
		if err := s.AckInbox(ctx, user, dev, upto); err != nil {
			t.Fatalf("AckInbox(%s/%s, %d): %v", user, dev, upto, err)
		}
	}

	touch(t, "alice", "phone", 0) // new device
	touch(t, "alice", "phone", 0) // known device, nothing acked yet
	// Give alice five inbox entries to acknowledge.
	for _, id := range []natter.MessageID{"m1", "m2", "m3", "m4", "m5"} {
		send(t, s, "bob", "alice", id, "hi")
	}
	touch(t, "bob", "phone", 0) // same device name, other user

	for _, step := range []struct {
		name string
		upto uint64
		want uint64
	}{
		{"forward", 2, 2},
		{"back is ignored", 1, 2},
		{"same is a no-op", 2, 2},
		{"zero is ignored", 0, 2},
		{"forward again", 4, 4},
		{"to the end", 5, 5},
	} {
		t.Run(step.name, func(t *testing.T) {
			ack(t, "alice", "phone", step.upto)
			touch(t, "alice", "phone", step.want)
		})
	}

	t.Run("devices are independent", func(t *testing.T) {
		touch(t, "alice", "laptop", 0) // a new device starts at 0 whatever the others acked
		ack(t, "alice", "laptop", 3)
		touch(t, "alice", "laptop", 3)
		touch(t, "alice", "phone", 5)
		touch(t, "bob", "phone", 0)
	})
}

func testLastSeen(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob", "carol")
	lastSeen := func(t *testing.T, users []natter.UserID, want map[natter.UserID]time.Time) {
		t.Helper()
		got, err := s.LastSeen(ctx, users)
		if err != nil {
			t.Fatalf("LastSeen(%v): %v", users, err)
		}
		if len(got) != len(want) {
			t.Fatalf("LastSeen(%v) = %v, want %v", users, got, want)
		}
		for u, w := range want {
			if g, ok := got[u]; !ok || !sameTime(g, w) {
				t.Fatalf("LastSeen(%v)[%s] = %v (present: %v), want %v", users, u, g, ok, w)
			}
		}
	}

	lastSeen(t, nil, nil)
	lastSeen(t, []natter.UserID{"alice", "bob"}, nil) // nobody has been seen

	if err := s.SetLastSeen(ctx, "alice", at(1)); err != nil {
		t.Fatalf("SetLastSeen: %v", err)
	}
	// A time in another zone, with nanoseconds: the instant survives to the
	// millisecond.
	bobSeen := time.Date(2024, 12, 31, 23, 59, 59, 999_999_999, time.FixedZone("UTC-8", -8*3600))
	if err := s.SetLastSeen(ctx, "bob", bobSeen); err != nil {
		t.Fatalf("SetLastSeen: %v", err)
	}
	lastSeen(t, []natter.UserID{"alice", "bob", "carol", "nobody"},
		map[natter.UserID]time.Time{"alice": at(1), "bob": bobSeen})
	lastSeen(t, []natter.UserID{"bob"}, map[natter.UserID]time.Time{"bob": bobSeen})
	lastSeen(t, []natter.UserID{"bob", "bob"}, map[natter.UserID]time.Time{"bob": bobSeen})

	if err := s.SetLastSeen(ctx, "alice", at(100)); err != nil {
		t.Fatalf("SetLastSeen: %v", err)
	}
	lastSeen(t, []natter.UserID{"alice"}, map[natter.UserID]time.Time{"alice": at(100)})
}
