package bustest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// RunRegistry runs the natter.Registry conformance suite. open must return a
// new, empty registry each time it is called; it is called once per subtest,
// from parallel subtests, and is responsible for releasing what it opened
// (with t.Cleanup).
func RunRegistry(t *testing.T, open func(t *testing.T) natter.Registry) {
	tests := []struct {
		name string
		fn   func(t *testing.T, reg natter.Registry)
	}{
		{"Empty", testRegistryEmpty},
		{"PutSessions", testPutSessions},
		{"Replace", testReplace},
		{"Delete", testDelete},
		{"DeleteConnMismatch", testDeleteConnMismatch},
		{"DeleteMissing", testDeleteMissing},
		{"Quiet", testQuiet},
		{"OrderedByDevice", testOrderedByDevice},
		{"IndependentUsers", testIndependentUsers},
		{"Concurrent", testRegistryConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// since is a fixed session start time: UTC, no monotonic reading, whole
// microseconds (so that any serialisation keeps it exact).
var since = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// session returns a fully populated live session.
func session(user natter.UserID, device natter.DeviceID, conn string) natter.LiveSession {
	return natter.LiveSession{
		User:   user,
		Device: device,
		Conn:   conn,
		Node:   "node-1",
		Status: natter.StatusOnline,
		Text:   "at my desk",
		Reach: []natter.Candidate{
			{Type: "host", Proto: "udp", Addr: "192.168.1.10:50000", Priority: 2130706431},
			{Type: "srflx", Proto: "udp", Addr: "[2001:db8::1]:50001"},
		},
		Since: since,
	}
}

func put(t *testing.T, reg natter.Registry, sessions ...natter.LiveSession) {
	t.Helper()
	for _, s := range sessions {
		if err := reg.Put(context.Background(), s); err != nil {
			t.Fatalf("Put %s/%s: %v", s.User, s.Device, err)
		}
	}
}

func del(t *testing.T, reg natter.Registry, user natter.UserID, device natter.DeviceID, conn string) bool {
	t.Helper()
	ok, err := reg.Delete(context.Background(), user, device, conn)
	if err != nil {
		t.Fatalf("Delete %s/%s conn %s: %v", user, device, conn, err)
	}
	return ok
}

// checkSessions fails the test unless user's sessions are exactly want, in
// that order.
func checkSessions(t *testing.T, reg natter.Registry, user natter.UserID, want ...natter.LiveSession) {
	t.Helper()
	got, err := reg.Sessions(context.Background(), user)
	if err != nil {
		t.Fatalf("Sessions(%s): %v", user, err)
	}
	if len(got) != len(want) || !slices.EqualFunc(got, want, sameSession) {
		t.Fatalf("Sessions(%s):\ngot  %s\nwant %s", user, describeSessions(got), describeSessions(want))
	}
}

// sameSession compares sessions field by field: times with Equal (a
// registry may hand back another location or no monotonic reading) and an
// empty Reach the same as a nil one.
func sameSession(a, b natter.LiveSession) bool {
	return a.User == b.User && a.Device == b.Device && a.Conn == b.Conn && a.Node == b.Node &&
		a.Status == b.Status && a.Text == b.Text && a.Since.Equal(b.Since) &&
		slices.Equal(a.Reach, b.Reach) && a.Quiet == b.Quiet
}

func describeSessions(ss []natter.LiveSession) string {
	var parts []string
	for _, s := range ss {
		parts = append(parts, fmt.Sprintf("{%s/%s conn=%s node=%s %s %q reach=%v since=%s quiet=%v}",
			s.User, s.Device, s.Conn, s.Node, s.Status, s.Text, s.Reach, s.Since.Format(time.RFC3339Nano), s.Quiet))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// testRegistryEmpty: a user without sessions has none, without error.
func testRegistryEmpty(t *testing.T, reg natter.Registry) {
	checkSessions(t, reg, "alice")
}

// testPutSessions: a session comes back with every field as put.
func testPutSessions(t *testing.T, reg natter.Registry) {
	s := session("alice", "laptop", "c1")
	put(t, reg, s)
	checkSessions(t, reg, "alice", s)

	bare := natter.LiveSession{User: "bob", Device: "phone", Conn: "c2", Node: "n", Status: natter.StatusAway, Since: since}
	put(t, reg, bare)
	checkSessions(t, reg, "bob", bare)
}

// testReplace: a second Put for the same device replaces the first (the
// device reconnected, or changed its presence or reach).
func testReplace(t *testing.T, reg natter.Registry) {
	put(t, reg, session("alice", "laptop", "c1"))
	s := session("alice", "laptop", "c2")
	s.Node, s.Status, s.Text, s.Reach = "node-2", natter.StatusBusy, "in a meeting", nil
	s.Since = since.Add(time.Hour)
	put(t, reg, s)
	checkSessions(t, reg, "alice", s)
}

// testDelete: Delete with the owning connection removes the session and says
// so.
func testDelete(t *testing.T, reg natter.Registry) {
	laptop, phone := session("alice", "laptop", "c1"), session("alice", "phone", "c2")
	put(t, reg, laptop, phone)
	if !del(t, reg, "alice", "laptop", "c1") {
		t.Fatal("Delete of the owning connection reported nothing removed")
	}
	checkSessions(t, reg, "alice", phone)
	if !del(t, reg, "alice", "phone", "c2") {
		t.Fatal("Delete of the owning connection reported nothing removed")
	}
	checkSessions(t, reg, "alice")
}

// testDeleteConnMismatch: when a device reconnected on a new connection, the
// old connection's Delete (which may come late) leaves the new entry alone.
func testDeleteConnMismatch(t *testing.T, reg natter.Registry) {
	put(t, reg, session("alice", "laptop", "old"))
	s := session("alice", "laptop", "new")
	put(t, reg, s)
	if del(t, reg, "alice", "laptop", "old") {
		t.Fatal("Delete with a connection that no longer owns the session reported a removal")
	}
	checkSessions(t, reg, "alice", s)
	if !del(t, reg, "alice", "laptop", "new") {
		t.Fatal("Delete of the owning connection reported nothing removed")
	}
	checkSessions(t, reg, "alice")
}

// testDeleteMissing: deleting what is not there is not an error.
func testDeleteMissing(t *testing.T, reg natter.Registry) {
	if del(t, reg, "alice", "laptop", "c1") {
		t.Fatal("Delete of a missing session reported a removal")
	}
	put(t, reg, session("alice", "laptop", "c1"))
	if del(t, reg, "alice", "phone", "c1") {
		t.Fatal("Delete of a missing device reported a removal")
	}
	if !del(t, reg, "alice", "laptop", "c1") || del(t, reg, "alice", "laptop", "c1") {
		t.Fatal("a second Delete of the same session reported a removal")
	}
}

// testQuiet: Quiet is kept as put, beside the user's other sessions, and
// follows the session when it is replaced (a device's quiet one-shot
// command replacing its real session, or the other way round); Delete and
// Sessions treat a quiet session like any other.
func testQuiet(t *testing.T, reg natter.Registry) {
	laptop := session("alice", "laptop", "c1")
	phone := session("alice", "phone", "c2")
	phone.Quiet, phone.Reach = true, nil
	put(t, reg, laptop, phone)
	checkSessions(t, reg, "alice", laptop, phone)

	// The laptop's real session is replaced by a quiet one, and back.
	quiet := session("alice", "laptop", "c3")
	quiet.Quiet, quiet.Reach = true, nil
	put(t, reg, quiet)
	checkSessions(t, reg, "alice", quiet, phone)
	if del(t, reg, "alice", "laptop", "c1") {
		t.Fatal("Delete by the replaced connection removed the quiet session")
	}
	real := session("alice", "laptop", "c4")
	put(t, reg, real)
	checkSessions(t, reg, "alice", real, phone)

	// With the real session gone, what is left counts for no presence.
	if !del(t, reg, "alice", "laptop", "c4") {
		t.Fatal("Delete of the owning connection reported nothing removed")
	}
	checkSessions(t, reg, "alice", phone)
	ss, err := reg.Sessions(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if p := natter.PresenceOf("alice", ss, since); p.Status != natter.StatusOffline || p.Text != "" {
		t.Fatalf("presence of a user with only a quiet session, as the registry gave it: %+v", p)
	}
	if !del(t, reg, "alice", "phone", "c2") {
		t.Fatal("Delete of a quiet session reported nothing removed")
	}
	checkSessions(t, reg, "alice")
}

// testOrderedByDevice: Sessions orders by device ID, whatever the order of
// Puts.
func testOrderedByDevice(t *testing.T, reg natter.Registry) {
	devices := []natter.DeviceID{"tablet", "A-desk", "phone", "b_laptop", "0watch", "laptop", "laptop2"}
	var want []natter.LiveSession
	for i, d := range devices {
		s := session("alice", d, fmt.Sprintf("c%d", i))
		put(t, reg, s)
		want = append(want, s)
	}
	slices.SortFunc(want, func(a, b natter.LiveSession) int { return strings.Compare(string(a.Device), string(b.Device)) })
	checkSessions(t, reg, "alice", want...)
}

// testIndependentUsers: users' sessions never mix, even with equal device
// IDs and connection IDs, or user names that are prefixes of each other.
func testIndependentUsers(t *testing.T, reg natter.Registry) {
	a, a2, b := session("alice", "laptop", "c1"), session("alice2", "laptop", "c1"), session("bob", "laptop", "c1")
	a2.Text, b.Text = "alice2 here", "bob here"
	put(t, reg, a, a2, b)
	checkSessions(t, reg, "alice", a)
	checkSessions(t, reg, "alice2", a2)
	checkSessions(t, reg, "bob", b)
	if !del(t, reg, "alice", "laptop", "c1") {
		t.Fatal("Delete reported nothing removed")
	}
	checkSessions(t, reg, "alice")
	checkSessions(t, reg, "alice2", a2)
	checkSessions(t, reg, "bob", b)
}

// testRegistryConcurrent: many devices coming and going at once end in the
// state the operations imply (run with -race).
func testRegistryConcurrent(t *testing.T, reg natter.Registry) {
	const devices, rounds = 8, 20
	var wg sync.WaitGroup
	for d := range devices {
		wg.Go(func() {
			dev := natter.DeviceID(fmt.Sprintf("d%d", d))
			for r := range rounds {
				conn := fmt.Sprintf("c%d-%d", d, r)
				if err := reg.Put(context.Background(), session("alice", dev, conn)); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				if _, err := reg.Sessions(context.Background(), "alice"); err != nil {
					t.Errorf("Sessions: %v", err)
					return
				}
				// Odd devices stay online with their last connection.
				if d%2 == 1 && r == rounds-1 {
					break
				}
				if ok, err := reg.Delete(context.Background(), "alice", dev, conn); err != nil || !ok {
					t.Errorf("Delete %s %s: %v, %v; want true, nil", dev, conn, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	var want []natter.LiveSession
	for d := 1; d < devices; d += 2 {
		want = append(want, session("alice", natter.DeviceID(fmt.Sprintf("d%d", d)), fmt.Sprintf("c%d-%d", d, rounds-1)))
	}
	checkSessions(t, reg, "alice", want...)
}
