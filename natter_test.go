package natter

import (
	"errors"
	"sort"
	"testing"
	"time"
)

func TestValidateUserID(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"alice", true}, {"bob.smith", true}, {"a_b-c9", true}, {"abc", true},
		{"ab", false}, {"Alice", false}, {"9lives", false}, {"al ice", false}, {"al/ice", false},
		{"", false}, {"abcdefghijklmnopqrstuvwxyz0123456", false}, {"émile", false},
	} {
		err := ValidateUserID(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateUserID(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateUserID(%q): %v does not wrap ErrInvalidName", tc.name, err)
		}
	}
}

func TestMessageIDsAreTimeOrderedAndValid(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	var ids []string
	for i := range 100 {
		id := NewMessageID(base.Add(time.Duration(i) * time.Millisecond))
		if err := ValidateMessageID(string(id)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, string(id))
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("IDs made later do not sort after earlier ones")
	}
	first, second := NewMessageID(base), NewMessageID(base)
	if first == second {
		t.Fatal("two IDs in the same millisecond are equal")
	}
}

func TestApplyContactOp(t *testing.T) {
	const (
		none = ContactNone
		out  = ContactPendingOut
		in   = ContactPendingIn
		ok   = ContactApproved
		blk  = ContactBlocked
	)
	for _, tc := range []struct {
		op                   ContactOp
		mine, theirs         ContactState
		wantMine, wantTheirs ContactState
		err                  error
	}{
		{OpAdd, none, none, out, in, nil},
		{OpAdd, in, out, ok, ok, nil}, // both asked: approved
		{OpAdd, ok, ok, ok, ok, nil},
		{OpAdd, none, blk, out, blk, nil}, // the blocker is not told
		{OpAdd, blk, none, blk, none, ErrBlocked},
		{OpAccept, in, out, ok, ok, nil},
		{OpAccept, none, none, none, none, ErrNoRequest},
		{OpAccept, out, in, out, in, ErrNoRequest},
		{OpRefuse, in, out, none, none, nil},
		{OpRefuse, none, none, none, none, ErrNoRequest},
		{OpRemove, ok, ok, none, none, nil},
		{OpRemove, out, in, none, none, nil},
		{OpRemove, out, blk, none, blk, nil},
		{OpRemove, none, none, none, none, ErrNotContact},
		{OpBlock, ok, ok, blk, none, nil},
		{OpBlock, none, blk, blk, blk, nil},
		{OpUnblock, blk, none, none, none, nil},
		{OpUnblock, ok, ok, ok, ok, ErrBadRequest},
		{"frobnicate", none, none, none, none, ErrBadRequest},
	} {
		m, th, err := ApplyContactOp(tc.op, tc.mine, tc.theirs)
		if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%s(%q,%q): err %v, want %v", tc.op, tc.mine, tc.theirs, err, tc.err)
			continue
		}
		if m != tc.wantMine || th != tc.wantTheirs {
			t.Errorf("%s(%q,%q) = (%q,%q), want (%q,%q)", tc.op, tc.mine, tc.theirs, m, th, tc.wantMine, tc.wantTheirs)
		}
	}
}

func TestPresenceOf(t *testing.T) {
	t0 := time.Unix(1000, 0)
	seen := time.Unix(500, 0)
	for _, tc := range []struct {
		name     string
		sessions []LiveSession
		want     Presence
	}{
		{"no sessions", nil, Presence{User: "u", Status: StatusOffline, LastSeen: seen}},
		{"one away", []LiveSession{{Status: StatusAway, Text: "lunch", Since: t0}}, Presence{User: "u", Status: StatusAway, Text: "lunch", LastSeen: seen}},
		{"online wins", []LiveSession{{Status: StatusAway, Since: t0}, {Status: StatusOnline, Since: t0}, {Status: StatusBusy, Since: t0}}, Presence{User: "u", Status: StatusOnline, LastSeen: seen}},
		{"busy over away", []LiveSession{{Status: StatusAway, Since: t0}, {Status: StatusBusy, Since: t0}}, Presence{User: "u", Status: StatusBusy, LastSeen: seen}},
		{"newest text", []LiveSession{{Status: StatusOnline, Text: "old", Since: t0}, {Status: StatusAway, Text: "new", Since: t0.Add(time.Second)}}, Presence{User: "u", Status: StatusOnline, Text: "new", LastSeen: seen}},
		{"only quiet", []LiveSession{{Status: StatusOnline, Text: "cron", Since: t0, Quiet: true}}, Presence{User: "u", Status: StatusOffline, LastSeen: seen}},
		{"quiet left out", []LiveSession{{Status: StatusAway, Text: "lunch", Since: t0}, {Status: StatusOnline, Text: "newer", Since: t0.Add(time.Second), Quiet: true}}, Presence{User: "u", Status: StatusAway, Text: "lunch", LastSeen: seen}},
	} {
		if got := PresenceOf("u", tc.sessions, seen); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
