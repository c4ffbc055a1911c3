package wire

import (
	"time"

	"github.com/natterim/natter"
)

// Hello is the client's first frame: the protocol version it speaks.
type Hello struct {
	V      int    `json:"v"`
	Client string `json:"client,omitempty"` // software name and version, for logs
}

// Welcome answers Hello with the server's version and limits.
type Welcome struct {
	V         int    `json:"v"`
	Server    string `json:"server"`
	Node      string `json:"node"`
	MaxFrame  int    `json:"max_frame"`
	MaxBody   int    `json:"max_body"`
	Keepalive int    `json:"keepalive"` // seconds of silence after which the server drops the client; ping well within it
}

// Signup creates an account and logs in. Quiet makes the connection a
// quiet session (see Login).
type Signup struct {
	Ref      uint64          `json:"ref"`
	User     natter.UserID   `json:"user"`
	Password string          `json:"password"`
	Device   natter.DeviceID `json:"device"`
	Quiet    bool            `json:"quiet,omitempty"`
}

// Login logs in with a password.
//
// Quiet makes the connection a quiet session: a full session for requests,
// which receives pushes like any other, but which does not count for
// presence (the server neither announces the user online when it starts
// nor offline when it ends, and contacts see the user as the other,
// non-quiet sessions make them: offline, with the last seen of the last of
// those, if there are none), and which takes no connection info
// (SetReach is refused). For one-shot commands run beside, or instead of,
// the user's real session.
type Login struct {
	Ref      uint64          `json:"ref"`
	User     natter.UserID   `json:"user"`
	Password string          `json:"password"`
	Device   natter.DeviceID `json:"device"`
	Quiet    bool            `json:"quiet,omitempty"`
}

// Resume logs in with the token of an earlier login, without a password.
// Quiet makes the connection a quiet session (see Login), whatever the
// earlier connections of the session were.
type Resume struct {
	Ref   uint64 `json:"ref"`
	Token string `json:"token"`
	Quiet bool   `json:"quiet,omitempty"`
}

// Authed answers Signup, Login and Resume.
type Authed struct {
	Ref     uint64          `json:"ref"`
	User    natter.UserID   `json:"user"`
	Device  natter.DeviceID `json:"device"`
	Token   string          `json:"token"`
	Expires time.Time       `json:"expires"`
}

// Logout ends the session: the token stops working, contacts see the user
// go offline (if no other device is online), and the server closes.
type Logout struct {
	Ref uint64 `json:"ref"`
}

// ContactOp changes a relationship: op is add, accept, refuse, remove, block
// or unblock.
type ContactOp struct {
	Ref  uint64           `json:"ref"`
	Op   natter.ContactOp `json:"op"`
	User natter.UserID    `json:"user"`
}

// ListContacts asks for Contacts.
type ListContacts struct {
	Ref uint64 `json:"ref"`
}

// Contact is one row of Contacts. Presence is filled only for approved
// contacts.
type Contact struct {
	User     natter.UserID       `json:"user"`
	State    natter.ContactState `json:"state"`
	Status   natter.Status       `json:"status,omitempty"`
	Text     string              `json:"text,omitempty"`
	LastSeen time.Time           `json:"last_seen,omitzero"`
}

// Contacts is the whole contact list: sent right after login and in answer
// to ListContacts (then with its Ref).
type Contacts struct {
	Ref      uint64    `json:"ref,omitempty"`
	Contacts []Contact `json:"contacts"`
}

// ContactUpdate is pushed when a relationship changes (a request arrives, is
// accepted, a contact removes the user, ...). State is the user's own row.
type ContactUpdate struct {
	Contact
}

// SetPresence sets the device's status (online, away, busy) and status text.
type SetPresence struct {
	Ref    uint64        `json:"ref"`
	Status natter.Status `json:"status"`
	Text   string        `json:"text"`
}

// Presence is pushed to approved contacts when a user's presence changes.
type Presence struct {
	User     natter.UserID `json:"user"`
	Status   natter.Status `json:"status"`
	Text     string        `json:"text,omitempty"`
	LastSeen time.Time     `json:"last_seen,omitzero"`
}

// SetReach registers how this device can be reached (its connection info).
// The server keeps it in the live session only and passes it to the user's
// online approved contacts.
type SetReach struct {
	Ref        uint64             `json:"ref"`
	Candidates []natter.Candidate `json:"candidates"`
}

// Reach tells a user how one of a contact's devices can be reached. An empty
// Candidates list means the device went offline or withdrew its info.
type Reach struct {
	User       natter.UserID      `json:"user"`
	Device     natter.DeviceID    `json:"device"`
	Candidates []natter.Candidate `json:"candidates"`
}

// Send sends a message. ID is chosen by the client (time-ordered); a retry
// reuses it and is never stored twice.
type Send struct {
	Ref  uint64           `json:"ref"`
	ID   natter.MessageID `json:"id"`
	To   natter.UserID    `json:"to"`
	Body []byte           `json:"body"`
	// Chunks are the hashes of the file chunks the message carries (see
	// PutChunk): each must have been uploaded by the sender; the
	// recipient's devices may then fetch them.
	Chunks []string `json:"chunks,omitempty"`
}

// SendAck says the message is durable on the server ("sent"). Online says
// whether the recipient had a device online; if not the message is stored
// for delivery at their next login.
type SendAck struct {
	Ref     uint64           `json:"ref"`
	ID      natter.MessageID `json:"id"`
	ConvSeq uint64           `json:"conv_seq"`
	SentAt  time.Time        `json:"sent_at"`
	Online  bool             `json:"online"`
}

// Message is a message as delivered.
type Message struct {
	ID         natter.MessageID `json:"id"`
	From       natter.UserID    `json:"from"`
	FromDevice natter.DeviceID  `json:"from_device,omitempty"`
	To         natter.UserID    `json:"to"`
	Body       []byte           `json:"body"`
	ConvSeq    uint64           `json:"conv_seq"`
	SentAt     time.Time        `json:"sent_at"`
}

// Msg pushes one message to every device of the recipient and every device
// of the sender, the sending connection included (it learns the message's
// place in its own inbox that way). Seq is its place in the receiving user's
// inbox: acknowledge it with Ack.
type Msg struct {
	Seq uint64 `json:"seq"`
	Message
	// Direct marks a copy of a message that went peer to peer: the server
	// did not carry it between the two users, one of them stored this copy
	// for their own other devices (see Copy). Its ConvSeq is 0.
	Direct bool `json:"direct,omitempty"`
}

// Receipt tells the sender of messages that the user received (delivered) or
// read every message from Peer up to conversation sequence number Upto.
//
// ID, if set, names by its ID the newest message of Peer's that the
// receipt is about, whatever path it took: a message that went peer to
// peer has no conversation sequence number, so Upto cannot name it. The
// receipt then also covers that message and every message Peer sent
// before it (in Peer's order). The server stores ID with the receipt, so
// a receipt replayed from the inbox carries it too.
type Receipt struct {
	Ref   uint64              `json:"ref"`
	Peer  natter.UserID       `json:"peer"`
	Upto  uint64              `json:"upto"`
	ID    natter.MessageID    `json:"id,omitempty"`
	State natter.ReceiptState `json:"state"`
}

// Rcpt pushes a receipt: From received or read every message of To's up to
// Upto in their conversation, and, if ID is set (see Receipt), the message
// ID of To's and every message To sent before it.
// Seq is its place in the receiving user's inbox.
type Rcpt struct {
	Seq   uint64              `json:"seq"`
	From  natter.UserID       `json:"from"`
	To    natter.UserID       `json:"to"`
	Upto  uint64              `json:"upto"`
	ID    natter.MessageID    `json:"id,omitempty"`
	State natter.ReceiptState `json:"state"`
	At    time.Time           `json:"at"`
}

// Ack moves the device's inbox cursor: everything up to Upto was received
// and need not be sent to this device again. It has no answer.
type Ack struct {
	Upto uint64 `json:"upto"`
}

// Sync asks the server to send again every inbox entry after After, as Inbox
// frames (a client that detected a gap in inbox sequence numbers uses it).
type Sync struct {
	Ref   uint64 `json:"ref"`
	After uint64 `json:"after"`
}

// InboxGroup is what one sender sent while the user was away.
type InboxGroup struct {
	From     natter.UserID `json:"from"`
	Messages []Msg         `json:"messages,omitempty"`
	Receipts []Rcpt        `json:"receipts,omitempty"`
}

// Inbox carries stored inbox entries grouped by sender, after login and in
// answer to Sync. Through is the highest inbox sequence number the frame
// covers (acknowledge it with Ack once processed); Done marks the last frame.
type Inbox struct {
	Ref     uint64       `json:"ref,omitempty"`
	Groups  []InboxGroup `json:"groups"`
	Through uint64       `json:"through"`
	Done    bool         `json:"done"`
}

// History asks for the messages between the user and Peer with conversation
// sequence numbers above After (at most Limit; the server caps it).
type History struct {
	Ref   uint64        `json:"ref"`
	Peer  natter.UserID `json:"peer"`
	After uint64        `json:"after"`
	Limit int           `json:"limit"`
}

// Messages answers History.
type Messages struct {
	Ref      uint64    `json:"ref"`
	Messages []Message `json:"messages"`
}

// Ping keeps the connection alive; the server answers Pong.
type Ping struct {
	Ref uint64 `json:"ref,omitempty"`
}

// Pong answers Ping.
type Pong struct {
	Ref uint64 `json:"ref,omitempty"`
}

// OK answers a request that has no answer of its own.
type OK struct {
	Ref uint64 `json:"ref"`
}

// Error answers a request that failed (with its Ref), or reports a protocol
// error (Ref 0). RetryAfter, in milliseconds, is set for rate limits.
type Error struct {
	Ref        uint64 `json:"ref,omitempty"`
	Code       Code   `json:"code"`
	Message    string `json:"message"`
	RetryAfter int64  `json:"retry_after_ms,omitempty"`
}

// Bye is the server's last frame before it closes the connection.
type Bye struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// IceServers asks for the server's STUN/TURN service and short-lived relay
// credentials, for gathering peer-to-peer candidates.
type IceServers struct {
	Ref uint64 `json:"ref"`
}

// IceConfig answers IceServers. The STUN and TURN service listens on UDP
// Port of the host the client connected to (or on Host, if set). Username
// and Password are TURN credentials valid until Expires and only while the
// user is logged in; nobody else can use the relay.
type IceConfig struct {
	Ref      uint64    `json:"ref"`
	Host     string    `json:"host,omitempty"`
	Port     int       `json:"port"`
	Username string    `json:"username"`
	Password string    `json:"password"`
	Expires  time.Time `json:"expires"`
}

// Signal carries peer-to-peer signalling (an ICE/WebRTC offer, answer or
// candidate, as opaque Data) to one device of an approved contact. Session
// names the connection attempt, so that late signals of an old attempt can
// be told apart. Kind ack (version 6) carries an end-to-end session
// acknowledgement instead (Session names the sealed session), to a device
// of a contact or of the user's own: it is relayed live, never stored. The
// server answers OK once the signal is on its way, or not_contact, or
// no_such_user if that device is not online.
type Signal struct {
	Ref     uint64          `json:"ref"`
	To      natter.UserID   `json:"to"`
	Device  natter.DeviceID `json:"device"`
	Session string          `json:"session"`
	Kind    string          `json:"kind"` // offer, answer, candidate, bye, ack
	Data    []byte          `json:"data"`
}

// SignalIn delivers a Signal from a contact's device.
type SignalIn struct {
	From       natter.UserID   `json:"from"`
	FromDevice natter.DeviceID `json:"from_device"`
	Session    string          `json:"session"`
	Kind       string          `json:"kind"`
	Data       []byte          `json:"data"`
}

// Copy stores, in the user's own inbox only, a copy of a message the user's
// device sent or received peer to peer, so that the user's other devices
// and history have it (they get it as Msg with Direct set). The server does
// not pass it to the other user. Message.From or Message.To must be the
// user, and the other an approved contact. Answered with OK; a repeat of
// the same (From, ID) stores nothing.
type Copy struct {
	Ref     uint64  `json:"ref"`
	Message Message `json:"message"`
}

// PathReport tells the server that this device's peer-to-peer channel to a
// contact is up (Path "direct" or "relayed") or gone (Path ""), for the
// server's count of conversations by path. Only the side that offered the
// channel reports it, so each channel counts once. It has no answer.
type PathReport struct {
	Peer natter.UserID `json:"peer"`
	Path string        `json:"path"`
}

// Typing tells an approved contact that the user is typing to them. It is
// ephemeral: the server relays it as TypingIn to the contact's online,
// non-quiet devices, stores nothing and sends nothing to a contact who is
// offline. It has no answer; typing to someone who is not an approved
// contact, and typing over the per-user rate (a few a second), is dropped
// silently. Clients send it at most every few seconds while the user
// types, and over a peer-to-peer channel instead when one is up.
type Typing struct {
	To natter.UserID `json:"to"`
}

// TypingIn is pushed to a user's devices when an approved contact is typing
// to them (Typing). It lasts a few seconds unless renewed.
type TypingIn struct {
	From natter.UserID `json:"from"`
}
