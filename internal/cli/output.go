package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// The --json output. These types are natter's scripting interface: their
// field names are stable, independent of the wire protocol's. Times are
// RFC 3339 in UTC; message bodies are printed as text.

type jsonError struct {
	Error jsonErrorBody `json:"error"`
}

type jsonErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type jsonSession struct {
	User    natter.UserID   `json:"user"`
	Device  natter.DeviceID `json:"device"`
	Server  string          `json:"server"`
	Expires time.Time       `json:"expires,omitzero"`
}

type jsonContact struct {
	User     natter.UserID       `json:"user"`
	State    natter.ContactState `json:"state"` // approved, pending_in, pending_out, blocked, or none
	Status   natter.Status       `json:"status,omitempty"`
	Text     string              `json:"text,omitempty"`
	LastSeen time.Time           `json:"last_seen,omitzero"`
}

func toJSONContact(c wire.Contact) jsonContact {
	return jsonContact{User: c.User, State: c.State, Status: c.Status, Text: c.Text, LastSeen: utc(c.LastSeen)}
}

type jsonContacts struct {
	Contacts []jsonContact `json:"contacts"`
}

type jsonContactOp struct {
	Op    natter.ContactOp    `json:"op"`
	User  natter.UserID       `json:"user"`
	State natter.ContactState `json:"state"` // the new state of the contact (none if gone)
}

type jsonStatus struct {
	Status natter.Status `json:"status"`
	Text   string        `json:"text"`
}

type jsonSent struct {
	ID      natter.MessageID `json:"id"`
	To      natter.UserID    `json:"to"`
	ConvSeq uint64           `json:"conv_seq"`
	SentAt  time.Time        `json:"sent_at"`
	Result  string           `json:"result"` // delivered, sent or stored
	Path    string           `json:"path,omitempty"`
}

// Send results.
const (
	resultDelivered = "delivered" // the recipient's device confirmed
	resultSent      = "sent"      // recipient online, the server has it, no confirmation yet
	resultStored    = "stored"    // recipient offline: stored for their next login
)

type jsonMessage struct {
	Type    string           `json:"type,omitempty"` // "message" in event streams
	ID      natter.MessageID `json:"id"`
	From    natter.UserID    `json:"from"`
	To      natter.UserID    `json:"to"`
	Text    string           `json:"text"`
	ConvSeq uint64           `json:"conv_seq"`
	SentAt  time.Time        `json:"sent_at"`
	Offline bool             `json:"offline,omitempty"` // arrived while the user was offline
	Path    string           `json:"path,omitempty"`    // direct, relayed or server
}

func toJSONMessage(m wire.Message) jsonMessage {
	return jsonMessage{ID: m.ID, From: m.From, To: m.To, Text: string(m.Body), ConvSeq: m.ConvSeq, SentAt: utc(m.SentAt)}
}

type jsonReceipt struct {
	Type  string              `json:"type,omitempty"` // "receipt" in event streams
	From  natter.UserID       `json:"from"`           // who received or read
	To    natter.UserID       `json:"to"`             // whose messages
	Upto  uint64              `json:"upto"`           // every message up to this conv_seq
	State natter.ReceiptState `json:"state"`          // delivered or read
	At    time.Time           `json:"at,omitzero"`
}

func toJSONReceipt(r wire.Rcpt) jsonReceipt {
	return jsonReceipt{From: r.From, To: r.To, Upto: r.Upto, State: r.State, At: utc(r.At)}
}

type jsonInboxGroup struct {
	From     natter.UserID `json:"from"`
	Messages []jsonMessage `json:"messages"`
	Receipts []jsonReceipt `json:"receipts,omitempty"`
}

type jsonInbox struct {
	Groups []jsonInboxGroup `json:"groups"`
}

type jsonPresence struct {
	Type     string        `json:"type"` // "presence"
	User     natter.UserID `json:"user"`
	Status   natter.Status `json:"status"`
	Text     string        `json:"text,omitempty"`
	LastSeen time.Time     `json:"last_seen,omitzero"`
}

type jsonContactEvent struct {
	Type string `json:"type"` // "contact"
	jsonContact
}

type jsonReach struct {
	Type       string             `json:"type"` // "reach"
	User       natter.UserID      `json:"user"`
	Device     natter.DeviceID    `json:"device"`
	Candidates []natter.Candidate `json:"candidates"`
}

type jsonConn struct {
	Type  string `json:"type"` // "connection"
	Up    bool   `json:"up"`
	Error string `json:"error,omitempty"`
}

type jsonLoggedOut struct {
	User      natter.UserID `json:"user"`
	LoggedOut bool          `json:"logged_out"`
}

// emit prints v as one line of JSON.
func (r *runner) emit(v any) {
	b, err := json.Marshal(v)
	if err != nil { // only for unencodable types: a bug
		panic(fmt.Sprintf("natter: encode %T: %v", v, err))
	}
	r.stdio.Out.Write(append(b, '\n'))
}

// printf prints human output.
func (r *runner) printf(format string, args ...any) {
	fmt.Fprintf(r.stdio.Out, format, args...)
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// stateText is a contact state in words.
func stateText(s natter.ContactState) string {
	switch s {
	case natter.ContactNone:
		return "none"
	case natter.ContactPendingIn:
		return "pending in"
	case natter.ContactPendingOut:
		return "pending out"
	}
	return string(s)
}

// presenceText describes an approved contact's presence: status, text,
// last seen.
func presenceText(status natter.Status, text string, lastSeen, now time.Time) string {
	var b strings.Builder
	if status == "" {
		status = natter.StatusOffline
	}
	b.WriteString(string(status))
	if text != "" {
		fmt.Fprintf(&b, " %q", text)
	}
	if status == natter.StatusOffline && !lastSeen.IsZero() {
		fmt.Fprintf(&b, ", last seen %s", when(lastSeen, now))
	}
	return b.String()
}

// when formats a time for people: the time of day if it is today, else
// the date and time, in the local time zone.
func when(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	return t.Format("2006-01-02 15:04")
}

// messageText is a message body for a terminal: control characters other
// than newline and tab are shown escaped so a message cannot rewrite the
// screen.
func messageText(body []byte) string {
	if f, ok := client.FileOf(body); ok {
		return fileText(f) + " (natter files fetches it)"
	}
	s := string(body)
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		if isControl(c) {
			fmt.Fprintf(&b, "\\x%02x", c)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func isControl(c rune) bool {
	return (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f || (c >= 0x80 && c < 0xa0)
}
