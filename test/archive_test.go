package test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/server"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// sealedRecord stands in for a record a client sealed: its key, and data
// that names the key (the server hands records back without their keys),
// padded with random bytes to n bytes.
func sealedRecord(key string, n int) wire.ArchiveItem {
	d := make([]byte, max(n, len(key)+1))
	rand.Read(d)
	copy(d, key+"\x00")
	return wire.ArchiveItem{Key: key, Data: d}
}

// keyOf returns the key a sealedRecord's data names.
func keyOf(data []byte) string {
	k, _, _ := bytes.Cut(data, []byte{0})
	return string(k)
}

func archiveSet(t *testing.T, r *raw, on bool) *wire.ArchiveState {
	t.Helper()
	return r.call(wire.ArchiveSet{On: on}, wire.TArchiveState).(*wire.ArchiveState)
}

func archiveGet(t *testing.T, r *raw, after int64, limit int) *wire.ArchiveState {
	t.Helper()
	return r.call(wire.ArchiveGet{After: after, Limit: limit}, wire.TArchiveState).(*wire.ArchiveState)
}

func archivePut(t *testing.T, r *raw, items ...wire.ArchiveItem) error {
	t.Helper()
	_, err := r.try(wire.ArchivePut{Records: items}, wire.TOK)
	return err
}

// archiveAll pages through r's whole archive with ArchiveGet (limit per
// page), checking that sequence numbers increase and that More is set on
// every page but the last.
func archiveAll(t *testing.T, r *raw, limit int) []wire.ArchiveRecord {
	t.Helper()
	var all []wire.ArchiveRecord
	after := int64(0)
	for {
		st := archiveGet(t, r, after, limit)
		for _, rec := range st.Records {
			if rec.Seq <= after {
				t.Fatalf("%s: record seq %d after %d", r.user, rec.Seq, after)
			}
			after = rec.Seq
		}
		all = append(all, st.Records...)
		if !st.More {
			return all
		}
		if len(st.Records) == 0 {
			t.Fatalf("%s: an empty page with More set", r.user)
		}
	}
}

// keysOf lists the keys the records' data name, in order.
func keysOf(recs []wire.ArchiveRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, keyOf(r.Data))
	}
	return out
}

// TestArchive: the archive is off by default; while off nothing can be put;
// once on, records come back in order, page by page, each key once; wrapped
// keys go to their device only; each user sees only their own archive; off
// deletes everything.
func TestArchive(t *testing.T) {
	in := servertest.Start(t)
	a1, bob := signup(t, in, "alice"), signup(t, in, "bob")
	a2 := login(t, in, "alice", "")

	st := archiveGet(t, a1, 0, 0)
	if st.On || len(st.Records) != 0 || st.Key != nil || len(st.KeyDevices) != 0 || st.More {
		t.Fatalf("a new user's archive: %+v, want off and empty", st)
	}
	err := archivePut(t, a1, sealedRecord("k1", 100))
	wantCode(t, "ArchivePut while off", err, wire.CodeArchiveOff)
	if !strings.Contains(err.Error(), "turn it on first") {
		t.Fatalf("archive_off message %q does not say what to do", err)
	}
	_, err = a1.try(wire.ArchiveKeyPut{Device: a2.device, Wrapped: blob("w")}, wire.TOK)
	wantCode(t, "ArchiveKeyPut while off", err, wire.CodeArchiveOff)

	if st := archiveSet(t, a1, true); !st.On || st.Key != nil || len(st.KeyDevices) != 0 || len(st.Records) != 0 {
		t.Fatalf("ArchiveSet on: %+v", st)
	}
	if st := archiveGet(t, a2, 0, 0); !st.On {
		t.Fatal("alice's other device sees her archive off")
	}

	// Both devices put what they see: the same records, in part.
	recs := map[string]wire.ArchiveItem{}
	for _, k := range []string{"k1", "k2", "k3", "k4", "k5"} {
		recs[k] = sealedRecord(k, 1000)
	}
	if err := archivePut(t, a1, recs["k1"], recs["k2"], recs["k3"]); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	dupData := sealedRecord("k2", 50) // the same key, other bytes: skipped
	if err := archivePut(t, a2, dupData, recs["k4"], recs["k1"], recs["k5"], recs["k4"]); err != nil {
		t.Fatal(err)
	}
	want := []string{"k1", "k2", "k3", "k4", "k5"}
	for _, r := range []*raw{a1, a2} {
		got := archiveGet(t, r, 0, 0)
		if !slices.Equal(keysOf(got.Records), want) || got.More {
			t.Fatalf("%s's ArchiveGet: %q, more %v; want %q", r.device, keysOf(got.Records), got.More, want)
		}
		for _, rec := range got.Records {
			if !bytes.Equal(rec.Data, recs[keyOf(rec.Data)].Data) {
				t.Fatalf("record %s comes back different", keyOf(rec.Data))
			}
		}
		if at := got.Records[4].At; at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
			t.Fatalf("record k5 stored at %v, put at %v", at, before)
		}
	}
	// Paging: After and Limit, More on every page but the last.
	page := archiveGet(t, a1, 0, 2)
	if !slices.Equal(keysOf(page.Records), want[:2]) || !page.More {
		t.Fatalf("first page of 2: %q, more %v", keysOf(page.Records), page.More)
	}
	page = archiveGet(t, a1, page.Records[1].Seq, 2)
	if !slices.Equal(keysOf(page.Records), want[2:4]) || !page.More {
		t.Fatalf("second page of 2: %q, more %v", keysOf(page.Records), page.More)
	}
	page = archiveGet(t, a1, page.Records[1].Seq, 2)
	if !slices.Equal(keysOf(page.Records), want[4:]) || page.More {
		t.Fatalf("last page: %q, more %v", keysOf(page.Records), page.More)
	}
	if page := archiveGet(t, a1, page.Records[0].Seq, 2); len(page.Records) != 0 || page.More || !page.On {
		t.Fatalf("after the last record: %+v", page)
	}

	// Wrapped keys: only for devices of alice that published keys; each
	// device gets its own, and every device sees which have one.
	a1.call(wire.PublishKeys{Bundle: blob("a1 bundle")}, wire.TOK)
	a2.call(wire.PublishKeys{Bundle: blob("a2 bundle")}, wire.TOK)
	bob.call(wire.PublishKeys{Bundle: blob("bob bundle")}, wire.TOK)
	for _, tt := range []struct {
		name   string
		device natter.DeviceID
	}{
		{"UnknownDevice", "no-such-device"},
		{"BobsDevice", bob.device},
	} {
		_, err := a1.try(wire.ArchiveKeyPut{Device: tt.device, Wrapped: blob("w")}, wire.TOK)
		wantCode(t, "ArchiveKeyPut for "+tt.name, err, wire.CodeBadRequest)
		if !strings.Contains(err.Error(), "not one of your devices") {
			t.Fatalf("%s: message %q", tt.name, err)
		}
	}
	a1.call(wire.ArchiveKeyPut{Device: a2.device, Wrapped: blob("old key for a2")}, wire.TOK)
	a1.call(wire.ArchiveKeyPut{Device: a2.device, Wrapped: blob("key for a2")}, wire.TOK) // replaces
	devices := []natter.DeviceID{a2.device}
	if st := archiveGet(t, a2, 0, 1); !bytes.Equal(st.Key, blob("key for a2")) || !slices.Equal(st.KeyDevices, devices) {
		t.Fatalf("a2's state: key %q, key devices %v", st.Key, st.KeyDevices)
	}
	if st := archiveGet(t, a1, 0, 1); st.Key != nil || !slices.Equal(st.KeyDevices, devices) {
		t.Fatalf("a1's state: key %q (a2's key must not reach a1), key devices %v", st.Key, st.KeyDevices)
	}
	a2.call(wire.ArchiveKeyPut{Device: a1.device, Wrapped: blob("key for a1")}, wire.TOK)
	devices = []natter.DeviceID{a1.device, a2.device}
	slices.Sort(devices)
	if st := archiveSet(t, a1, true); !bytes.Equal(st.Key, blob("key for a1")) || !slices.Equal(st.KeyDevices, devices) {
		t.Fatalf("ArchiveSet on again: key %q, key devices %v; want a1's key, %v", st.Key, st.KeyDevices, devices)
	}

	// bob sees none of it, and his archive is his own.
	if st := archiveGet(t, bob, 0, 0); st.On || len(st.Records) != 0 || st.Key != nil || len(st.KeyDevices) != 0 {
		t.Fatalf("bob's view: %+v", st)
	}
	_, err = bob.try(wire.ArchiveKeyPut{Device: bob.device, Wrapped: blob("w")}, wire.TOK)
	wantCode(t, "bob's ArchiveKeyPut while his archive is off", err, wire.CodeArchiveOff)
	archiveSet(t, bob, true)
	bobRec := sealedRecord("k1", 10) // alice's key: a separate record
	if err := archivePut(t, bob, bobRec); err != nil {
		t.Fatal(err)
	}
	if st := archiveGet(t, bob, 0, 0); len(st.Records) != 1 || !bytes.Equal(st.Records[0].Data, bobRec.Data) || st.Key != nil || len(st.KeyDevices) != 0 {
		t.Fatalf("bob's archive: %+v", st)
	}
	if got := archiveGet(t, a1, 0, 0); !slices.Equal(keysOf(got.Records), want) || !bytes.Equal(got.Records[0].Data, recs["k1"].Data) {
		t.Fatalf("alice's archive after bob's put: %q", keysOf(got.Records))
	}

	// Off deletes alice's records and keys; on again starts empty.
	if st := archiveSet(t, a2, false); st.On || len(st.KeyDevices) != 0 || st.Key != nil {
		t.Fatalf("ArchiveSet off: %+v", st)
	}
	if st := archiveGet(t, a1, 0, 0); st.On || len(st.Records) != 0 || len(st.KeyDevices) != 0 {
		t.Fatalf("alice's archive after off: %+v", st)
	}
	err = archivePut(t, a1, recs["k1"])
	wantCode(t, "ArchivePut after off", err, wire.CodeArchiveOff)
	if st := archiveSet(t, a1, true); len(st.Records) != 0 || len(st.KeyDevices) != 0 {
		t.Fatalf("on again: %+v", st)
	}
	if got := archiveGet(t, a1, 0, 0); len(got.Records) != 0 {
		t.Fatalf("on again: %d old records", len(got.Records))
	}
	if st := archiveGet(t, bob, 0, 0); len(st.Records) != 1 {
		t.Fatalf("alice's off touched bob's archive: %+v", st)
	}

	if n := metric(t, in, "natter_archive_records_total"); n != 9 {
		t.Fatalf("natter_archive_records_total = %v, want 9 (3 + 5 + bob's 1, repeats included)", n)
	}
}

// TestArchivePaging: ArchiveGet's Limit defaults to 100 and is capped at
// wire.MaxArchiveBatch; records are returned up to wire.MaxArchiveBytes of
// data, and a client paging with After gets each record once, in order.
func TestArchivePaging(t *testing.T) {
	in := servertest.Start(t)
	alice := signup(t, in, "alice")
	archiveSet(t, alice, true)
	var want []string
	for p := range 3 {
		var items []wire.ArchiveItem
		for i := range wire.MaxArchiveBatch {
			k := fmt.Sprintf("p%d-%02d", p, i)
			items = append(items, sealedRecord(k, 100))
			want = append(want, k)
		}
		if err := archivePut(t, alice, items...); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{0, -1, 1000} {
		st := archiveGet(t, alice, 0, limit)
		if len(st.Records) != wire.MaxArchiveBatch || !st.More {
			t.Fatalf("ArchiveGet with limit %d: %d records, more %v; want %d, more", limit, len(st.Records), st.More, wire.MaxArchiveBatch)
		}
	}
	if got := keysOf(archiveAll(t, alice, 50)); !slices.Equal(got, want) {
		t.Fatalf("paged through %d records, want %d in order", len(got), len(want))
	}

	// Large records: at most wire.MaxArchiveBytes of data per answer, but
	// at least one record.
	big := []wire.ArchiveItem{
		sealedRecord("big1", wire.MaxArchiveData),
		sealedRecord("big2", wire.MaxArchiveBytes-wire.MaxArchiveData),
	}
	if err := archivePut(t, alice, big...); err != nil {
		t.Fatal(err)
	}
	if err := archivePut(t, alice, sealedRecord("big3", wire.MaxArchiveData)); err != nil {
		t.Fatal(err)
	}
	after := archiveAll(t, alice, 0)
	last := after[len(want)-1].Seq
	st := archiveGet(t, alice, last, 0)
	if !slices.Equal(keysOf(st.Records), []string{"big1", "big2"}) || !st.More {
		t.Fatalf("large records, first answer: %q, more %v; want big1 and big2 (exactly %d bytes), more", keysOf(st.Records), st.More, wire.MaxArchiveBytes)
	}
	st = archiveGet(t, alice, st.Records[1].Seq, 0)
	if !slices.Equal(keysOf(st.Records), []string{"big3"}) || st.More || !bytes.Equal(st.Records[0].Data, archiveAll(t, alice, 0)[len(want)+2].Data) {
		t.Fatalf("large records, second answer: %q, more %v", keysOf(st.Records), st.More)
	}
}

// TestArchiveRefusals: limits and malformed requests get clear codes, store
// nothing, and the connection survives each.
func TestArchiveRefusals(t *testing.T) {
	in := servertest.Start(t)
	alice := signup(t, in, "alice")
	alice.call(wire.PublishKeys{Bundle: blob("bundle")}, wire.TOK)
	archiveSet(t, alice, true)

	many := make([]wire.ArchiveItem, wire.MaxArchiveBatch+1)
	for i := range many {
		many[i] = sealedRecord(fmt.Sprint("many", i), 10)
	}
	fill := make([]wire.ArchiveItem, wire.MaxArchiveBatch)
	for i := range fill {
		fill[i] = sealedRecord(fmt.Sprint("fill", i), wire.MaxArchiveBytes/wire.MaxArchiveBatch)
	}
	fill[0] = sealedRecord("fill0", wire.MaxArchiveBytes/wire.MaxArchiveBatch+1)
	ok := sealedRecord("ok", 10)
	tests := []struct {
		name string
		req  any
		want wire.Code
		says string
	}{
		{"TooManyRecords", wire.ArchivePut{Records: many}, wire.CodeTooLarge, "at most 64"},
		{"KeyTooLong", wire.ArchivePut{Records: []wire.ArchiveItem{ok, sealedRecord(strings.Repeat("k", wire.MaxArchiveKey+1), 10)}}, wire.CodeTooLarge, "key of record 1"},
		{"NoKey", wire.ArchivePut{Records: []wire.ArchiveItem{ok, {Data: []byte{1}}}}, wire.CodeBadRequest, "record 1 has no key"},
		{"NoData", wire.ArchivePut{Records: []wire.ArchiveItem{ok, {Key: "empty"}}}, wire.CodeBadRequest, "record 1 has no data"},
		{"RecordTooLarge", wire.ArchivePut{Records: []wire.ArchiveItem{ok, sealedRecord("huge", wire.MaxArchiveData+1)}}, wire.CodeTooLarge, "record 1 is"},
		{"TotalTooLarge", wire.ArchivePut{Records: fill}, wire.CodeTooLarge, "add up to"},
		{"NoWrappedKey", wire.ArchiveKeyPut{Device: alice.device}, wire.CodeBadRequest, "no wrapped key"},
		{"WrappedKeyTooLarge", wire.ArchiveKeyPut{Device: alice.device, Wrapped: make([]byte, wire.MaxWrappedKey+1)}, wire.CodeTooLarge, "wrapped key"},
		{"BadDevice", wire.ArchiveKeyPut{Device: "../x", Wrapped: blob("w")}, wire.CodeBadRequest, "device id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := alice.try(tt.req, wire.TOK)
			wantCode(t, tt.name, err, tt.want)
			if !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("%s: message %q does not say %q", tt.name, err, tt.says)
			}
			alice.call(wire.Ping{}, wire.TPong)
		})
	}
	if st := archiveGet(t, alice, 0, 0); len(st.Records) != 0 || len(st.KeyDevices) != 0 {
		t.Fatalf("refused requests stored %d records, keys for %v", len(st.Records), st.KeyDevices)
	}
	// At the limits exactly: accepted.
	fill[0] = sealedRecord("fill0", wire.MaxArchiveBytes/wire.MaxArchiveBatch)
	fill[1] = sealedRecord(strings.Repeat("k", wire.MaxArchiveKey), wire.MaxArchiveBytes/wire.MaxArchiveBatch)
	if err := archivePut(t, alice, fill...); err != nil {
		t.Fatalf("ArchivePut at the limits: %v", err)
	}
	alice.call(wire.ArchiveKeyPut{Device: alice.device, Wrapped: make([]byte, wire.MaxWrappedKey)}, wire.TOK)
}

// TestArchiveQuota: a put that would take the user's records over the
// archive quota is refused whole; repeats do not count; each user has their
// own quota; turning the archive off gives the space back.
func TestArchiveQuota(t *testing.T) {
	in := servertest.Start(t, func(c *server.Config) { c.ArchiveQuota = 3000 })
	alice, bob := signup(t, in, "alice"), signup(t, in, "bob")
	archiveSet(t, alice, true)
	archiveSet(t, bob, true)
	r1, r2, r3, r4 := sealedRecord("r1", 1000), sealedRecord("r2", 1000), sealedRecord("r3", 1000), sealedRecord("r4", 1000)
	if err := archivePut(t, alice, r1, r2); err != nil {
		t.Fatal(err)
	}
	err := archivePut(t, alice, r3, r4)
	wantCode(t, "ArchivePut over the quota", err, wire.CodeQuota)
	if !strings.Contains(err.Error(), "quota of 3000 bytes") || !strings.Contains(err.Error(), "nothing was stored") {
		t.Fatalf("quota message %q does not say the quota and that nothing was stored", err)
	}
	if got := keysOf(archiveGet(t, alice, 0, 0).Records); !slices.Equal(got, []string{"r1", "r2"}) {
		t.Fatalf("after a refused batch: %q; want r1, r2 (r3 of the batch fitted, but the batch is all or nothing)", got)
	}
	if err := archivePut(t, alice, r1, r2, r3); err != nil { // exactly at the quota: repeats do not count
		t.Fatalf("ArchivePut up to the quota exactly: %v", err)
	}
	wantCode(t, "ArchivePut at the quota", archivePut(t, alice, sealedRecord("r5", 1)), wire.CodeQuota)
	if err := archivePut(t, alice, r2); err != nil {
		t.Fatalf("a repeat at the quota: %v", err)
	}
	if err := archivePut(t, bob, r1, r2, r3); err != nil {
		t.Fatalf("bob's own quota: %v", err)
	}
	archiveSet(t, alice, false)
	archiveSet(t, alice, true)
	if err := archivePut(t, alice, r4, r3, r2); err != nil {
		t.Fatalf("after off and on: %v", err)
	}
}

// TestArchiveDisabled: natterd --archive=false refuses to turn archives on
// or add to them, clearly; reading and turning off still work.
func TestArchiveDisabled(t *testing.T) {
	in := servertest.Start(t, func(c *server.Config) { c.NoArchive = true })
	alice := signup(t, in, "alice")
	alice.call(wire.PublishKeys{Bundle: blob("bundle")}, wire.TOK)
	for _, req := range []any{
		wire.ArchiveSet{On: true},
		wire.ArchivePut{Records: []wire.ArchiveItem{sealedRecord("k", 10)}},
		wire.ArchiveKeyPut{Device: alice.device, Wrapped: blob("w")},
	} {
		_, err := alice.try(req, wire.TArchiveState)
		wantCode(t, fmt.Sprintf("%T on a server without archives", req), err, wire.CodeArchiveOff)
		if !strings.Contains(err.Error(), "operator turned archives off") {
			t.Fatalf("%T: message %q does not say the server keeps no history", req, err)
		}
	}
	if st := archiveGet(t, alice, 0, 0); st.On {
		t.Fatalf("ArchiveGet: %+v", st)
	}
	if st := archiveSet(t, alice, false); st.On {
		t.Fatalf("ArchiveSet off: %+v", st)
	}
}

// TestArchiveSIGKILL kills natterd with SIGKILL while a client pipelines
// ArchivePuts, restarts it on the same data folder, and checks that every
// record acknowledged before the kill is there, intact, once; and that the
// client putting everything again (as it does after a drop) stores each
// record once.
func TestArchiveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills natterd")
	}
	dir := t.TempDir()
	p := startProc(t, dir, "127.0.0.1:0")
	alice := p.signup(t, "alice")
	archiveSet(t, alice, true)
	const n, per = 300, 4
	puts := make([][]wire.ArchiveItem, n)
	data := map[string][]byte{}
	for i := range n {
		for j := range per {
			rec := sealedRecord(fmt.Sprintf("put%03d-%d", i, j), 16<<10)
			puts[i] = append(puts[i], rec)
			data[rec.Key] = rec.Data
		}
	}
	frames := make([][]byte, n)
	for i := range n {
		frames[i], _ = wire.Encode(wire.ArchivePut{Ref: uint64(1000 + i), Records: puts[i]})
	}
	acked := pipelineAndKill(t, p, alice, 1000, frames)

	p = startProc(t, dir, p.addr)
	r := p.hello(t)
	r.call(wire.Login{User: "alice", Password: "password-alice", Device: alice.device}, wire.TAuthed)
	r.drainLogin()
	check := func(when string, mustHave func(i int) bool) {
		t.Helper()
		got := map[string]int{}
		for _, rec := range archiveAll(t, r, 0) {
			k := keyOf(rec.Data)
			got[k]++
			if !bytes.Equal(rec.Data, data[k]) {
				t.Fatalf("%s: record %s comes back different", when, k)
			}
		}
		for k, c := range got {
			if c != 1 {
				t.Errorf("%s: record %s stored %d times", when, k, c)
			}
		}
		for i := range n {
			if !mustHave(i) {
				continue
			}
			for _, rec := range puts[i] {
				if got[rec.Key] != 1 {
					t.Errorf("%s: record %s of put %d missing", when, rec.Key, i)
				}
			}
		}
	}
	check("after the restart", func(i int) bool { return acked[i] })
	for i := range n {
		if err := archivePut(t, r, puts[i]...); err != nil {
			t.Fatalf("put %d again after the restart: %v", i, err)
		}
	}
	check("after putting everything again", func(int) bool { return true })
}
