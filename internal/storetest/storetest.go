// Package storetest is the one conformance suite for natter.Store: every
// implementation (internal/sqlite, and any later one) runs Run from its own
// tests, so that all of them keep the same contract. The suite tests only what
// natter.Store's doc comments promise, nothing particular to one database.
//
// Beyond the doc comments, the suite pins down these readings of the
// contract:
//
//   - Times (session times, last seen, message SentAt, receipt At) are kept
//     with at least millisecond precision; the suite compares them with
//     time.Equal after truncating both sides to the millisecond. A store may
//     return them in any time zone.
//   - Conversation sequence numbers start at 1 and have no gaps. So do a
//     user's inbox sequence numbers, messages and receipts counted together.
//   - A duplicate AppendMessage returns the first copy's inbox sequence
//     numbers (ToSeq, FromSeq) along with its message.
//   - A copy (AppendCopy) takes the next number of its owner's inbox, the
//     same counter as messages and receipts, so the inbox stays gap-free with
//     all three counted together; a repeat, or a refused copy, uses up none.
//   - AppendCopy ignores m.ConvSeq as AppendMessage does: a copy reads back
//     from Inbox with ConvSeq 0, whatever the caller passed. Copies take no
//     conversation sequence number and Conversation does not return them.
//   - A copy reads back (Inbox) with the ID, From, FromDevice, To, Body and
//     SentAt it was appended with; a repeat changes none of them.
//   - A receipt reads back (Inbox) with the ID it was appended with, in both
//     users' inboxes; one appended without an ID reads back without one.
//   - Empty results may be nil or empty slices; bodies are compared with
//     bytes.Equal, so an empty body may come back nil. So may key material:
//     a missing identity, cert or prekey is nil or empty.
//   - Key material comes back byte for byte as stored, zero bytes included.
//   - A message refused for its chunks (ErrNoSuchChunk) uses up no
//     conversation or inbox sequence number.
//   - Chunk times (uploads, message SentAt) are compared with ExpireChunks'
//     cutoff at least to the millisecond.
//   - Archive records read back with the At they were put with, to the
//     millisecond, and their Data byte for byte. A user's sequence numbers
//     need not be consecutive (the store may share one counter among users).
//   - TrimResult.Next is opaque: the suite only passes it back as the next
//     call's from, and counts on a pass from "" to Done visiting every user
//     whatever the limit (limits 0 through 100 are tried). A call may
//     delete fewer than limit entries without being Done.
//   - Entry times for expiry are compared with olderThan to the
//     millisecond, like chunk times; the suite's times grow with append
//     order except one copy's, which is what holds expiry back.
//   - After a trim, Inbox, Conversation and the duplicate answers are
//     checked, never the store's tables: a store may keep what it likes
//     of a trimmed message as long as those answers hold.
//   - RemoveDevice and IdleDevices compare last logins (TouchDevice's at)
//     with their times to the millisecond; IdleDevice.LastLogin is
//     checked to the second the suite's clock steps by.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// Run runs the conformance suite against the Store that open returns. open
// is called once per subtest and must return a fresh, empty store; it may use
// t.Cleanup to remove what it created (files, schemas). Run closes every
// store it gets, so open must not close it itself.
func Run(t *testing.T, open func(t *testing.T) natter.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s natter.Store)
	}{
		{"Users", testUsers},
		{"Sessions", testSessions},
		{"Devices", testDevices},
		{"LastSeen", testLastSeen},
		{"ContactStateMachine", testContactStateMachine},
		{"ContactList", testContactList},
		{"AppendMessageSequences", testAppendMessageSequences},
		{"AppendMessageIdempotent", testAppendMessageIdempotent},
		{"AppendMessageBody", testAppendMessageBody},
		{"AppendReceipt", testAppendReceipt},
		{"AppendReceiptID", testAppendReceiptID},
		{"AppendCopy", testAppendCopy},
		{"AppendCopyIdempotent", testAppendCopyIdempotent},
		{"AppendCopyKeys", testAppendCopyKeys},
		{"AppendCopyErrors", testAppendCopyErrors},
		{"AppendCopyBody", testAppendCopyBody},
		{"InboxPaging", testInboxPaging},
		{"InboxPagingCopies", testInboxPagingCopies},
		{"Conversation", testConversation},
		{"ConcurrentAppends", testConcurrentAppends},
		{"ConcurrentDuplicates", testConcurrentDuplicates},
		{"ConcurrentCopyDuplicates", testConcurrentCopyDuplicates},
		{"ConcurrentCreateUser", testConcurrentCreateUser},
		{"SetPassword", testSetPassword},
		{"Identity", testIdentity},
		{"BundlesAndCerts", testBundlesAndCerts},
		{"IdentityResetClearsCerts", testIdentityResetClearsCerts},
		{"Prekeys", testPrekeys},
		{"UserKeysUnknownUser", testUserKeysUnknownUser},
		{"ConcurrentClaims", testConcurrentClaims},
		{"ChunkUploads", testChunkUploads},
		{"ChunkQuota", testChunkQuota},
		{"MessageChunks", testMessageChunks},
		{"ExpireChunks", testExpireChunks},
		{"ExpireManyChunks", testExpireManyChunks},
		{"ArchiveOnOff", testArchiveOnOff},
		{"ArchivePut", testArchivePut},
		{"ArchivePaging", testArchivePaging},
		{"ArchiveQuota", testArchiveQuota},
		{"ArchiveOffDeletes", testArchiveOffDeletes},
		{"ArchiveKeys", testArchiveKeys},
		{"ConcurrentArchivePuts", testConcurrentArchivePuts},
		{"TrimAcked", testTrimAcked},
		{"TrimExpired", testTrimExpired},
		{"TrimPaging", testTrimPaging},
		{"TrimModel", testTrimModel},
		{"ConcurrentTrim", testConcurrentTrim},
		{"ForgetTrimmed", testForgetTrimmed},
		{"RemoveDevice", testRemoveDevice},
		{"IdleDevices", testIdleDevices},
		{"DeviceCap", testDeviceCap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.run(t, s)
		})
	}
	t.Run("Close", func(t *testing.T) { testClose(t, open(t)) })
}

// t0 is the suite's fixed clock: a time with sub-millisecond digits (which a
// store may drop) in a zone other than UTC (which a store may change).
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535_897_932, time.FixedZone("UTC+1", 3600))

// at returns t0 plus n seconds and n milliseconds.
func at(n int) time.Time {
	return t0.Add(time.Duration(n) * (time.Second + time.Millisecond))
}

// sameTime reports whether a and b are the same instant to the millisecond.
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

// createUsers signs up each of users, with a password hash derived from the
// name.
func createUsers(t *testing.T, s natter.Store, users ...natter.UserID) {
	t.Helper()
	for i, u := range users {
		if err := s.CreateUser(t.Context(), u, hashOf(u), at(i)); err != nil {
			t.Fatalf("CreateUser(%s): %v", u, err)
		}
	}
}

func hashOf(u natter.UserID) string {
	return "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$" + string(u)
}

// wantErr fails t unless errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want one wrapping %v", what, err, target)
	}
}

// diffMessage describes how got differs from want, or returns "". SentAt is
// compared to the millisecond.
func diffMessage(got, want natter.Message) string {
	switch {
	case got.ID != want.ID:
		return fmt.Sprintf("ID %q, want %q", got.ID, want.ID)
	case got.From != want.From:
		return fmt.Sprintf("From %q, want %q", got.From, want.From)
	case got.FromDevice != want.FromDevice:
		return fmt.Sprintf("FromDevice %q, want %q", got.FromDevice, want.FromDevice)
	case got.To != want.To:
		return fmt.Sprintf("To %q, want %q", got.To, want.To)
	case !bytes.Equal(got.Body, want.Body):
		return fmt.Sprintf("Body %q, want %q", clip(got.Body), clip(want.Body))
	case got.ConvSeq != want.ConvSeq:
		return fmt.Sprintf("ConvSeq %d, want %d", got.ConvSeq, want.ConvSeq)
	case !sameTime(got.SentAt, want.SentAt):
		return fmt.Sprintf("SentAt %v, want %v", got.SentAt, want.SentAt)
	}
	return ""
}

// diffReceipt is diffMessage for receipts.
func diffReceipt(got, want natter.Receipt) string {
	switch {
	case got.From != want.From:
		return fmt.Sprintf("From %q, want %q", got.From, want.From)
	case got.To != want.To:
		return fmt.Sprintf("To %q, want %q", got.To, want.To)
	case got.Upto != want.Upto:
		return fmt.Sprintf("Upto %d, want %d", got.Upto, want.Upto)
	case got.ID != want.ID:
		return fmt.Sprintf("ID %q, want %q", got.ID, want.ID)
	case got.State != want.State:
		return fmt.Sprintf("State %q, want %q", got.State, want.State)
	case !sameTime(got.At, want.At):
		return fmt.Sprintf("At %v, want %v", got.At, want.At)
	}
	return ""
}

func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// entry is what the suite expects at one position of an inbox. copy marks
// a message expected as a copy (InboxEntry.Copy); it is false for every
// entry made by AppendMessage or AppendReceipt.
type entry struct {
	seq     uint64
	message *natter.Message
	receipt *natter.Receipt
	copy    bool
}

// checkInbox fails t unless user's whole inbox is exactly want, in order.
func checkInbox(t *testing.T, s natter.Store, user natter.UserID, want []entry) {
	t.Helper()
	got, err := s.Inbox(t.Context(), user, 0, len(want)+10)
	if err != nil {
		t.Fatalf("Inbox(%s): %v", user, err)
	}
	if len(got) != len(want) {
		t.Fatalf("Inbox(%s) has %d entries, want %d: %v", user, len(got), len(want), seqs(got))
	}
	for i, g := range got {
		w := want[i]
		if g.Seq != w.seq {
			t.Fatalf("Inbox(%s)[%d].Seq = %d, want %d", user, i, g.Seq, w.seq)
		}
		checkEntry(t, fmt.Sprintf("Inbox(%s)[%d]", user, i), g, w)
	}
}

func checkEntry(t *testing.T, what string, g natter.InboxEntry, w entry) {
	t.Helper()
	switch {
	case (g.Message == nil) == (g.Receipt == nil):
		t.Fatalf("%s: want exactly one of Message and Receipt set, got message %v, receipt %v", what, g.Message, g.Receipt)
	case g.Copy && g.Receipt != nil:
		t.Fatalf("%s: a receipt %+v with Copy set", what, *g.Receipt)
	case w.message != nil && g.Message == nil:
		t.Fatalf("%s is a receipt %+v, want message %s", what, *g.Receipt, w.message.ID)
	case w.receipt != nil && g.Receipt == nil:
		t.Fatalf("%s is message %s, want a receipt", what, g.Message.ID)
	case g.Copy != w.copy:
		t.Fatalf("%s: message %s has Copy %v, want %v", what, g.Message.ID, g.Copy, w.copy)
	case w.message != nil:
		if d := diffMessage(*g.Message, *w.message); d != "" {
			t.Fatalf("%s: message %s", what, d)
		}
	default:
		if d := diffReceipt(*g.Receipt, *w.receipt); d != "" {
			t.Fatalf("%s: receipt %s", what, d)
		}
	}
}

func seqs(es []natter.InboxEntry) []uint64 {
	var s []uint64
	for _, e := range es {
		s = append(s, e.Seq)
	}
	return s
}

// send appends a message from → to with the given ID and body and fails t on
// error.
func send(t *testing.T, s natter.Store, from, to natter.UserID, id natter.MessageID, body string) natter.Appended {
	t.Helper()
	a, err := s.AppendMessage(t.Context(), natter.Message{
		ID: id, From: from, FromDevice: "dev-" + natter.DeviceID(from), To: to,
		Body: []byte(body), SentAt: at(len(body)),
	})
	if err != nil {
		t.Fatalf("AppendMessage(%s→%s %s): %v", from, to, id, err)
	}
	return a
}

// direct is a message from → to with the given ID and body, as it would go
// peer to peer, for AppendCopy.
func direct(from, to natter.UserID, id natter.MessageID, body string) natter.Message {
	return natter.Message{
		ID: id, From: from, FromDevice: "p2p-" + natter.DeviceID(from), To: to,
		Body: []byte(body), SentAt: at(len(body)),
	}
}

// appendCopy appends owner's copy of m, fails t on error or if it is taken
// for a repeat, and returns its sequence number.
func appendCopy(t *testing.T, s natter.Store, owner natter.UserID, m natter.Message) uint64 {
	t.Helper()
	seq, dup, err := s.AppendCopy(t.Context(), owner, m)
	if err != nil {
		t.Fatalf("AppendCopy(%s, %s→%s %s): %v", owner, m.From, m.To, m.ID, err)
	}
	if dup {
		t.Fatalf("AppendCopy(%s, %s→%s %s): dup set on a first append", owner, m.From, m.To, m.ID)
	}
	return seq
}

// asCopy is m as a copy of it reads back: without a conversation sequence
// number.
func asCopy(m natter.Message) *natter.Message {
	m.ConvSeq = 0
	return &m
}
