package tui

import (
	"context"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/history"
	"github.com/natterim/natter/wire"
)

var _ Backend = (*client.Client)(nil)

// Backend is the SDK as the terminal UI uses it (*client.Client satisfies
// it). The UI calls it only from tea.Cmds, never from Update.
type Backend interface {
	SDK
	// SendTyping tells to that the user is typing to them (ephemeral,
	// never stored). The UI sends it at most every typingEvery.
	SendTyping(ctx context.Context, to natter.UserID) error
}

// SDK is Backend but for typing, with *client.Client's signatures.
type SDK interface {
	// Events is the SDK's event channel; the UI reads it until it is
	// closed.
	Events() <-chan client.Event
	Contacts(ctx context.Context) ([]wire.Contact, error)

	SendID(ctx context.Context, id natter.MessageID, to natter.UserID, body []byte) (client.SendResult, error)
	SendFile(ctx context.Context, to natter.UserID, path string, progress client.Progress) (client.SendResult, *client.FileInfo, error)
	FetchFile(ctx context.Context, f *client.FileInfo, dir string, progress client.Progress) (string, error)
	MarkDelivered(ctx context.Context, peer natter.UserID, upto uint64) error
	MarkRead(ctx context.Context, peer natter.UserID, upto uint64) error
	MarkDeliveredID(ctx context.Context, peer natter.UserID, id natter.MessageID) error
	MarkReadID(ctx context.Context, peer natter.UserID, id natter.MessageID) error

	Add(ctx context.Context, user natter.UserID) error
	Accept(ctx context.Context, user natter.UserID) error
	Refuse(ctx context.Context, user natter.UserID) error
	Remove(ctx context.Context, user natter.UserID) error
	Block(ctx context.Context, user natter.UserID) error
	Unblock(ctx context.Context, user natter.UserID) error
	SetPresence(ctx context.Context, s natter.Status, text string) error

	SafetyNumber(ctx context.Context, peer natter.UserID) (number string, verified bool, err error)
	MarkVerified(ctx context.Context, peer natter.UserID, number string) error
	Devices(ctx context.Context) ([]client.DeviceInfo, error)
	ApproveDevice(ctx context.Context, dev natter.DeviceID) error

	PathTo(peer natter.UserID) (string, time.Duration)
	OpenDirect(ctx context.Context, peer natter.UserID) (path string, rtt time.Duration, err error)
	Logout(ctx context.Context) error
}

var _ SDK = (*client.Client)(nil)

// Local is what the app keeps on this device for the logged-in user: the
// local history (package history) and the notes it makes of what arrives.
// Its methods are called from tea.Cmds, concurrently: they must be safe for
// concurrent use.
type Local interface {
	// Page and Search are those of *history.Log.
	Page(ctx context.Context, peer natter.UserID, before history.Cursor, limit int) ([]history.Entry, history.Cursor, error)
	Search(ctx context.Context, query string, limit int) ([]history.Hit, error)
	// Record keeps what an event carries (messages in the history, files
	// in the files log). The UI calls it for every event it reads, before
	// it shows the event.
	Record(ctx context.Context, ev client.Event)
	// RecordSent keeps a message this device sent: text is its body, or
	// for a file the line "[file] NAME (SIZE)".
	RecordSent(ctx context.Context, to natter.UserID, text string, res client.SendResult)
}

// Session is a logged-in user as the UI needs it.
type Session struct {
	User    natter.UserID
	Device  natter.DeviceID
	Server  string // shown in the top bar
	Backend Backend
	Local   Local // nil: no local history (nothing older than this run)
	// FilesDir is where /files fetches the files that arrived (the home's
	// files folder).
	FilesDir string
	// Status and StatusText, if Status is set, are applied when the
	// session starts (the status natter remembers).
	Status     natter.Status
	StatusText string
	// Kept is what arrived in earlier runs of the app and was not shown
	// yet (natter's unread file): it joins the offline inbox view and its
	// conversations, as the inbox that follows a login does.
	Kept []wire.InboxGroup
	// SaveStatus, if set, is called (from a Cmd) after /status succeeds,
	// so that the app remembers it.
	SaveStatus func(natter.Status, string) error
	// End is called once when the UI is done with the session: with
	// loggedOut set after /logout succeeded (forget the stored session),
	// else when the UI quits or the SDK gave the session up. It should
	// close the Backend, so that contacts see the user go offline at once.
	End func(ctx context.Context, loggedOut bool) error
	// Sent, if set, delivers the messages this device sends outside the UI
	// while it runs (see SentElsewhere).
	Sent <-chan SentElsewhere
}

// LoginRequest is what the login form asks for.
type LoginRequest struct {
	Server   string
	User     natter.UserID
	Password string
	Signup   bool // create the account; else log in
}

// TrustFunc asks the user whether to trust a server's certificate on first
// use; fingerprint is its SHA-256 in hex. It blocks until the user answers
// (or ctx ends: then it returns false).
type TrustFunc func(ctx context.Context, server, fingerprint string) bool

// LoginFunc connects to req.Server, signs up or logs in, and returns the
// live session. It calls trust when the server's certificate is not pinned
// yet, from its own goroutine. Errors are shown to the user as they are, so
// they should read well.
type LoginFunc func(ctx context.Context, req LoginRequest, trust TrustFunc) (*Session, error)

// TypingMsg says that From is typing to the user. The natter command maps
// the SDK's typing event to it (Config.Translate); it lasts typingTTL unless
// renewed.
type TypingMsg struct {
	From natter.UserID
}
