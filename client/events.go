package client

import (
	"slices"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// Event is something the server pushed, or a change of the connection's
// state. It is one of the types below (a closed set): switch on the type.
type Event interface{ isEvent() }

// MessageEvent is a message to the user, or from the user's other devices
// (then Message.From is the user). Seq is its place in the user's inbox, 0
// for a message fetched with History to fill a gap in its conversation.
// Offline is set for a message that came from the server's store rather than
// as a live push: after an automatic reconnect, a Sync or a History fill.
type MessageEvent struct {
	Message wire.Message
	Seq     uint64
	Offline bool
	// Path is how the message travelled: PathServer, or PathDirect /
	// PathRelayed for a peer-to-peer message (also for the copy a user's
	// other device receives of it).
	Path string
	// OpenErr says why the sealed body could not be opened (Body is then
	// nil): not sealed for this device, tampered with, or its keys are
	// gone. See docs/security.md.
	OpenErr error
	// File is set when the message carries a file (Body is then its
	// manifest): fetch it with Client.FetchFile.
	File *FileInfo
}

// The paths a message or conversation takes.
const (
	PathServer  = "server"  // through natterd
	PathDirect  = "direct"  // peer to peer: same LAN or through NATs
	PathRelayed = "relayed" // peer to peer through natterd's TURN relay
)

// PathEvent says that the path to a contact changed: a peer-to-peer channel
// to one of their devices came up (PathDirect or PathRelayed, with its
// round-trip time) or went away (PathServer), or that an attempt to open
// one failed (PathServer with Err; the SDK tries again later).
type PathEvent struct {
	Peer   natter.UserID
	Device natter.DeviceID
	Path   string
	RTT    time.Duration
	Err    error // with PathServer: why an attempt to go direct failed, if one did
}

// ReceiptEvent says that Rcpt.From received or read every message of
// Rcpt.To's in their conversation up to Rcpt.Upto and, if Rcpt.ID is set,
// the message Rcpt.ID and every message Rcpt.To sent before it, whatever
// path each took. If From is the user, it was sent by one of the user's
// other devices. Use Covers to tell whether it covers a message.
type ReceiptEvent struct {
	wire.Rcpt
	// Direct lists the messages of Rcpt.To's that went peer to peer (they
	// have no conversation sequence number, so Upto cannot cover them)
	// that this receipt covers, among those this Client sent or handed
	// to the app: the message Rcpt.ID names, and those before it or
	// before the newest message with a sequence number up to Upto, in the
	// order this Client saw them. Once a read receipt covered a message,
	// later receipts no longer list it.
	Direct []natter.MessageID
}

// Covers reports whether the receipt covers the message id of Rcpt.To's,
// whose conversation sequence number is convSeq (0 for one that went peer
// to peer). Receipts are cumulative and states only move forward
// (delivered, then read): keep the highest state a message was covered by.
func (e ReceiptEvent) Covers(id natter.MessageID, convSeq uint64) bool {
	return convSeq > 0 && convSeq <= e.Upto || id != "" && id == e.ID || slices.Contains(e.Direct, id)
}

// TypingEvent says that an approved contact, From, is typing to the user.
// It is ephemeral (never stored, lost if the user is offline); show it for
// a few seconds unless another comes. See Client.SendTyping.
type TypingEvent struct {
	From natter.UserID
}

// InboxEvent carries the stored inbox that follows an explicit Signup, Login
// or Resume: what arrived while this device was away, grouped by sender.
// Groups of a large inbox come in several InboxEvents; Done marks the last.
// Its messages and receipts are not emitted again as MessageEvent or
// ReceiptEvent. Message bodies are opened; OpenErrs holds, by message ID,
// why one could not be (its Body is then nil).
type InboxEvent struct {
	Groups   []wire.InboxGroup
	Done     bool
	OpenErrs map[natter.MessageID]error
}

// ContactsEvent is the whole contact list, with presence, as the server
// sends it after every login or resume.
type ContactsEvent struct {
	Contacts []wire.Contact
}

// ContactEvent is a change to one relationship: a request arrived, was
// accepted, the contact removed the user, ... State is the user's own row.
type ContactEvent struct {
	wire.Contact
}

// PresenceEvent is an approved contact's new presence.
type PresenceEvent struct {
	wire.Presence
}

// ReachEvent tells how one of a contact's devices can be reached; no
// candidates means the device went offline or withdrew its info.
type ReachEvent struct {
	wire.Reach
}

// ConnEvent reports that the connection went down (Up false, Err the cause)
// or came back after an automatic reconnect and resume (Up true). Final is
// set when the SDK has given up: the session ended (Err says why, e.g. a
// *wire.Err with wire.CodeSessionExpired or wire.CodeReplaced) and the app
// must log in again.
type ConnEvent struct {
	Up    bool
	Err   error
	Final bool
}

func (MessageEvent) isEvent()  {}
func (ReceiptEvent) isEvent()  {}
func (InboxEvent) isEvent()    {}
func (ContactsEvent) isEvent() {}
func (ContactEvent) isEvent()  {}
func (PresenceEvent) isEvent() {}
func (ReachEvent) isEvent()    {}
func (ConnEvent) isEvent()     {}
func (PathEvent) isEvent()     {}
func (TypingEvent) isEvent()   {}

// KeysEvent says that a contact's (or the user's own) end-to-end keys
// changed: a device was added or approved, or the identity key changed.
// Changed is set when the identity key is not the one seen before (warn
// the user); Err wraps seal.ErrKeyChanged if that contact was verified
// (nothing is sent to them until the user verifies the new key). Pending
// lists devices awaiting approval (for the user's own keys: approve them
// with Client.ApproveDevice from a device holding the identity).
type KeysEvent struct {
	User     natter.UserID
	Device   natter.DeviceID
	Devices  []natter.DeviceID
	Pending  []natter.DeviceID
	Changed  bool
	Verified bool
	Err      error
}

func (KeysEvent) isEvent() {}
