package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/natterim/natter"
)

// chunk returns the hash of a made-up chunk named name.
func chunk(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// addChunk records an upload with no quota and fails t on error; it
// returns AddChunk's added.
func addChunk(t *testing.T, s natter.Store, user natter.UserID, hash string, size int64, n int) bool {
	t.Helper()
	added, err := s.AddChunk(t.Context(), user, hash, size, -1, at(n))
	if err != nil {
		t.Fatalf("AddChunk(%s, %.8s): %v", user, hash, err)
	}
	return added
}

// checkHas fails t unless UserHasChunks(user, ask) is want.
func checkHas(t *testing.T, s natter.Store, user natter.UserID, ask, want []string) {
	t.Helper()
	got, err := s.UserHasChunks(t.Context(), user, ask)
	if err != nil {
		t.Fatalf("UserHasChunks(%s): %v", user, err)
	}
	if len(got) != len(want) || (len(want) > 0 && !slices.Equal(got, want)) {
		t.Fatalf("UserHasChunks(%s) = %.8q, want %.8q", user, got, want)
	}
	for _, h := range ask {
		may, err := s.MayFetchChunk(t.Context(), user, h)
		if err != nil {
			t.Fatalf("MayFetchChunk(%s, %.8s): %v", user, h, err)
		}
		if may != slices.Contains(want, h) {
			t.Fatalf("MayFetchChunk(%s, %.8s) = %v, but UserHasChunks says %v", user, h, may, !may)
		}
	}
}

func testChunkUploads(t *testing.T, s natter.Store) {
	createUsers(t, s, "alice", "bob")
	h1, h2, h3 := chunk("one"), chunk("two"), chunk("three")
	if !addChunk(t, s, "alice", h1, 100, 1) {
		t.Fatal("first upload: added false")
	}
	if addChunk(t, s, "alice", h1, 100, 2) {
		t.Fatal("repeated upload: added true")
	}
	addChunk(t, s, "alice", h2, 50, 3)
	// bob uploads the same content: one chunk, two uploaders.
	if !addChunk(t, s, "bob", h2, 50, 4) {
		t.Fatal("bob's upload of a chunk alice holds: added false")
	}
	checkHas(t, s, "alice", []string{h3, h2, h1, h2}, []string{h2, h1})
	checkHas(t, s, "bob", []string{h1, h2, h3}, []string{h2})
	checkHas(t, s, "alice", nil, nil)

	_, err := s.AddChunk(t.Context(), "nobody", h1, 100, -1, at(5))
	wantErr(t, "AddChunk by an unknown user", err, natter.ErrNoSuchUser)

	total, err := s.ChunkTotal(t.Context(), "alice", []string{h1, h2, h1})
	if err != nil || total != 250 {
		t.Fatalf("ChunkTotal(h1, h2, h1) = %d, %v; want 250 (a repeat counts again)", total, err)
	}
	_, err = s.ChunkTotal(t.Context(), "bob", []string{h2, h1})
	wantErr(t, "ChunkTotal with a chunk bob did not upload", err, natter.ErrNoSuchChunk)
	if total, err := s.ChunkTotal(t.Context(), "bob", nil); err != nil || total != 0 {
		t.Fatalf("ChunkTotal(none) = %d, %v", total, err)
	}
}

func testChunkQuota(t *testing.T, s natter.Store) {
	createUsers(t, s, "alice", "bob")
	ctx := t.Context()
	h1, h2, h3 := chunk("one"), chunk("two"), chunk("three")
	tests := []struct {
		name  string
		user  natter.UserID
		hash  string
		size  int64
		quota int64
		added bool
		err   error
	}{
		{"FirstFits", "alice", h1, 60, 100, true, nil},
		{"SecondOver", "alice", h2, 60, 100, false, natter.ErrQuota},
		{"RepeatNotCounted", "alice", h1, 60, 60, false, nil},
		{"ExactlyAtQuota", "alice", h3, 40, 100, true, nil},
		{"FullNow", "alice", h2, 1, 100, false, natter.ErrQuota},
		{"OtherUserOwnQuota", "bob", h1, 60, 60, true, nil},
		{"ZeroQuota", "bob", h2, 60, 0, false, natter.ErrQuota},
		{"NoQuota", "alice", h2, 60, -1, true, nil},
	}
	for _, tt := range tests {
		added, err := s.AddChunk(ctx, tt.user, tt.hash, tt.size, tt.quota, at(1))
		if tt.err != nil {
			wantErr(t, tt.name, err, tt.err)
		} else if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if added != tt.added {
			t.Fatalf("%s: added = %v, want %v", tt.name, added, tt.added)
		}
	}
	// A refused upload recorded nothing.
	checkHas(t, s, "bob", []string{h1, h2, h3}, []string{h1})
}

func testMessageChunks(t *testing.T, s natter.Store) {
	createUsers(t, s, "alice", "bob", "carol")
	ctx := t.Context()
	h1, h2, h3 := chunk("one"), chunk("two"), chunk("three")
	addChunk(t, s, "alice", h1, 10, 1)
	addChunk(t, s, "alice", h2, 10, 1)
	addChunk(t, s, "carol", h3, 10, 1)

	// A chunk alice did not upload (carol did) refuses the whole message.
	_, err := s.AppendMessage(ctx, natter.Message{ID: "m0", From: "alice", To: "bob", Body: []byte("x"), SentAt: at(2),
		Chunks: []string{h1, h3}})
	wantErr(t, "AppendMessage with someone else's chunk", err, natter.ErrNoSuchChunk)
	_, err = s.AppendMessage(ctx, natter.Message{ID: "m0", From: "alice", To: "bob", Body: []byte("x"), SentAt: at(2),
		Chunks: []string{chunk("never")}})
	wantErr(t, "AppendMessage with an unknown chunk", err, natter.ErrNoSuchChunk)
	checkInbox(t, s, "bob", nil)

	a, err := s.AppendMessage(ctx, natter.Message{ID: "m1", From: "alice", To: "bob", Body: []byte("file"), SentAt: at(3),
		Chunks: []string{h1, h2, h1}})
	if err != nil {
		t.Fatalf("AppendMessage with chunks: %v", err)
	}
	if a.Message.ConvSeq != 1 || a.ToSeq != 1 {
		t.Fatalf("first stored message: conv seq %d, inbox seq %d; a refused one used numbers up", a.Message.ConvSeq, a.ToSeq)
	}
	all := []string{h1, h2, h3}
	checkHas(t, s, "bob", all, []string{h1, h2})
	checkHas(t, s, "alice", all, []string{h1, h2})
	checkHas(t, s, "carol", all, []string{h3})

	// Having received a chunk is not having uploaded it: bob cannot name
	// it in a message of his own until he uploads it too.
	_, err = s.AppendMessage(ctx, natter.Message{ID: "b1", From: "bob", To: "alice", SentAt: at(4), Chunks: []string{h1}})
	wantErr(t, "AppendMessage forwarding a received chunk", err, natter.ErrNoSuchChunk)
	addChunk(t, s, "bob", h1, 10, 4)
	if _, err := s.AppendMessage(ctx, natter.Message{ID: "b1", From: "bob", To: "carol", SentAt: at(4), Chunks: []string{h1}}); err != nil {
		t.Fatalf("AppendMessage after uploading: %v", err)
	}
	checkHas(t, s, "carol", all, []string{h1, h3})

	// A duplicate send returns the first copy and records nothing new.
	a, err = s.AppendMessage(ctx, natter.Message{ID: "m1", From: "alice", To: "bob", SentAt: at(5), Chunks: []string{chunk("never")}})
	if err != nil || !a.Duplicate {
		t.Fatalf("duplicate AppendMessage: %+v, %v", a, err)
	}
}

func testExpireChunks(t *testing.T, s natter.Store) {
	createUsers(t, s, "alice", "bob")
	ctx := t.Context()
	hOld, hSent, hFresh := chunk("old"), chunk("sent"), chunk("fresh")
	addChunk(t, s, "alice", hOld, 30, 0)
	addChunk(t, s, "alice", hSent, 30, 1)
	addChunk(t, s, "alice", hFresh, 30, 10)
	// hSent was uploaded at 1 but sent at 20: the message keeps it.
	if _, err := s.AppendMessage(ctx, natter.Message{ID: "m1", From: "alice", To: "bob", SentAt: at(20), Chunks: []string{hSent}}); err != nil {
		t.Fatal(err)
	}

	got, err := s.ExpireChunks(ctx, at(5))
	if err != nil || !slices.Equal(got, []string{hOld}) {
		t.Fatalf("ExpireChunks(5) = %.8q, %v; want only the old upload", got, err)
	}
	checkHas(t, s, "alice", []string{hOld, hSent, hFresh}, []string{hSent, hFresh})
	// The expired chunk no longer counts against alice's quota: 60 of 90.
	if added, err := s.AddChunk(ctx, "alice", chunk("more"), 30, 90, at(11)); err != nil || !added {
		t.Fatalf("AddChunk after an expiry freed quota: %v, %v", added, err)
	}
	_, err = s.AddChunk(ctx, "alice", chunk("over"), 1, 90, at(11))
	wantErr(t, "AddChunk at the quota", err, natter.ErrQuota)
	// Nothing more before 5; a re-upload brings a chunk back.
	if got, err := s.ExpireChunks(ctx, at(5)); err != nil || len(got) != 0 {
		t.Fatalf("second ExpireChunks(5) = %.8q, %v", got, err)
	}
	if !addChunk(t, s, "alice", hOld, 30, 30) {
		t.Fatal("re-upload of an expired chunk: added false")
	}

	got, err = s.ExpireChunks(ctx, at(25))
	slices.Sort(got)
	want := []string{hSent, hFresh, chunk("more")}
	slices.Sort(want)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ExpireChunks(25) = %.8q, %v; want %.8q", got, err, want)
	}
	checkHas(t, s, "bob", []string{hSent}, nil)
	checkHas(t, s, "alice", []string{hOld, hSent, hFresh}, []string{hOld})
	// A message whose chunks expired is still there, and a new message
	// cannot name them.
	es, err := s.Inbox(ctx, "bob", 0, 10)
	if err != nil || len(es) != 1 {
		t.Fatalf("bob's inbox after the expiry: %d entries, %v", len(es), err)
	}
	_, err = s.AppendMessage(ctx, natter.Message{ID: "m2", From: "alice", To: "bob", SentAt: at(30), Chunks: []string{hSent}})
	wantErr(t, "AppendMessage with an expired chunk", err, natter.ErrNoSuchChunk)
}

// testExpireManyChunks: more chunks than one batch of a store's expiry
// (internal/sqlite works in writes of 1000) all go.
func testExpireManyChunks(t *testing.T, s natter.Store) {
	createUsers(t, s, "alice")
	const n = 2500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if _, err := s.AddChunk(t.Context(), "alice", chunk(fmt.Sprint(i)), 1, -1, at(0)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("AddChunk: %v", err)
	}
	got, err := s.ExpireChunks(t.Context(), at(1))
	if err != nil || len(got) != n {
		t.Fatalf("ExpireChunks: %d hashes, %v; want %d", len(got), err, n)
	}
	if _, err := s.AddChunk(t.Context(), "alice", chunk("x"), 1, 1, at(2)); err != nil {
		t.Fatalf("AddChunk with a quota of 1 after everything expired: %v", err)
	}
}
