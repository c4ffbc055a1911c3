package tui

import (
	"fmt"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/history"
	"github.com/natterim/natter/wire"
)

// sendState is where one of the user's messages is on its way.
type sendState uint8

const (
	stateNone      sendState = iota // not the user's, or not known (older history)
	stateSending                    // Send has not returned yet
	stateSent                       // durable on the server
	stateDelivered                  // a device of the peer has it
	stateRead                       // the peer had it on screen
	stateFailed                     // Send failed
)

// entryKind says what a line of the dialog is.
type entryKind uint8

const (
	kindMessage entryKind = iota
	kindNote              // something the UI says (a key change, a file sent)
)

// entry is one message (or note) of a conversation, with its rendering
// cached: lines were wrapped for key.
type entry struct {
	id      natter.MessageID
	from    natter.UserID
	out     bool // sent by the user (from this device or another)
	text    string
	at      time.Time
	convSeq uint64
	path    string
	state   sendState
	err     string
	kind    entryKind

	key   renderKey
	lines []string
}

// msgKey is a message's idempotency key, as on the server.
type msgKey struct {
	from natter.UserID
	id   natter.MessageID
}

// conv is one conversation: its messages in order, what is known of its
// receipts and path, and where it is scrolled to.
type conv struct {
	peer    natter.UserID
	nameW   int // the width of the name column
	entries []*entry
	byKey   map[msgKey]*entry

	// Scrolling: anchor is the message at the bottom edge, skip how many
	// of its lines are below it. follow keeps the newest at the bottom.
	anchor, skip int
	follow       bool
	newBelow     int              // messages that arrived while scrolled up
	mark         natter.MessageID // highlighted (a search hit)
	want         natter.MessageID // a search hit to scroll to once read

	// The local history, read backwards from cursor.
	cursor  history.Cursor
	more    bool // older pages may exist
	loading bool
	loaded  bool // the first page was asked for

	// Receipts: the peer's, and those the UI sent. A message that went
	// peer to peer has no conv seq: receipts name it by ID, and the SDK
	// lists those of the user's it covers (client.ReceiptEvent.Direct).
	deliveredUpto, readUpto uint64
	deliveredIDs, readIDs   map[natter.MessageID]bool
	maxIn                   uint64           // the peer's highest conv seq
	lastIn                  natter.MessageID // the peer's newest message, by ID
	lastInSeq               uint64           // its conv seq (0: it went peer to peer)
	inCount                 int              // the peer's messages that arrived
	deliveredSent, readSent int              // inCount when the receipts were sent

	path      string
	rtt       time.Duration
	pathSeq   int // counts PathEvents
	pathAsked bool
	verified  bool
	// keyChanged: a verified contact's identity key changed; sending is
	// blocked until the user verifies it again (/verify confirm).
	keyChanged bool
	safety     string // the last safety number shown

	unread    int
	typingGen int
	typing    bool
	draft     string
	transfers []*transfer
}

func newConv(peer, me natter.UserID) *conv {
	return &conv{
		peer:         peer,
		nameW:        min(max(len(peer), len(me), 3), 12),
		byKey:        map[msgKey]*entry{},
		deliveredIDs: map[natter.MessageID]bool{},
		readIDs:      map[natter.MessageID]bool{},
		follow:       true,
		more:         true,
		path:         client.PathServer,
	}
}

// add appends a message that arrived or was sent; it returns false if the
// conversation has it already.
func (c *conv) add(e *entry) bool {
	if e.kind == kindMessage {
		k := msgKey{e.from, e.id}
		if _, ok := c.byKey[k]; ok {
			return false
		}
		c.byKey[k] = e
	}
	c.entries = append(c.entries, e)
	if !c.follow {
		c.newBelow++
	}
	return true
}

// note appends a line the UI says.
func (c *conv) note(at time.Time, text string) {
	c.add(&entry{kind: kindNote, at: at, text: text})
}

// prepend puts an older page of the history before what is loaded. It
// returns how many messages were new.
func (c *conv) prepend(page []history.Entry) int {
	var fresh []*entry
	for _, h := range page {
		k := msgKey{h.From, h.ID}
		if _, ok := c.byKey[k]; ok {
			continue
		}
		e := fromHistory(h)
		c.byKey[k] = e
		fresh = append(fresh, e)
	}
	if len(fresh) == 0 {
		return 0
	}
	c.entries = append(fresh, c.entries...)
	if !c.follow {
		c.anchor += len(fresh)
	}
	return len(fresh)
}

// index returns the position of a message, or -1.
func (c *conv) index(id natter.MessageID) int {
	for i := len(c.entries) - 1; i >= 0; i-- {
		if c.entries[i].id == id && c.entries[i].kind == kindMessage {
			return i
		}
	}
	return -1
}

// receipt applies the peer's receipt.
func (c *conv) receipt(r client.ReceiptEvent) {
	read := r.State == natter.ReceiptRead
	if read {
		c.readUpto = max(c.readUpto, r.Upto)
	}
	c.deliveredUpto = max(c.deliveredUpto, r.Upto)
	for _, id := range append(r.Direct, r.ID) {
		if id != "" {
			c.deliveredIDs[id] = true
			c.readIDs[id] = c.readIDs[id] || read
		}
	}
}

// stateOf is what an entry shows of its delivery: receipts move the user's
// messages on without touching them.
func (c *conv) stateOf(e *entry) sendState {
	if !e.out || e.kind != kindMessage || e.state == stateSending || e.state == stateFailed {
		return e.state
	}
	s := e.state
	switch {
	case e.convSeq > 0 && e.convSeq <= c.readUpto, c.readIDs[e.id]:
		return stateRead
	case e.convSeq > 0 && e.convSeq <= c.deliveredUpto, c.deliveredIDs[e.id]:
		s = max(s, stateDelivered)
	}
	return s
}

// fromHistory makes an entry of a logged message.
func fromHistory(h history.Entry) *entry {
	text := clean(h.Body, true)
	if h.Unopened {
		text = "[" + text + "]"
	}
	return &entry{id: h.ID, from: h.From, out: h.Direction == history.Out, text: text,
		at: h.SentAt, convSeq: h.ConvSeq, path: h.Path}
}

// fromWire makes an entry of a message the SDK handed over.
func fromWire(m wire.Message, me natter.UserID, path string, openErr error) *entry {
	text := clean(string(m.Body), true)
	if f, ok := client.FileOf(m.Body); ok {
		text = fileText(f)
		if m.From != me {
			text += " — /files fetches it"
		}
	}
	if openErr != nil {
		text = fmt.Sprintf("[this message could not be opened: %v]", openErr)
	}
	return &entry{id: m.ID, from: m.From, out: m.From == me, text: text,
		at: m.SentAt, convSeq: m.ConvSeq, path: path}
}

// fileText describes a file message in one line (as the history keeps it).
func fileText(f *client.FileInfo) string {
	return fmt.Sprintf("[file] %s (%s)", clean(client.SafeName(f.Name), false), sizeText(f.Size))
}

// peerOf returns the other user of a message of me's.
func peerOf(m wire.Message, me natter.UserID) natter.UserID {
	if m.From == me {
		return m.To
	}
	return m.From
}
