package history

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// t0 is the sending time of the first test message.
var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func open(t *testing.T, path string) *Log {
	t.Helper()
	l, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func add(t *testing.T, l *Log, entries ...Entry) {
	t.Helper()
	if err := l.Add(context.Background(), entries...); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, l *Log) int {
	t.Helper()
	n, err := l.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// msg is a message between alice (the log's user) and peer: from alice if
// out, else from peer; its ID is derived from n, its time n minutes after t0.
func msg(n int, peer natter.UserID, out bool, body string) Entry {
	e := Entry{
		ID: natter.MessageID(fmt.Sprintf("m%04d", n)), From: peer, To: "alice", FromDevice: "dev" + natter.DeviceID(peer),
		Body: body, SentAt: t0.Add(time.Duration(n) * time.Minute), ConvSeq: uint64(n), Path: "server",
		Direction: In, ReceivedAt: t0.Add(time.Hour),
	}
	if out {
		e.From, e.To, e.FromDevice, e.Direction = "alice", peer, "devalice", Out
	}
	return e
}

func TestOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.sqlite")
	l := open(t, path)
	add(t, l, msg(1, "bob", false, "hello"))
	// The file holds plaintext: only its owner may read it, and its WAL.
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	var mode string
	var version int
	if err := l.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal mode %q, %v; want wal", mode, err)
	}
	if err := l.db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != len(migrations) {
		t.Errorf("user_version %d, %v; want %d", version, err, len(migrations))
	}
	// FTS5 is compiled into the driver (the schema needs it).
	var fts int
	if err := l.db.QueryRow("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'hello'").Scan(&fts); err != nil || fts != 1 {
		t.Errorf("fts5 match: %d, %v", fts, err)
	}

	if _, err := Open(context.Background(), ""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing", "h.sqlite")); err == nil {
		t.Error("Open in a missing folder succeeded")
	}
	// A file from a newer natter is refused.
	newer := filepath.Join(t.TempDir(), "newer.sqlite")
	n := open(t, newer)
	n.db.Exec("PRAGMA user_version = 99")
	n.Close()
	if _, err := Open(context.Background(), newer); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer file: %v", err)
	}
}

func TestAddNeverDuplicates(t *testing.T) {
	echo := msg(1, "bob", true, "hello bob")
	echo.Path, echo.ConvSeq = "direct", 0
	unopened := msg(3, "bob", false, "[this message could not be opened: no key]")
	unopened.Unopened = true
	opened := msg(3, "bob", false, "the real text")
	otherSender := msg(1, "carol", false, "same ID, another sender")

	tests := []struct {
		name    string
		batches [][]Entry // each one Add; a nil batch closes and reopens the file
		count   int
		bodies  map[natter.UserID][]string // Page of each peer
		search  map[string]int             // query: hits
	}{
		{"once", [][]Entry{{msg(1, "bob", false, "hi")}}, 1,
			map[natter.UserID][]string{"bob": {"hi"}}, nil},
		{"twice in one Add", [][]Entry{{msg(1, "bob", false, "hi"), msg(1, "bob", false, "hi")}}, 1,
			map[natter.UserID][]string{"bob": {"hi"}}, map[string]int{"hi": 1}},
		{"re-delivered", [][]Entry{{msg(1, "bob", false, "hi")}, {msg(2, "bob", false, "yo")}, {msg(1, "bob", false, "hi"), msg(2, "bob", false, "yo")}}, 2,
			map[natter.UserID][]string{"bob": {"hi", "yo"}}, map[string]int{"hi": 1}},
		{"re-delivered after reopen", [][]Entry{{msg(1, "bob", false, "hi")}, nil, {msg(1, "bob", false, "hi")}, nil}, 1,
			map[natter.UserID][]string{"bob": {"hi"}}, map[string]int{"hi": 1}},
		{"own echo with another path", [][]Entry{{msg(1, "bob", true, "hello bob")}, {echo}}, 1,
			map[natter.UserID][]string{"bob": {"hello bob"}}, map[string]int{"hello": 1}},
		{"same ID from another sender is another message", [][]Entry{{msg(1, "bob", false, "hi")}, {otherSender}}, 2,
			map[natter.UserID][]string{"bob": {"hi"}, "carol": {"same ID, another sender"}}, nil},
		{"an opened copy replaces a note", [][]Entry{{unopened}, {opened}}, 1,
			map[natter.UserID][]string{"bob": {"the real text"}}, map[string]int{"real": 1, "opened": 0}},
		{"a note does not replace an opened copy", [][]Entry{{opened}, nil, {unopened}}, 1,
			map[natter.UserID][]string{"bob": {"the real text"}}, map[string]int{"real": 1, "opened": 0}},
		{"notes are not searched", [][]Entry{{unopened}}, 1,
			map[natter.UserID][]string{"bob": {unopened.Body}}, map[string]int{"opened": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "h.sqlite")
			l, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { l.Close() }()
			for _, b := range tt.batches {
				if b == nil {
					l.Close()
					if l, err = Open(ctx, path); err != nil {
						t.Fatal(err)
					}
					continue
				}
				add(t, l, b...)
			}
			if n := count(t, l); n != tt.count {
				t.Errorf("Count = %d, want %d", n, tt.count)
			}
			for peer, want := range tt.bodies {
				got, _, err := l.Page(ctx, peer, "", 100)
				if err != nil {
					t.Fatal(err)
				}
				var bodies []string
				for _, e := range got {
					bodies = append(bodies, e.Body)
				}
				if !reflect.DeepEqual(bodies, want) {
					t.Errorf("Page(%s) = %q, want %q", peer, bodies, want)
				}
			}
			for q, want := range tt.search {
				hits, err := l.Search(ctx, q, 100)
				if err != nil || len(hits) != want {
					t.Errorf("Search(%q) = %d hits, %v; want %d", q, len(hits), err, want)
				}
			}
		})
	}
}

func TestAddValidates(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "h.sqlite"))
	good := msg(1, "bob", false, "fine")
	bad := []func(e *Entry){
		func(e *Entry) { e.ID = "" },
		func(e *Entry) { e.From = "" },
		func(e *Entry) { e.To = "" },
		func(e *Entry) { e.Direction = "sideways" },
		func(e *Entry) { e.SentAt = time.Time{} },
	}
	for i, f := range bad {
		e := msg(2, "bob", false, "bad")
		f(&e)
		if err := l.Add(context.Background(), good, e); err == nil {
			t.Errorf("case %d: Add accepted %+v", i, e)
		}
	}
	if n := count(t, l); n != 0 {
		t.Errorf("a failed Add logged %d messages; want all or none", n)
	}
	// Add fills in the time of logging.
	e := good
	e.ReceivedAt = time.Time{}
	before := time.Now()
	add(t, l, e)
	got, _, _ := l.Page(context.Background(), "bob", "", 1)
	if len(got) != 1 || got[0].ReceivedAt.Before(before.Add(-time.Second)) {
		t.Errorf("ReceivedAt = %v, want about %v", got, before)
	}
}

func TestEntryRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.sqlite")
	l := open(t, path)
	in := []Entry{msg(1, "bob", false, "from bob"), msg(2, "bob", true, "to bob\nsecond line")}
	in[1].Path, in[1].ConvSeq = "relayed", 0
	in[1].SentAt = in[1].SentAt.Add(123456789 * time.Nanosecond)
	add(t, l, in...)
	l.Close()
	l = open(t, path) // the file survives a reopen
	got, next, err := l.Page(context.Background(), "bob", "", 10)
	if err != nil || next != "" {
		t.Fatalf("Page: next %q, %v", next, err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Errorf("Page after reopen =\n%+v\nwant\n%+v", got, in)
	}
	if got[0].Peer() != "bob" || got[1].Peer() != "bob" {
		t.Errorf("Peer() = %s, %s; want bob", got[0].Peer(), got[1].Peer())
	}
}

func TestPage(t *testing.T) {
	ctx := context.Background()
	l := open(t, filepath.Join(t.TempDir(), "h.sqlite"))
	// 23 messages with bob, some at the same instant, logged out of order;
	// carol's are interleaved and must never show.
	var bob []Entry
	for i := range 23 {
		e := msg(i, "bob", i%3 == 0, fmt.Sprintf("bob %d", i))
		e.SentAt = t0.Add(time.Duration(i/2) * time.Minute) // pairs share a time
		bob = append(bob, e)
	}
	for i := len(bob) - 2; i >= 0; i -= 2 { // the odd ones, newest first
		add(t, l, bob[i])
		add(t, l, msg(100+i, "carol", false, "carol"))
	}
	for i := 0; i < len(bob); i += 2 { // then the even ones
		add(t, l, bob[i])
	}
	// The order of a conversation: by time, then by order of logging.
	want := append([]Entry(nil), bob...)
	for i := 0; i+1 < len(want); i += 2 {
		if want[i].SentAt.Equal(want[i+1].SentAt) {
			want[i], want[i+1] = want[i+1], want[i] // the odd one was logged first
		}
	}

	for _, limit := range []int{1, 2, 5, 22, 23, 24, 100} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			var pages [][]Entry
			var cur Cursor
			for {
				page, next, err := l.Page(ctx, "bob", cur, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 || len(page) > limit {
					t.Fatalf("page of %d messages with limit %d", len(page), limit)
				}
				pages = append(pages, page)
				if next == "" {
					break
				}
				if len(page) != limit {
					t.Fatalf("a short page (%d of %d) with a next cursor", len(page), limit)
				}
				cur = next
			}
			// Newest page first, each page oldest first: reversed pages
			// concatenated are the whole conversation, once, in order.
			var all []Entry
			for i := len(pages) - 1; i >= 0; i-- {
				all = append(all, pages[i]...)
			}
			if !reflect.DeepEqual(all, want) {
				t.Errorf("pages cover %d messages:\n%v\nwant %d:\n%v", len(all), bodies(all), len(want), bodies(want))
			}
		})
	}

	t.Run("messages added while paging", func(t *testing.T) {
		l := open(t, filepath.Join(t.TempDir(), "h.sqlite"))
		for i := range 10 {
			add(t, l, msg(i, "bob", false, fmt.Sprint(i)))
		}
		page, next, err := l.Page(ctx, "bob", "", 4)
		if err != nil || len(page) != 4 || page[0].Body != "6" {
			t.Fatalf("first page %v, %v", bodies(page), err)
		}
		add(t, l, msg(50, "bob", false, "new"))
		page, _, err = l.Page(ctx, "bob", next, 4)
		if err != nil || !reflect.DeepEqual(bodies(page), []string{"2", "3", "4", "5"}) {
			t.Errorf("second page %v, %v; want 2 3 4 5", bodies(page), err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		if page, next, err := l.Page(ctx, "nobody", "", 10); err != nil || len(page) != 0 || next != "" {
			t.Errorf("Page of an empty conversation = %v, %q, %v", page, next, err)
		}
		for _, c := range []Cursor{"-", "1.2", "x y", "é", "zzzzzzzzzzzzzzzzzz"} {
			if _, _, err := l.Page(ctx, "bob", c, 10); !errors.Is(err, ErrBadCursor) {
				t.Errorf("Page with cursor %q: %v, want ErrBadCursor", c, err)
			}
		}
		if _, _, err := l.Page(ctx, "bob", "", 0); err == nil {
			t.Error("Page with limit 0 succeeded")
		}
	})
}

func bodies(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Body)
	}
	return out
}

func TestSearch(t *testing.T) {
	ctx := context.Background()
	l := open(t, filepath.Join(t.TempDir(), "h.sqlite"))
	add(t, l,
		msg(1, "bob", false, "Shall we get coffee tomorrow?"),
		msg(2, "bob", true, "Yes! The café on Main Street (the one with the cat)"),
		msg(3, "carol", false, "I can't make it: AND the coffee machine is broken"),
		msg(4, "carol", true, `she said "coffee" * twice`),
		msg(5, "bob", false, "naïve question: OR NOT NEAR?"),
		msg(6, "bob", true, "body: column-like words and a NEAR(x y) call"),
	)
	tests := []struct {
		query string
		want  []int // message numbers, newest first
	}{
		{"coffee", []int{4, 3, 1}},
		{"COFFEE", []int{4, 3, 1}},
		{"Coff", []int{4, 3, 1}},     // a prefix
		{"coffee*", []int{4, 3, 1}},  // a star typed by the user
		{"cafe", []int{2}},           // accents do not matter
		{"café", []int{2}},           //
		{"naive", []int{5}},          //
		{"coffee machine", []int{3}}, // every word must match
		{"machine coffee", []int{3}}, // in any order
		{"coffee tea", nil},          //
		{`"coffee"`, []int{4, 3, 1}}, // quotes
		{`"coffee`, []int{4, 3, 1}},  // an unmatched quote
		{`coffee"`, []int{4, 3, 1}},  //
		{`(cat)`, []int{2}},          // parentheses
		{`(cat`, []int{2}},           //
		{`cat)`, []int{2}},           //
		{"AND", []int{6, 3}},         // operators are words
		{"and coffee", []int{3}},     //
		{"OR", []int{5}},             //
		{"NOT", []int{5}},            //
		{"NEAR", []int{6, 5}},        //
		{"NEAR(x", []int{6}},         //
		{"body:", []int{6}},          // column filters are words
		{"body:column", []int{6}},    //
		{"-coffee", []int{4, 3, 1}},  // no negation
		{"^coffee", []int{4, 3, 1}},  // no initial-token anchor
		{"can't", []int{3}},          // an apostrophe
		{"column-like", []int{6}},    // a hyphen
		{"* coffee", []int{4, 3, 1}}, // a lone star is left out
		{"( coffee )", []int{4, 3, 1}},
		{"+", nil},                         // below: no word at all
		{"", nil},                          //
		{"   \t", nil},                     //
		{`"`, nil},                         //
		{`"" () * : -`, nil},               //
		{"zebra", nil},                     // no match
		{`" OR "naive`, []int{5}},          // no way out of the quotes
		{`x" OR "coffee`, nil},             // x and or and coffee: none has them all
		{`coffee" OR "x`, nil},             //
		{"\x00coffee\x01", []int{4, 3, 1}}, // control characters
		{"cof\x00fee", nil},                // cof* and fee*
		{"\xffcoffee\xfe", []int{4, 3, 1}}, // not UTF-8
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			hits, err := l.Search(ctx, tt.query, 10)
			if !strings.ContainsFunc(tt.query, isWordChar) {
				if !errors.Is(err, ErrEmptyQuery) {
					t.Errorf("Search(%q) = %d hits, %v; want ErrEmptyQuery", tt.query, len(hits), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Search(%q): %v", tt.query, err)
			}
			var got []int
			for _, h := range hits {
				var n int
				fmt.Sscanf(string(h.ID), "m%04d", &n)
				got = append(got, n)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Search(%q) = %v, want %v", tt.query, got, tt.want)
			}
		})
	}

	t.Run("snippet", func(t *testing.T) {
		hits, err := l.Search(ctx, "coff", 1)
		if err != nil || len(hits) != 1 {
			t.Fatalf("Search: %d hits, %v", len(hits), err)
		}
		if want := `she said "[coffee]" * twice`; hits[0].Snippet != want {
			t.Errorf("snippet %q, want %q", hits[0].Snippet, want)
		}
		if hits[0].Peer() != "carol" || hits[0].Direction != Out {
			t.Errorf("hit %+v: want alice's message to carol", hits[0].Entry)
		}
		long := strings.Repeat("filler words here ", 20) + "needle " + strings.Repeat("more filler ", 20)
		add(t, l, msg(7, "bob", false, long))
		hits, err = l.Search(ctx, "needle", 1)
		if err != nil || len(hits) != 1 {
			t.Fatalf("Search: %d hits, %v", len(hits), err)
		}
		s := hits[0].Snippet
		if !strings.Contains(s, HighlightStart+"needle"+HighlightEnd) || !strings.HasPrefix(s, Ellipsis) || !strings.HasSuffix(s, Ellipsis) || len(s) > 120 {
			t.Errorf("snippet of a long message: %q", s)
		}
		if hits[0].Body != long {
			t.Error("a hit's body is not the whole message")
		}
	})

	t.Run("newest sent first, whenever logged", func(t *testing.T) {
		old := msg(8, "dave", false, "coffee long ago")
		old.SentAt = t0.Add(-24 * time.Hour)
		add(t, l, old)
		hits, err := l.Search(ctx, "coffee", 10)
		if err != nil || len(hits) != 4 || hits[3].Body != old.Body {
			t.Errorf("Search: %v, %v; want the old message last", hits, err)
		}
	})

	t.Run("limit", func(t *testing.T) {
		hits, err := l.Search(ctx, "coffee", 2)
		if err != nil || len(hits) != 2 {
			t.Errorf("Search with limit 2: %d hits, %v", len(hits), err)
		}
		if _, err := l.Search(ctx, "coffee", 0); err == nil {
			t.Error("Search with limit 0 succeeded")
		}
	})
}

// TestTwoProcesses has two Logs on one file, as natter listen and natter
// send have: concurrent writes wait for each other instead of failing.
func TestTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.sqlite")
	a, b := open(t, path), open(t, path)
	var wg sync.WaitGroup
	for w, l := range []*Log{a, b} {
		wg.Go(func() {
			for i := range 50 {
				// Both write every message: each is logged once.
				e := msg(i, "bob", false, fmt.Sprint("message ", i))
				if w == 1 {
					e = msg(49-i, "bob", false, fmt.Sprint("message ", 49-i))
				}
				if err := l.Add(context.Background(), e); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := count(t, a); n != 50 {
		t.Errorf("Count = %d, want 50", n)
	}
	if hits, err := b.Search(context.Background(), "message", 100); err != nil || len(hits) != 50 {
		t.Errorf("Search: %d hits, %v; want 50", len(hits), err)
	}
}
