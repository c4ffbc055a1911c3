package natter

import (
	"context"
	"time"
)

// Store is natter's durable state: accounts (with each user's last-seen
// time and status text), login sessions, devices and their delivery
// cursors, contacts, the messages and receipts waiting in each
// user's inbox, the end-to-end key directory (identity keys, device bundles
// and certificates, one-time prekeys), the records of file chunks, and each
// user's optional archive (server-side history). Every implementation passes
// internal/storetest.
//
// Every write that returns nil is durable: it survives a crash of the process
// and of the machine. Implementations may batch concurrent writes into one
// commit (group commit), but must not return before that commit.
// When the store cannot write (disk full, read-only, database down) methods
// return an error wrapping ErrStoreUnavailable.
type Store interface {
	// CreateUser adds a user with the given password hash (an encoded
	// argon2id hash; the store never sees a password). ErrUserExists if taken.
	CreateUser(ctx context.Context, user UserID, passwordHash string, at time.Time) error
	// PasswordHash returns the user's stored hash, or ErrNoSuchUser.
	PasswordHash(ctx context.Context, user UserID) (string, error)
	// UserExists reports whether user has signed up.
	UserExists(ctx context.Context, user UserID) (bool, error)

	// CreateSession stores a resumable login session.
	CreateSession(ctx context.Context, s Session) error
	// Session looks a session up by the hash of its token; ErrNoSession if
	// there is none. Expiry is the caller's to check.
	Session(ctx context.Context, tokenHash []byte) (Session, error)
	// DeleteSession forgets a session (logout). Deleting a missing session is
	// not an error.
	DeleteSession(ctx context.Context, tokenHash []byte) error
	// SetPassword replaces user's password hash and ends every session of
	// user except keep, in one atomic write: once it returns, no other
	// token of user resumes (Session returns ErrNoSession). keep, if its
	// TokenHash is set, is created as a new session (it must be user's,
	// else ErrBadRequest); the caller passes the session of the connection
	// that changed the password, with a fresh token, so that even its old
	// token stops working. ErrNoSuchUser if user has not signed up.
	SetPassword(ctx context.Context, user UserID, passwordHash string, keep Session) error

	// TouchDevice records that a device of user logged in at time at
	// (its last login, which IdleDevices and RemoveDevice compare),
	// creating it if new, and returns its inbox cursor: the highest inbox
	// sequence number the device has acknowledged. A new device starts at
	// 0, so it receives everything still held in the user's inbox. If
	// maxDevices is above 0 and user has that many devices already, a new
	// device is refused with ErrTooManyDevices and nothing is stored (a
	// known device is never refused). ErrNoSuchUser if user has not
	// signed up.
	TouchDevice(ctx context.Context, user UserID, device DeviceID, at time.Time, maxDevices int) (cursor uint64, err error)
	// AckInbox moves a device's cursor forward to upto. It never moves a
	// cursor back. ErrNoSuchDevice if the device has no cursor: it never
	// logged in (TouchDevice), or it was removed (RemoveDevice).
	AckInbox(ctx context.Context, user UserID, device DeviceID, upto uint64) error

	// RemoveDevice forgets user's device, in one atomic write: its
	// delivery cursor (so that it no longer holds back TrimInbox), its key
	// bundle, certificate and one-time prekeys, its wrapped archive key,
	// and every login session of user bound to the device (Session then
	// returns ErrNoSession for their tokens). If unseenSince is not zero,
	// the device is removed only if its last login (TouchDevice's at) is
	// before unseenSince: retirement (see IdleDevices) does not remove a
	// device that logged in after it was listed. removed reports whether
	// anything was deleted: false for a device that does not exist, or
	// that logged in since unseenSince (then nothing is deleted). The
	// device may log in again later: it is then a new device, at cursor 0.
	// ErrNoSuchUser if user has not signed up.
	RemoveDevice(ctx context.Context, user UserID, device DeviceID, unseenSince time.Time) (removed bool, err error)
	// IdleDevices returns up to limit devices (of any user) whose last
	// login is before unseenSince, ordered by user, then device, with
	// their last login. A limit below 1 counts as 1. Devices that
	// RemoveDevice removed, or that logged in since (TouchDevice), drop
	// out, so a caller that removes or touches every device listed can
	// call again with the same arguments until it gets none.
	IdleDevices(ctx context.Context, unseenSince time.Time, limit int) ([]IdleDevice, error)

	// SetLastSeen records when user was last online. ErrNoSuchUser if user
	// has not signed up.
	SetLastSeen(ctx context.Context, user UserID, at time.Time) error
	// SetStatusText records the status text user last set (at most
	// MaxStatusText bytes, else ErrBadRequest; "" clears it). It is kept
	// until the user sets another, whatever becomes of their sessions: it
	// is what approved contacts see, with the last-seen time, while the
	// user is offline. ErrNoSuchUser if user has not signed up.
	SetStatusText(ctx context.Context, user UserID, text string) error
	// LastSeen returns what is kept of the given users for when they are
	// offline, for those that have a last-seen time or a status text
	// (users that are not signed up are left out).
	LastSeen(ctx context.Context, users []UserID) (map[UserID]Seen, error)

	// Contacts returns owner's contact rows (every state but ContactNone),
	// ordered by peer.
	Contacts(ctx context.Context, owner UserID) ([]Contact, error)
	// ContactState returns owner's row for peer (ContactNone if there is none).
	ContactState(ctx context.Context, owner, peer UserID) (ContactState, error)
	// UpdateContact applies ApplyContactOp to the pair of rows (actor → peer,
	// peer → actor) atomically and returns the new states. ErrNoSuchUser if
	// peer has not signed up; ErrSelf if actor == peer.
	UpdateContact(ctx context.Context, actor, peer UserID, op ContactOp) (mine, theirs ContactState, err error)

	// AppendMessage stores m (whose ConvSeq is ignored) durably: it assigns
	// the next sequence number of the conversation between m.From and m.To,
	// and appends the message to the inbox of m.To and of m.From (for the
	// sender's other devices). It is idempotent on (m.From, m.ID): a second
	// append with the same pair stores nothing and returns the first copy with
	// Duplicate set (and Trimmed, without Body, if TrimInbox trimmed it), for
	// as long as the first copy is kept: until ForgetTrimmed or TrimInbox
	// deletes it, at the earliest once its SentAt is past their olderThan.
	//
	// m.Chunks, if any, are recorded with the message in the same write:
	// both users may then fetch them (MayFetchChunk) and they are kept
	// (ExpireChunks) for as long as the message is recent. Each must be
	// a chunk m.From uploaded (AddChunk) and that is still kept, else
	// ErrNoSuchChunk and nothing is stored. Inbox and Conversation do not
	// return Chunks (the message's sealed body names them).
	AppendMessage(ctx context.Context, m Message) (Appended, error)
	// AppendReceipt stores r durably, its ID included, and appends it to the
	// inbox of r.To (the message's sender) and of r.From (for the reader's
	// other devices), returning the two inbox sequence numbers. Inbox returns
	// the receipt as appended (ID empty if it had none).
	AppendReceipt(ctx context.Context, r Receipt) (toSeq, fromSeq uint64, err error)
	// AppendCopy stores, in owner's inbox only, a copy of a message that went
	// directly between two devices (peer to peer), so that owner's other
	// devices and a later history have it. owner must be m.From or m.To
	// (else ErrBadRequest). The store does not assign m.ConvSeq (it stays
	// 0): the server did not order a conversation it did not carry. It is
	// idempotent on (owner, m.From, m.ID): a repeat stores nothing and
	// returns the first copy's sequence number with dup set. A copy is
	// independent of AppendMessage: the same (From, ID) may exist as both.
	AppendCopy(ctx context.Context, owner UserID, m Message) (seq uint64, dup bool, err error)
	// TrimInbox bounds the inboxes (see TrimResult). It visits users in
	// name order, from the user from ("" is the first) on, and deletes
	// the entries at the start of each user's inbox (lowest sequence
	// numbers first) that are either
	//
	//   - acknowledged: at or below the cursor (AckInbox) of every device
	//     of the user; a user with no device keeps every entry (until it
	//     expires), so that the next device to log in receives them; or
	//   - expired: olderThan is not zero and the entry's time is before
	//     it. An entry's time is its message's SentAt (AppendMessage,
	//     AppendCopy) or its receipt's At (AppendReceipt); a zero time is
	//     older than any olderThan. Expiry goes in sequence order and
	//     stops at the first entry that is not older than olderThan, even
	//     if later entries are (a copy whose SentAt lies ahead of the
	//     entries after it holds them back until it expires).
	//
	// It deletes at most limit entries in all (a limit below 1 counts as
	// 1). What it deleted is durable when it returns: Inbox no longer
	// returns it, even after a crash; what it did not delete is untouched.
	// A user's inbox sequence numbers keep growing: the next entry
	// appended takes a number above every one the inbox ever held.
	//
	// A message, receipt or copy is deleted with its last inbox entry
	// (a message and a receipt have one in each user's inbox, a copy one).
	// A message or copy whose SentAt is not before olderThan (or any, if
	// olderThan is zero) is trimmed instead: its body is dropped and it is
	// no longer returned by Inbox or Conversation, but its idempotency key
	// is kept until ForgetTrimmed: a repeated AppendMessage returns
	// Duplicate and Trimmed, a repeated AppendCopy dup and the first
	// sequence number. Conversation sequence numbers are never reused.
	TrimInbox(ctx context.Context, from UserID, olderThan time.Time, limit int) (TrimResult, error)
	// ForgetTrimmed deletes up to limit trimmed messages and copies (see
	// TrimInbox) whose SentAt is before olderThan (a zero SentAt is
	// before any), and returns how many it deleted; a limit below 1
	// counts as 1. A message or copy sent again after that is stored as
	// new. Their file chunk references (Message.Chunks) go with them.
	// Call it until it returns fewer than limit. A store may take
	// messages (not copies) in the order they were appended and stop at
	// the first whose SentAt is not before olderThan: the server sets a
	// message's SentAt from its clock when it accepts it, so the two
	// orders agree but for clock steps.
	ForgetTrimmed(ctx context.Context, olderThan time.Time, limit int) (int, error)
	// Inbox returns up to limit entries of user's inbox with sequence numbers
	// above after, in sequence order.
	Inbox(ctx context.Context, user UserID, after uint64, limit int) ([]InboxEntry, error)
	// Conversation returns up to limit messages between a and b with
	// conversation sequence numbers above after, in order. Clients use it to
	// fill a gap they detected.
	Conversation(ctx context.Context, a, b UserID, after uint64, limit int) ([]Message, error)

	// SetIdentity stores user's identity public key (opaque bytes, not
	// empty, else ErrBadRequest). With no key stored yet it stores key and
	// reports changed; the same key again changes nothing. A different key
	// is refused with ErrKeyConflict unless reset is set: then it replaces
	// the old one and clears every device certificate of user (they were
	// signatures by the old identity), and reports changed.
	// ErrNoSuchUser if user has not signed up.
	SetIdentity(ctx context.Context, user UserID, key []byte, reset bool) (changed bool, err error)
	// PutBundle stores (or replaces) the key bundle of user's device
	// (opaque bytes, not empty, else ErrBadRequest). A device's certificate
	// and one-time prekeys are kept when its bundle is replaced. changed is
	// false if the stored bundle was already identical. A device "has keys"
	// from its first bundle on. ErrNoSuchUser if user has not signed up.
	PutBundle(ctx context.Context, user UserID, device DeviceID, bundle []byte) (changed bool, err error)
	// PutCert sets the certificate of user's device (an identity signature
	// over it; opaque, not empty, else ErrBadRequest), replacing any
	// previous one. changed is false if it was already identical.
	// ErrNoSuchDevice if the device has no bundle; ErrNoSuchUser if user
	// has not signed up.
	PutCert(ctx context.Context, user UserID, device DeviceID, cert []byte) (changed bool, err error)
	// AddPrekeys appends one-time prekeys (opaque, none empty, else
	// ErrBadRequest) to user's device, after those it holds: they are
	// handed out oldest first (see UserKeys). A device holds at most
	// MaxPrekeys; a call that would take it over stores nothing and
	// returns ErrLimit. left is how many the device holds afterwards.
	// ErrNoSuchDevice if the device has no bundle; ErrNoSuchUser if user
	// has not signed up.
	AddPrekeys(ctx context.Context, user UserID, device DeviceID, prekeys [][]byte) (left int, err error)
	// UserKeys returns user's key material: the identity key (nil if none)
	// and every device of user that has a bundle, ordered by device ID,
	// with its certificate and the number of prekeys it holds. For each
	// device named in claim that has a bundle (others are ignored, and a
	// device named twice counts once) it removes the device's oldest
	// prekey and returns it in Prekey; a device with none left gets none.
	// A claim is durable before UserKeys returns: no prekey is ever handed
	// out twice, even across a crash. PrekeysLeft counts what is left after
	// the claim. ErrNoSuchUser if user has not signed up.
	UserKeys(ctx context.Context, user UserID, claim []DeviceID) (KeySet, error)

	// AddChunk records that user uploaded the file chunk hash (a
	// lowercase hex SHA-256; the caller has checked the data against it) of
	// size bytes, at time at. Recording the same chunk for the same user
	// again stores nothing new (added is false) but counts as a use for
	// retention. A user's usage is the sum of the sizes of the distinct
	// chunks they uploaded that are still kept; a new chunk that would take
	// it over quota (bytes; negative means no quota) is refused with
	// ErrQuota and nothing is stored. ErrNoSuchUser if user has not signed
	// up. The store keeps only the record: the chunk's bytes are the
	// caller's (internal/blobs).
	AddChunk(ctx context.Context, user UserID, hash string, size, quota int64, at time.Time) (added bool, err error)
	// ChunkTotal returns the sum of the sizes of hashes (a hash listed
	// twice counts twice: it is a file's size), each of which user must
	// have uploaded and that is still kept, else ErrNoSuchChunk.
	ChunkTotal(ctx context.Context, user UserID, hashes []string) (int64, error)
	// UserHasChunks returns those of hashes (each once, in the order
	// given) that user uploaded or may fetch (MayFetchChunk), among the
	// chunks still kept.
	UserHasChunks(ctx context.Context, user UserID, hashes []string) ([]string, error)
	// MayFetchChunk reports whether user may fetch the chunk hash: user
	// uploaded it, or a message to or from user carries it (Message.Chunks),
	// and it is still kept.
	MayFetchChunk(ctx context.Context, user UserID, hash string) (bool, error)
	// ExpireChunks forgets every chunk whose last use (its newest upload
	// by anyone, or its newest message reference, whichever is later) is
	// before olderThan: its upload records (which no longer count against
	// quotas) and its message references go with it. It returns the
	// forgotten hashes, which nobody may fetch any more, so that the
	// caller deletes their bytes. Messages themselves are kept.
	ExpireChunks(ctx context.Context, olderThan time.Time) ([]string, error)

	// ArchiveOn reports whether user's archive (server-side history; see
	// ArchiveItem) is on. Every archive starts off. ErrNoSuchUser if user
	// has not signed up.
	ArchiveOn(ctx context.Context, user UserID) (bool, error)
	// SetArchive turns user's archive on or off; setting the state it is
	// in already changes nothing. Turning it off deletes every record and
	// wrapped key of user's archive in the same write: once it returns,
	// none is readable, even across a crash. ErrNoSuchUser if user has not
	// signed up.
	SetArchive(ctx context.Context, user UserID, on bool) error
	// PutArchive adds items to user's archive as records stored at time
	// at, in the order given, in one write. Each record gets a sequence
	// number above every one the store gave before, for any user: numbers
	// are never reused, even after the archive is turned off and on, so a
	// device's "after" cursor never hides a newer record. An item whose
	// Key the archive holds already (or an earlier item of items has) is
	// skipped: its Data is not compared, and the stored record is kept.
	// A Key or Data that is empty is refused with ErrBadRequest. If the
	// added records would take the sum of the sizes of the Data of user's
	// records over quota (bytes; negative means no quota), ErrQuota and
	// nothing is stored. ErrArchiveOff if the archive is off;
	// ErrNoSuchUser if user has not signed up.
	PutArchive(ctx context.Context, user UserID, items []ArchiveItem, at time.Time, quota int64) error
	// ArchiveRecords returns user's records with sequence numbers above
	// after, oldest first: at most limit of them (a limit below 1 counts
	// as 1), and no more than maxBytes of Data in all, except that the
	// first is returned whatever its size (so a reader always makes
	// progress). more reports whether records follow the last one
	// returned. An archive that is off holds none. ErrNoSuchUser if user
	// has not signed up.
	ArchiveRecords(ctx context.Context, user UserID, after int64, limit, maxBytes int) (recs []ArchiveRecord, more bool, err error)
	// PutArchiveKey stores the archive key wrapped for user's device
	// (opaque bytes, not empty, else ErrBadRequest), replacing any
	// previous one. ErrArchiveOff if the archive is off; ErrNoSuchDevice
	// if the device has published no key bundle (PutBundle); ErrNoSuchUser
	// if user has not signed up.
	PutArchiveKey(ctx context.Context, user UserID, device DeviceID, wrapped []byte) error
	// ArchiveKeys returns the wrapped archive keys of user's archive, by
	// device (none if the archive is off). ErrNoSuchUser if user has not
	// signed up.
	ArchiveKeys(ctx context.Context, user UserID) (map[DeviceID][]byte, error)

	// Close releases the store. Writes in flight finish first.
	Close() error
}

// Seen is what the Store keeps of a user for their contacts to see while
// the user is offline (Store.LastSeen).
type Seen struct {
	At   time.Time // when the user was last online; zero if not known
	Text string    // the status text the user last set; "" if none
}

// MaxPrekeys bounds the one-time prekeys a Store holds for one device.
const MaxPrekeys = 200

// KeySet is one user's published end-to-end key material, as UserKeys
// returns it. The server stores it and hands it out; it never interprets
// it (clients verify every signature themselves).
type KeySet struct {
	Identity []byte         // the user's identity public key; nil if none
	Devices  []DeviceKeySet // every device with a bundle, ordered by Device
}

// DeviceKeySet is the key material of one device.
type DeviceKeySet struct {
	Device      DeviceID
	Bundle      []byte // the device's signed key bundle
	Cert        []byte // the identity's signature over the device; nil if none
	Prekey      []byte // the one-time prekey claimed by this call; nil if none
	PrekeysLeft int    // one-time prekeys the device still holds
}

// Session is a resumable login: a token (kept by the client; the store holds
// only its SHA-256) bound to one user and device.
type Session struct {
	TokenHash []byte
	User      UserID
	Device    DeviceID
	Created   time.Time
	Expires   time.Time
}

// Message is a message between two users. The server never interprets Body:
// it is opaque bytes (end-to-end ciphertext once sealing is in place).
type Message struct {
	ID         MessageID
	From       UserID
	FromDevice DeviceID
	To         UserID
	Body       []byte
	ConvSeq    uint64    // position in the conversation, assigned by the store
	SentAt     time.Time // when the server first accepted it
	// Chunks are the hashes of the file chunks the message carries; see
	// Store.AppendMessage. Stored, but not read back with the message.
	Chunks []string
}

// Appended is the result of Store.AppendMessage.
type Appended struct {
	Message   Message // as stored; for a duplicate, the first copy
	Duplicate bool
	// Trimmed marks a duplicate whose first copy was trimmed (see
	// Store.TrimInbox): every device of both users acknowledged it, and
	// Message has no Body. There is nothing to deliver again.
	Trimmed bool
	ToSeq   uint64 // the entry's sequence number in the recipient's inbox
	FromSeq uint64 // the entry's sequence number in the sender's inbox
}

// ReceiptState is how far a message has got.
type ReceiptState string

// Receipt states beyond "sent" (which is the server's acknowledgement).
const (
	ReceiptDelivered ReceiptState = "delivered"
	ReceiptRead      ReceiptState = "read"
)

// Receipt says that From has received (or read) every message from To up to
// conversation sequence number Upto and, if ID is set, the message ID and
// every message To sent before it. Receipts are cumulative.
//
// ID names a message that may have no conversation sequence number (one that
// went peer to peer, which the server never carried): the store keeps it with
// the receipt and returns it from Inbox, so that a device that learns of the
// receipt later (its user was offline) can tell that message is covered. The
// store does not interpret it; callers check it (ValidateMessageID). Empty
// means the receipt names no message.
type Receipt struct {
	From  UserID
	To    UserID
	Upto  uint64
	ID    MessageID
	State ReceiptState
	At    time.Time
}

// InboxEntry is one entry of a user's inbox: exactly one of Message and
// Receipt is set. Copy marks a Message stored by AppendCopy.
type InboxEntry struct {
	Seq     uint64
	Message *Message
	Receipt *Receipt
	Copy    bool
}

// IdleDevice is a device that has not logged in for a while, as
// Store.IdleDevices lists it.
type IdleDevice struct {
	User      UserID
	Device    DeviceID
	LastLogin time.Time // zero if the store has no time for it
}

// TrimResult is what one Store.TrimInbox call did. The inbox holds what
// some device of its user has yet to acknowledge, for at most the
// retention: TrimInbox deletes the rest.
type TrimResult struct {
	// Acked counts the entries deleted because every device of their
	// user had acknowledged them.
	Acked int
	// Expired counts, by user, the entries deleted for their age that
	// some device of the user had not acknowledged: what that device
	// will never receive. Users with none are left out.
	Expired map[UserID]int
	// Next is where the next call starts (its from), and Done reports
	// that the call reached the last user: a pass over every inbox is
	// the calls from "" until one returns Done.
	Next UserID
	Done bool
}
