package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// The server keeps a per-device inbox cursor, and the SDK moves it past
// everything it hands to the app. A natter command that is not natter inbox
// (say natter send) still receives the inbox when it resumes the session, so
// it keeps what it received in the home's unread file (one JSON object a
// line), and natter inbox, listen and chat show it from there. The device
// has received the message either way; this file is where it waits to be
// read.

const unreadFile = "unread.jsonl"

// unreadEntry is one kept message or receipt. Its JSON is a file format.
type unreadEntry struct {
	Owner   natter.UserID `json:"owner"` // the user it was delivered to
	Seq     uint64        `json:"seq,omitempty"`
	Message *wire.Message `json:"message,omitempty"`
	Receipt *wire.Rcpt    `json:"receipt,omitempty"`
	Path    string        `json:"path,omitempty"` // how a message travelled (client.Path*)
}

// unreadOf returns the messages and receipts an event carries.
func unreadOf(ev client.Event) []unreadEntry {
	switch ev := ev.(type) {
	case client.MessageEvent:
		m := withOpenErr(ev.Message, ev.OpenErr)
		return []unreadEntry{{Seq: ev.Seq, Message: &m, Path: ev.Path}}
	case client.ReceiptEvent:
		rc := ev.Rcpt
		return []unreadEntry{{Seq: rc.Seq, Receipt: &rc}}
	case client.InboxEvent:
		var out []unreadEntry
		for _, g := range ev.Groups {
			for _, m := range g.Messages {
				msg := withOpenErr(m.Message, ev.OpenErrs[m.ID])
				path := client.PathServer
				if m.Direct {
					path = client.PathDirect
				}
				out = append(out, unreadEntry{Seq: m.Seq, Message: &msg, Path: path})
			}
			for _, rc := range g.Receipts {
				rc := rc
				out = append(out, unreadEntry{Seq: rc.Seq, Receipt: &rc})
			}
		}
		return out
	}
	return nil
}

// appendUnread adds entries for owner to the unread file.
func (h home) appendUnread(owner natter.UserID, entries []unreadEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for _, e := range entries {
		e.Owner = owner
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode unread message: %w", err)
		}
		buf.Write(append(b, '\n'))
	}
	if err := h.ensure(); err != nil {
		return err
	}
	f, err := os.OpenFile(h.path(unreadFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("keep unread messages: %w", err)
	}
	_, err = f.Write(buf.Bytes()) // one write, so that concurrent appends do not interleave
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("keep unread messages: %w", err)
	}
	return nil
}

// takeUnread returns owner's entries in the unread file, with a function
// that removes them once they were shown. Until it is called (or if natter
// crashes first) the file is untouched. Entries appended meanwhile by
// another natter process are kept.
func (h home) takeUnread(owner natter.UserID) ([]unreadEntry, func() error, error) {
	b, err := os.ReadFile(h.path(unreadFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, func() error { return nil }, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read unread messages: %w", err)
	}
	read := len(b)
	mine, _ := splitUnread(b, owner)
	commit := func() error {
		taking := h.path(unreadFile + ".taking." + strconv.Itoa(os.Getpid()))
		if err := os.Rename(h.path(unreadFile), taking); err != nil {
			return fmt.Errorf("forget shown messages: %w", err)
		}
		b, err := os.ReadFile(taking)
		if err != nil {
			return fmt.Errorf("forget shown messages: %w", err)
		}
		_, others := splitUnread(b[:min(read, len(b))], owner)
		if read < len(b) { // appended by someone else since we read
			_, later := splitUnread(b[read:], "")
			others = append(others, later...)
		}
		if err := h.rewriteUnread(others); err != nil {
			return err
		}
		return os.Remove(taking)
	}
	return mine, commit, nil
}

// splitUnread parses an unread file into owner's entries and the rest.
func splitUnread(b []byte, owner natter.UserID) (mine, others []unreadEntry) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 2*wire.DefaultMaxFrame)
	for sc.Scan() {
		var e unreadEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil || (e.Message == nil && e.Receipt == nil) {
			continue // a torn last line after a crash: nothing to recover
		}
		if owner != "" && e.Owner == owner {
			mine = append(mine, e)
		} else {
			others = append(others, e)
		}
	}
	return mine, others
}

// rewriteUnread appends entries, keeping each one's owner.
func (h home) rewriteUnread(entries []unreadEntry) error {
	for len(entries) > 0 {
		n := 1
		for n < len(entries) && entries[n].Owner == entries[0].Owner {
			n++
		}
		if err := h.appendUnread(entries[0].Owner, entries[:n]); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}
