//go:build js

package webapp

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

// record is one message of this browser's history, as kept in the
// "messages" store under [owner, peer, ID] (IDs are time-ordered, so a
// conversation reads in order).
type record struct {
	ID    string           `json:"id"`
	From  string           `json:"from"`
	To    string           `json:"to"`
	Text  string           `json:"text"`
	At    int64            `json:"at"` // ms since the epoch
	State string           `json:"state"`
	Path  string           `json:"path"`
	Seq   uint64           `json:"seq,omitempty"` // conversation sequence number, 0 if it went peer to peer
	File  *client.FileInfo `json:"file,omitempty"`
}

// history is the logged-in user's history in this browser.
type history struct {
	s     store
	owner string
}

// add keeps r (again: the newest copy wins) and indexes its words.
func (h history) add(peer string, r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ops := []op{{store: "messages", key: []any{h.owner, peer, r.ID}, value: string(b)}}
	text := r.Text
	if r.File != nil {
		text += " " + r.File.Name
	}
	for _, w := range words(text) {
		ops = append(ops, op{store: "words", key: []any{h.owner, w, peer, r.ID}, value: "1"})
	}
	return h.s.write(ops...)
}

// get returns the record of message id with peer.
func (h history) get(peer, id string) (*record, error) {
	v, ok, err := h.s.get("messages", h.owner, peer, id)
	if err != nil || !ok {
		return nil, err
	}
	var r record
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// page returns up to limit messages with peer before the message ID before
// ("" for the newest), oldest first, and the cursor of the next older page
// ("" at the beginning).
func (h history) page(peer, before string, limit int) ([]record, string, error) {
	upper := []any{h.owner, peer, "\uffff"}
	if before != "" {
		upper = []any{h.owner, peer, before + "\x00"}
	}
	es, err := h.s.rangeOf("messages", []any{h.owner, peer, ""}, upper, true, limit+1)
	if err != nil {
		return nil, "", err
	}
	if before != "" && len(es) > 0 && es[0].key[2] == before {
		es = es[1:]
	}
	more := len(es) > limit
	es = es[:min(len(es), limit)]
	out := make([]record, 0, len(es))
	for i := len(es) - 1; i >= 0; i-- {
		var r record
		if json.Unmarshal([]byte(es[i].value), &r) == nil {
			out = append(out, r)
		}
	}
	cursor := ""
	if more && len(out) > 0 {
		cursor = out[0].ID
	}
	return out, cursor, nil
}

// hit is a search result.
type hit struct {
	peer string
	rec  record
}

// search finds the messages in which every word of query starts a word,
// newest first.
func (h history) search(query string, limit int) ([]hit, error) {
	q := words(query)
	if len(q) == 0 {
		return nil, nil
	}
	var found map[[2]string]bool
	for _, w := range q {
		es, err := h.s.rangeOf("words", []any{h.owner, w}, []any{h.owner, w + "\uffff"}, false, 0)
		if err != nil {
			return nil, err
		}
		this := map[[2]string]bool{}
		for _, e := range es {
			if len(e.key) == 4 && (found == nil || found[[2]string{e.key[2], e.key[3]}]) {
				this[[2]string{e.key[2], e.key[3]}] = true
			}
		}
		found = this
	}
	keys := make([][2]string, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(b[1], a[1]) })
	var out []hit
	for _, k := range keys[:min(len(keys), limit)] {
		r, err := h.get(k[0], k[1])
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, hit{peer: k[0], rec: *r})
		}
	}
	return out, nil
}

// stateRank orders delivery states: they only move forward.
var stateRank = map[string]int{"sent": 1, "delivered": 2, "read": 3}

// advance moves the user's messages to peer that ev covers to state, and
// returns the IDs that moved. It looks at the newest messages only.
func (h history) advance(peer string, ev client.ReceiptEvent, state string) ([]string, error) {
	es, err := h.s.rangeOf("messages", []any{h.owner, peer, ""}, []any{h.owner, peer, "\uffff"}, true, 500)
	if err != nil {
		return nil, err
	}
	var moved []string
	var ops []op
	for _, e := range es {
		var r record
		if json.Unmarshal([]byte(e.value), &r) != nil || r.From != h.owner || stateRank[r.State] >= stateRank[state] {
			continue
		}
		if !ev.Covers(natter.MessageID(r.ID), r.Seq) {
			continue
		}
		r.State = state
		b, _ := json.Marshal(r)
		ops = append(ops, op{store: "messages", key: []any{h.owner, peer, r.ID}, value: string(b)})
		moved = append(moved, r.ID)
	}
	if len(ops) == 0 {
		return nil, nil
	}
	return moved, h.s.write(ops...)
}

// unread counts the messages from peer after the last one marked read.
func (h history) unread(peer, lastRead string) (int, string, error) {
	es, err := h.s.rangeOf("messages", []any{h.owner, peer, lastRead + "\x00"}, []any{h.owner, peer, "\uffff"}, false, 0)
	if err != nil {
		return 0, "", err
	}
	n, newest := 0, ""
	for _, e := range es {
		var r record
		if json.Unmarshal([]byte(e.value), &r) == nil && r.From == peer {
			n++
			newest = r.ID
		}
	}
	return n, newest, nil
}

// words splits text into the search index's words: letters and digits,
// lower case, accents removed.
func words(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r)
	}) {
		var b strings.Builder
		for _, r := range norm.NFD.String(f) {
			if !unicode.Is(unicode.Mn, r) {
				b.WriteRune(r)
			}
		}
		w := b.String()
		if w != "" && !seen[w] && len(out) < 200 {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}
