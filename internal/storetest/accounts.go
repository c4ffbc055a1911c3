package storetest

import (
	"bytes"
	"errors"
	"strings"
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
		got, err := s.TouchDevice(ctx, user, dev, at(int(want)), 0)
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

// testLastSeen checks what a store keeps of users for when they are
// offline: the last-seen time and the status text they last set. The two
// are set apart (the text when the user sets it, the time when their last
// session ends) and each keeps the other.
func testLastSeen(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob", "carol")
	// A time in another zone, with nanoseconds: the instant survives to the
	// millisecond.
	bobSeen := time.Date(2024, 12, 31, 23, 59, 59, 999_999_999, time.FixedZone("UTC-8", -8*3600))
	// A text of exactly MaxStatusText bytes, in two-byte characters: the
	// limit is in bytes, and every byte comes back.
	full := strings.Repeat("é", natter.MaxStatusText/2)
	everyone := []natter.UserID{"alice", "bob", "carol", "nobody"}
	seen := func(u natter.UserID, at time.Time) func() error {
		return func() error { return s.SetLastSeen(ctx, u, at) }
	}
	text := func(u natter.UserID, text string) func() error {
		return func() error { return s.SetStatusText(ctx, u, text) }
	}

	// The steps run in order, each on the state the ones before left.
	steps := []struct {
		name    string
		do      func() error // nil: only read
		wantErr error
		read    []natter.UserID
		want    map[natter.UserID]natter.Seen
	}{
		{name: "no users", read: nil, want: nil},
		{name: "nobody seen yet", read: everyone, want: nil},
		{name: "alice seen", do: seen("alice", at(1)), read: everyone,
			want: map[natter.UserID]natter.Seen{"alice": {At: at(1)}}},
		{name: "bob seen in another zone", do: seen("bob", bobSeen), read: everyone,
			want: map[natter.UserID]natter.Seen{"alice": {At: at(1)}, "bob": {At: bobSeen}}},
		{name: "one user asked for", read: []natter.UserID{"bob"},
			want: map[natter.UserID]natter.Seen{"bob": {At: bobSeen}}},
		{name: "a user asked for twice", read: []natter.UserID{"bob", "bob"},
			want: map[natter.UserID]natter.Seen{"bob": {At: bobSeen}}},
		{name: "alice seen again", do: seen("alice", at(100)), read: []natter.UserID{"alice"},
			want: map[natter.UserID]natter.Seen{"alice": {At: at(100)}}},
		{name: "a text without a last-seen time", do: text("carol", "on holiday"), read: everyone,
			want: map[natter.UserID]natter.Seen{"alice": {At: at(100)}, "bob": {At: bobSeen}, "carol": {Text: "on holiday"}}},
		{name: "a text next to a last-seen time", do: text("alice", "at lunch"), read: []natter.UserID{"alice"},
			want: map[natter.UserID]natter.Seen{"alice": {At: at(100), Text: "at lunch"}}},
		{name: "a new last-seen time keeps the text", do: seen("alice", at(200)), read: []natter.UserID{"alice"},
			want: map[natter.UserID]natter.Seen{"alice": {At: at(200), Text: "at lunch"}}},
		{name: "a new text replaces the old", do: text("alice", "back at 3"), read: []natter.UserID{"alice"},
			want: map[natter.UserID]natter.Seen{"alice": {At: at(200), Text: "back at 3"}}},
		{name: "a text of MaxStatusText bytes", do: text("bob", full), read: []natter.UserID{"bob"},
			want: map[natter.UserID]natter.Seen{"bob": {At: bobSeen, Text: full}}},
		{name: "a text over MaxStatusText bytes is refused", do: text("bob", full+"x"), wantErr: natter.ErrBadRequest,
			read: []natter.UserID{"bob"}, want: map[natter.UserID]natter.Seen{"bob": {At: bobSeen, Text: full}}},
		{name: "a cleared text", do: text("alice", ""), read: []natter.UserID{"alice"},
			want: map[natter.UserID]natter.Seen{"alice": {At: at(200)}}},
		{name: "a cleared text and no last-seen time", do: text("carol", ""), read: []natter.UserID{"carol"},
			want: nil},
		{name: "the text of an unknown user", do: text("nobody", "hi"), wantErr: natter.ErrNoSuchUser,
			read: []natter.UserID{"nobody"}, want: nil},
		{name: "the last-seen time of an unknown user", do: seen("nobody", at(1)), wantErr: natter.ErrNoSuchUser,
			read: []natter.UserID{"nobody"}, want: nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.do != nil {
				if err := st.do(); !errors.Is(err, st.wantErr) {
					t.Fatalf("got error %v, want %v", err, st.wantErr)
				}
			}
			got, err := s.LastSeen(ctx, st.read)
			if err != nil {
				t.Fatalf("LastSeen(%v): %v", st.read, err)
			}
			if len(got) != len(st.want) {
				t.Fatalf("LastSeen(%v) = %v, want %v", st.read, got, st.want)
			}
			for u, w := range st.want {
				if g, ok := got[u]; !ok || !sameTime(g.At, w.At) || g.Text != w.Text {
					t.Fatalf("LastSeen(%v)[%s] = %+v (present: %v), want %+v", st.read, u, g, ok, w)
				}
			}
		})
	}
}
