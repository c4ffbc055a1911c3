package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/natterim/natter"
)

// rec is an archive item whose data is binary (zero bytes, 0xff, as sealed
// records are) and tells which key it was put under.
func rec(k string) natter.ArchiveItem {
	return natter.ArchiveItem{Key: k, Data: append([]byte{0x00, 0xff}, "record "+k...)}
}

// sized is an archive item with n bytes of data.
func sized(k string, n int) natter.ArchiveItem {
	return natter.ArchiveItem{Key: k, Data: bytes.Repeat([]byte{0xa5}, n)}
}

// archiveOn turns user's archive on and fails t on error.
func archiveOn(t *testing.T, s natter.Store, user natter.UserID) {
	t.Helper()
	if err := s.SetArchive(t.Context(), user, true); err != nil {
		t.Fatalf("SetArchive(%s, on): %v", user, err)
	}
}

// putArchive puts items with no quota at time at(n) and fails t on error.
func putArchive(t *testing.T, s natter.Store, user natter.UserID, n int, items ...natter.ArchiveItem) {
	t.Helper()
	if err := s.PutArchive(t.Context(), user, items, at(n), -1); err != nil {
		t.Fatalf("PutArchive(%s, %d items): %v", user, len(items), err)
	}
}

// allRecords reads user's whole archive in one call.
func allRecords(t *testing.T, s natter.Store, user natter.UserID) []natter.ArchiveRecord {
	t.Helper()
	recs, more, err := s.ArchiveRecords(t.Context(), user, 0, 1_000_000, 1<<40)
	if err != nil {
		t.Fatalf("ArchiveRecords(%s): %v", user, err)
	}
	if more {
		t.Fatalf("ArchiveRecords(%s) with no bound: more set", user)
	}
	return recs
}

// checkRecords fails t unless recs hold the data of want, in order, with
// increasing sequence numbers above after.
func checkRecords(t *testing.T, what string, recs []natter.ArchiveRecord, after int64, want ...natter.ArchiveItem) {
	t.Helper()
	if len(recs) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(recs), len(want))
	}
	last := after
	for i, r := range recs {
		if r.Seq <= last {
			t.Fatalf("%s: record %d has seq %d, not above %d", what, i, r.Seq, last)
		}
		last = r.Seq
		if !bytes.Equal(r.Data, want[i].Data) {
			t.Fatalf("%s: record %d (seq %d) holds %q, want %q (key %s)", what, i, r.Seq, clip(r.Data), clip(want[i].Data), want[i].Key)
		}
	}
}

func testArchiveOnOff(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	check := func(user natter.UserID, want bool) {
		t.Helper()
		on, err := s.ArchiveOn(ctx, user)
		if err != nil || on != want {
			t.Fatalf("ArchiveOn(%s) = %v, %v; want %v", user, on, err, want)
		}
	}
	check("alice", false) // off by default
	archiveOn(t, s, "alice")
	check("alice", true)
	check("bob", false)
	archiveOn(t, s, "alice") // again: no change, no error
	check("alice", true)
	if err := s.SetArchive(ctx, "alice", false); err != nil {
		t.Fatalf("SetArchive(off): %v", err)
	}
	check("alice", false)
	if err := s.SetArchive(ctx, "bob", false); err != nil {
		t.Fatalf("SetArchive(off) on an archive that is off: %v", err)
	}
	check("bob", false)

	_, err := s.ArchiveOn(ctx, "nobody")
	wantErr(t, "ArchiveOn(nobody)", err, natter.ErrNoSuchUser)
	wantErr(t, "SetArchive(nobody)", s.SetArchive(ctx, "nobody", true), natter.ErrNoSuchUser)
	wantErr(t, "PutArchive(nobody)", s.PutArchive(ctx, "nobody", []natter.ArchiveItem{rec("k")}, at(0), -1), natter.ErrNoSuchUser)
	_, _, err = s.ArchiveRecords(ctx, "nobody", 0, 10, 1000)
	wantErr(t, "ArchiveRecords(nobody)", err, natter.ErrNoSuchUser)
	wantErr(t, "PutArchiveKey(nobody)", s.PutArchiveKey(ctx, "nobody", "phone", key("w")), natter.ErrNoSuchUser)
	_, err = s.ArchiveKeys(ctx, "nobody")
	wantErr(t, "ArchiveKeys(nobody)", err, natter.ErrNoSuchUser)
}

func testArchivePut(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	err := s.PutArchive(ctx, "alice", []natter.ArchiveItem{rec("k1")}, at(0), -1)
	wantErr(t, "PutArchive while off", err, natter.ErrArchiveOff)
	if recs, more, err := s.ArchiveRecords(ctx, "alice", 0, 10, 1000); err != nil || len(recs) != 0 || more {
		t.Fatalf("ArchiveRecords of an archive that is off = %d records, more %v, %v", len(recs), more, err)
	}
	archiveOn(t, s, "alice")
	archiveOn(t, s, "bob")
	if recs := allRecords(t, s, "alice"); len(recs) != 0 {
		t.Fatalf("a new archive holds %d records", len(recs))
	}

	putArchive(t, s, "alice", 1, rec("k1"), rec("k2"))
	putArchive(t, s, "alice", 2, rec("k3"))
	recs := allRecords(t, s, "alice")
	checkRecords(t, "after three puts", recs, 0, rec("k1"), rec("k2"), rec("k3"))
	for i, want := range []int{1, 1, 2} {
		if !sameTime(recs[i].At, at(want)) {
			t.Fatalf("record %d: At %v, want %v", i, recs[i].At, at(want))
		}
	}

	// Repeats are skipped, within a call and across calls, and the stored
	// record is kept even if the data differs.
	changed := natter.ArchiveItem{Key: "k1", Data: []byte("other data")}
	putArchive(t, s, "alice", 3, changed, rec("k4"), rec("k2"), rec("k4"), natter.ArchiveItem{Key: "k5", Data: []byte{0}}, natter.ArchiveItem{Key: "k5", Data: []byte{1}})
	recs = allRecords(t, s, "alice")
	checkRecords(t, "after repeats", recs, 0, rec("k1"), rec("k2"), rec("k3"), rec("k4"), natter.ArchiveItem{Key: "k5", Data: []byte{0}})
	putArchive(t, s, "alice", 4, rec("k1"), rec("k2"))
	if again := allRecords(t, s, "alice"); len(again) != len(recs) {
		t.Fatalf("a put of nothing but repeats stored %d records", len(again)-len(recs))
	}

	// Keys are per user: bob may use alice's keys, and sees only his own.
	putArchive(t, s, "bob", 5, rec("k1"), rec("b1"))
	checkRecords(t, "bob's archive", allRecords(t, s, "bob"), 0, rec("k1"), rec("b1"))
	checkRecords(t, "alice's archive after bob's put", allRecords(t, s, "alice"), 0,
		rec("k1"), rec("k2"), rec("k3"), rec("k4"), natter.ArchiveItem{Key: "k5", Data: []byte{0}})

	// Empty keys or data are refused, and nothing of the call is stored.
	for _, bad := range [][]natter.ArchiveItem{
		{rec("k6"), {Key: "", Data: []byte("x")}},
		{rec("k6"), {Key: "k7"}},
	} {
		wantErr(t, "PutArchive with an empty key or data", s.PutArchive(ctx, "alice", bad, at(6), -1), natter.ErrBadRequest)
	}
	if got := allRecords(t, s, "alice"); len(got) != 5 {
		t.Fatalf("a refused put stored records: %d, want 5", len(got))
	}
	// An empty put stores nothing and is not an error.
	putArchive(t, s, "alice", 7)
}

func testArchivePaging(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	archiveOn(t, s, "alice")
	archiveOn(t, s, "bob")
	var items []natter.ArchiveItem
	for i := range 10 {
		items = append(items, sized(fmt.Sprint("r", i), 100))
		// bob's records interleave alice's: her sequence numbers need not
		// be consecutive.
		putArchive(t, s, "alice", i, items[i])
		putArchive(t, s, "bob", i, sized(fmt.Sprint("b", i), 10))
	}
	all := allRecords(t, s, "alice")
	checkRecords(t, "all", all, 0, items...)

	read := func(after int64, limit, maxBytes int) ([]natter.ArchiveRecord, bool) {
		t.Helper()
		recs, more, err := s.ArchiveRecords(ctx, "alice", after, limit, maxBytes)
		if err != nil {
			t.Fatalf("ArchiveRecords(after %d, limit %d, max %d): %v", after, limit, maxBytes, err)
		}
		return recs, more
	}
	tests := []struct {
		name            string
		after           int64
		limit, maxBytes int
		from, to        int // the records of items wanted
		more            bool
	}{
		{"Limit", 0, 3, 10_000, 0, 3, true},
		{"LimitExact", 0, 10, 10_000, 0, 10, false},
		{"After", all[6].Seq, 10, 10_000, 7, 10, false},
		{"AfterLimit", all[2].Seq, 2, 10_000, 3, 5, true},
		{"Bytes", 0, 10, 350, 0, 3, true},
		{"BytesExact", 0, 10, 300, 0, 3, true},
		{"FirstOverBytes", all[4].Seq, 10, 50, 5, 6, true},
		{"ZeroBytes", 0, 10, 0, 0, 1, true},
		{"ZeroLimit", 0, 0, 10_000, 0, 1, true},
		{"LastOverBytes", all[8].Seq, 10, 1, 9, 10, false},
		{"AtEnd", all[9].Seq, 10, 10_000, 10, 10, false},
		{"BeyondEnd", all[9].Seq + 1000, 10, 10_000, 10, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, more := read(tt.after, tt.limit, tt.maxBytes)
			checkRecords(t, tt.name, recs, tt.after, items[tt.from:tt.to]...)
			for i, r := range recs {
				if r.Seq != all[tt.from+i].Seq {
					t.Fatalf("record %d: seq %d, want %d", i, r.Seq, all[tt.from+i].Seq)
				}
			}
			if more != tt.more {
				t.Fatalf("more = %v, want %v", more, tt.more)
			}
		})
	}

	// Paging through with the last seq as the next after yields
	// everything once, in order.
	var got []natter.ArchiveRecord
	after, more := int64(0), true
	for more {
		var page []natter.ArchiveRecord
		page, more = read(after, 3, 250)
		if len(page) == 0 {
			t.Fatal("an empty page with more set")
		}
		got = append(got, page...)
		after = page[len(page)-1].Seq
	}
	checkRecords(t, "paged", got, 0, items...)
}

func testArchiveQuota(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	archiveOn(t, s, "alice")
	archiveOn(t, s, "bob")
	tests := []struct {
		name  string
		user  natter.UserID
		items []natter.ArchiveItem
		quota int64
		err   error
	}{
		{"FirstFits", "alice", []natter.ArchiveItem{sized("a", 40), sized("b", 20)}, 100, nil},
		{"BatchOverWhole", "alice", []natter.ArchiveItem{sized("c", 20), sized("d", 30)}, 100, natter.ErrQuota},
		{"RepeatsNotCounted", "alice", []natter.ArchiveItem{sized("a", 40), sized("b", 20), sized("c", 40)}, 100, nil},
		{"ExactlyAtQuotaThenOver", "alice", []natter.ArchiveItem{sized("d", 1)}, 100, natter.ErrQuota},
		{"RepeatAtQuota", "alice", []natter.ArchiveItem{sized("a", 40)}, 100, nil},
		{"OtherUserOwnQuota", "bob", []natter.ArchiveItem{sized("a", 100)}, 100, nil},
		{"ZeroQuota", "bob", []natter.ArchiveItem{sized("b", 1)}, 0, natter.ErrQuota},
		{"NoQuota", "alice", []natter.ArchiveItem{sized("e", 1000)}, -1, nil},
		{"OverAfterNoQuota", "alice", []natter.ArchiveItem{sized("f", 1)}, 1100, natter.ErrQuota},
	}
	for _, tt := range tests {
		err := s.PutArchive(ctx, tt.user, tt.items, at(1), tt.quota)
		if tt.err != nil {
			wantErr(t, tt.name, err, tt.err)
		} else if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
	}
	// The refused batch stored none of its records (not even c, which
	// fitted alone): c came with the third put, d never.
	checkRecords(t, "alice", allRecords(t, s, "alice"), 0, sized("a", 40), sized("b", 20), sized("c", 40), sized("e", 1000))
	checkRecords(t, "bob", allRecords(t, s, "bob"), 0, sized("a", 100))

	// Turning the archive off gives the space back.
	if err := s.SetArchive(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}
	archiveOn(t, s, "alice")
	if err := s.PutArchive(ctx, "alice", []natter.ArchiveItem{sized("a", 100)}, at(2), 100); err != nil {
		t.Fatalf("PutArchive after off and on, at the quota: %v", err)
	}
}

func testArchiveOffDeletes(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	for _, u := range []natter.UserID{"alice", "bob"} {
		archiveOn(t, s, u)
		if _, err := s.PutBundle(ctx, u, "phone", key("bundle")); err != nil {
			t.Fatal(err)
		}
		if err := s.PutArchiveKey(ctx, u, "phone", key("wrapped for "+string(u))); err != nil {
			t.Fatal(err)
		}
		putArchive(t, s, u, 1, rec("k1"), rec("k2"))
	}
	old := allRecords(t, s, "alice")

	if err := s.SetArchive(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}
	if recs, more, err := s.ArchiveRecords(ctx, "alice", 0, 10, 1000); err != nil || len(recs) != 0 || more {
		t.Fatalf("ArchiveRecords after off = %d records, more %v, %v", len(recs), more, err)
	}
	if keys, err := s.ArchiveKeys(ctx, "alice"); err != nil || len(keys) != 0 {
		t.Fatalf("ArchiveKeys after off = %q, %v", keys, err)
	}
	// bob's archive is untouched.
	checkRecords(t, "bob's records", allRecords(t, s, "bob"), 0, rec("k1"), rec("k2"))
	if keys, err := s.ArchiveKeys(ctx, "bob"); err != nil || len(keys) != 1 || !bytes.Equal(keys["phone"], key("wrapped for bob")) {
		t.Fatalf("bob's ArchiveKeys = %q, %v", keys, err)
	}

	// On again: empty, the old keys may be put again, and new records
	// come after every old sequence number (a device that read up to the
	// old last one misses none).
	archiveOn(t, s, "alice")
	if recs := allRecords(t, s, "alice"); len(recs) != 0 {
		t.Fatalf("archive on again holds %d old records", len(recs))
	}
	if keys, err := s.ArchiveKeys(ctx, "alice"); err != nil || len(keys) != 0 {
		t.Fatalf("ArchiveKeys on again = %q, %v", keys, err)
	}
	putArchive(t, s, "alice", 2, rec("k1"))
	recs, _, err := s.ArchiveRecords(ctx, "alice", old[len(old)-1].Seq, 10, 1000)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, "after off and on", recs, old[len(old)-1].Seq, rec("k1"))
}

func testArchiveKeys(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	for _, d := range []natter.DeviceID{"laptop", "phone"} {
		if _, err := s.PutBundle(ctx, "alice", d, key("bundle of "+string(d))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutBundle(ctx, "bob", "tablet", key("bundle")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "PutArchiveKey while off", s.PutArchiveKey(ctx, "alice", "phone", key("w")), natter.ErrArchiveOff)
	if keys, err := s.ArchiveKeys(ctx, "alice"); err != nil || len(keys) != 0 {
		t.Fatalf("ArchiveKeys while off = %q, %v", keys, err)
	}
	archiveOn(t, s, "alice")
	archiveOn(t, s, "bob")

	put := func(user natter.UserID, device natter.DeviceID, wrapped []byte) {
		t.Helper()
		if err := s.PutArchiveKey(ctx, user, device, wrapped); err != nil {
			t.Fatalf("PutArchiveKey(%s/%s): %v", user, device, err)
		}
	}
	check := func(user natter.UserID, want map[natter.DeviceID][]byte) {
		t.Helper()
		got, err := s.ArchiveKeys(ctx, user)
		if err != nil {
			t.Fatalf("ArchiveKeys(%s): %v", user, err)
		}
		if len(got) != len(want) {
			t.Fatalf("ArchiveKeys(%s) = %q, want %q", user, got, want)
		}
		for d, w := range want {
			if !bytes.Equal(got[d], w) {
				t.Fatalf("ArchiveKeys(%s)[%s] = %q, want %q", user, d, got[d], w)
			}
		}
	}

	put("alice", "phone", key("for phone"))
	check("alice", map[natter.DeviceID][]byte{"phone": key("for phone")})
	put("alice", "laptop", key("for laptop"))
	put("alice", "phone", key("for phone, again")) // replaces
	check("alice", map[natter.DeviceID][]byte{"phone": key("for phone, again"), "laptop": key("for laptop")})
	check("bob", nil)

	wantErr(t, "PutArchiveKey for a device with no bundle", s.PutArchiveKey(ctx, "alice", "tablet", key("w")), natter.ErrNoSuchDevice)
	wantErr(t, "PutArchiveKey for another user's device", s.PutArchiveKey(ctx, "bob", "phone", key("w")), natter.ErrNoSuchDevice)
	wantErr(t, "PutArchiveKey with an empty key", s.PutArchiveKey(ctx, "alice", "laptop", nil), natter.ErrBadRequest)
	put("bob", "tablet", []byte{0})
	check("bob", map[natter.DeviceID][]byte{"tablet": {0}})
	check("alice", map[natter.DeviceID][]byte{"phone": key("for phone, again"), "laptop": key("for laptop")})
}

// testConcurrentArchivePuts: every device of a user puts the same records at
// once (as they do: each puts the messages it sees), some under a quota.
// Each key is stored once, sequence numbers are distinct, and the quota is
// never passed.
func testConcurrentArchivePuts(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob")
	archiveOn(t, s, "alice")
	archiveOn(t, s, "bob")
	const devices, keys = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*devices*keys)
	for d := range devices {
		wg.Go(func() {
			for k := range keys {
				// Two records per put, overlapping the next put's.
				items := []natter.ArchiveItem{rec(fmt.Sprint("k", k)), rec(fmt.Sprint("k", k+1))}
				if err := s.PutArchive(ctx, "alice", items, at(d), -1); err != nil {
					errs <- err
				}
				// bob's quota fits 20 records of 10 bytes.
				err := s.PutArchive(ctx, "bob", []natter.ArchiveItem{sized(fmt.Sprint(d, "-", k), 10)}, at(d), 200)
				if err != nil && !errors.Is(err, natter.ErrQuota) {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("PutArchive: %v", err)
	}
	recs := allRecords(t, s, "alice")
	if len(recs) != keys+1 {
		t.Fatalf("alice holds %d records, want %d (one per key)", len(recs), keys+1)
	}
	var datas [][]byte
	for _, r := range recs {
		datas = append(datas, r.Data)
	}
	for k := range keys + 1 {
		want := rec(fmt.Sprint("k", k)).Data
		if !slices.ContainsFunc(datas, func(d []byte) bool { return bytes.Equal(d, want) }) {
			t.Fatalf("record k%d missing", k)
		}
	}
	if n := len(allRecords(t, s, "bob")); n != 20 {
		t.Fatalf("bob holds %d records of 10 bytes under a quota of 200, want 20", n)
	}
}
