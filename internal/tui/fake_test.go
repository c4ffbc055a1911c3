package tui

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/history"
	"github.com/natterim/natter/wire"
)

// t0 is the tests' "now".
var t0 = time.Date(2024, 3, 5, 14, 30, 0, 0, time.UTC)

// fakeBackend is a Backend that records calls and answers from its fields.
type fakeBackend struct {
	events chan client.Event

	mu        sync.Mutex
	calls     []string
	contacts  []wire.Contact
	sendErr   error
	seq       uint64
	path      string
	rtt       time.Duration
	safety    string
	verified  bool
	safetyErr error
	devices   []client.DeviceInfo
	block     chan struct{} // if set, SendID waits for it
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{events: make(chan client.Event, 1024), path: client.PathServer,
		safety: "12345 67890 12345 67890 12345 67890 12345 67890 12345 67890 12345 67890"}
}

func (f *fakeBackend) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// called returns the calls made so far.
func (f *fakeBackend) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// has reports whether a call starting with prefix was made.
func (f *fakeBackend) has(prefix string) bool {
	for _, c := range f.called() {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

func (f *fakeBackend) Events() <-chan client.Event { return f.events }

func (f *fakeBackend) Contacts(ctx context.Context) ([]wire.Contact, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.contacts), nil
}

func (f *fakeBackend) SendID(ctx context.Context, id natter.MessageID, to natter.UserID, body []byte) (client.SendResult, error) {
	f.record("SendID %s %s", to, body)
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		return client.SendResult{ID: id}, f.sendErr
	}
	f.seq++
	return client.SendResult{ID: id, ConvSeq: f.seq, SentAt: t0, Online: true, Path: f.path}, nil
}

func (f *fakeBackend) SendFile(ctx context.Context, to natter.UserID, path string, progress client.Progress) (client.SendResult, *client.FileInfo, error) {
	f.record("SendFile %s %s", to, path)
	for i := int64(1); i <= 4; i++ {
		progress(i*256, 1024)
	}
	return client.SendResult{ID: "file1", ConvSeq: 99, SentAt: t0, Path: f.path}, &client.FileInfo{Name: "notes.txt", Size: 1024}, nil
}

func (f *fakeBackend) FetchFile(ctx context.Context, fi *client.FileInfo, dir string, progress client.Progress) (string, error) {
	f.record("FetchFile %s %s", fi.Name, dir)
	progress(fi.Size, fi.Size)
	return dir + "/" + fi.Name, nil
}

func (f *fakeBackend) SendTyping(ctx context.Context, to natter.UserID) error {
	f.record("SendTyping %s", to)
	return nil
}

func (f *fakeBackend) MarkDelivered(ctx context.Context, peer natter.UserID, upto uint64) error {
	f.record("MarkDelivered %s %d", peer, upto)
	return nil
}

func (f *fakeBackend) MarkRead(ctx context.Context, peer natter.UserID, upto uint64) error {
	f.record("MarkRead %s %d", peer, upto)
	return nil
}

func (f *fakeBackend) MarkDeliveredID(ctx context.Context, peer natter.UserID, id natter.MessageID) error {
	f.record("MarkDeliveredID %s %s", peer, id)
	return nil
}

func (f *fakeBackend) MarkReadID(ctx context.Context, peer natter.UserID, id natter.MessageID) error {
	f.record("MarkReadID %s %s", peer, id)
	return nil
}

func (f *fakeBackend) Add(ctx context.Context, u natter.UserID) error {
	f.record("Add %s", u)
	return nil
}

func (f *fakeBackend) Accept(ctx context.Context, u natter.UserID) error {
	f.record("Accept %s", u)
	return nil
}

func (f *fakeBackend) Refuse(ctx context.Context, u natter.UserID) error {
	f.record("Refuse %s", u)
	return nil
}

func (f *fakeBackend) Remove(ctx context.Context, u natter.UserID) error {
	f.record("Remove %s", u)
	return nil
}

func (f *fakeBackend) Block(ctx context.Context, u natter.UserID) error {
	f.record("Block %s", u)
	return nil
}

func (f *fakeBackend) Unblock(ctx context.Context, u natter.UserID) error {
	f.record("Unblock %s", u)
	return nil
}

func (f *fakeBackend) SetPresence(ctx context.Context, s natter.Status, text string) error {
	f.record("SetPresence %s %s", s, text)
	return nil
}

func (f *fakeBackend) SafetyNumber(ctx context.Context, peer natter.UserID) (string, bool, error) {
	f.record("SafetyNumber %s", peer)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.safety, f.verified, f.safetyErr
}

func (f *fakeBackend) MarkVerified(ctx context.Context, peer natter.UserID, number string) error {
	f.record("MarkVerified %s %s", peer, number)
	return nil
}

func (f *fakeBackend) Devices(ctx context.Context) ([]client.DeviceInfo, error) {
	f.record("Devices")
	return f.devices, nil
}

func (f *fakeBackend) ApproveDevice(ctx context.Context, dev natter.DeviceID) error {
	f.record("ApproveDevice %s", dev)
	return nil
}

func (f *fakeBackend) PathTo(peer natter.UserID) (string, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.path, f.rtt
}

func (f *fakeBackend) OpenDirect(ctx context.Context, peer natter.UserID) (string, time.Duration, error) {
	f.record("OpenDirect %s", peer)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.path, f.rtt, nil
}

func (f *fakeBackend) Logout(ctx context.Context) error {
	f.record("Logout")
	return nil
}

// fakeLocal is an in-memory history. Cursors are positions in a
// conversation's slice.
type fakeLocal struct {
	me natter.UserID

	mu    sync.Mutex
	convs map[natter.UserID][]history.Entry
	pages int // Page calls
}

func newFakeLocal(me natter.UserID) *fakeLocal {
	return &fakeLocal{me: me, convs: map[natter.UserID][]history.Entry{}}
}

// fill logs n messages with peer, alternating sides, a minute apart and
// ending before t0.
func (l *fakeLocal) fill(peer natter.UserID, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range n {
		e := history.Entry{ID: natter.MessageID(fmt.Sprintf("h%06d", i)), From: peer, To: l.me, Body: fmt.Sprintf("message number %d from the history", i),
			SentAt: t0.Add(-time.Duration(n-i) * time.Minute), ConvSeq: uint64(i + 1), Path: client.PathServer, Direction: history.In}
		if i%3 == 2 {
			e.From, e.To, e.Direction = l.me, peer, history.Out
		}
		l.convs[peer] = append(l.convs[peer], e)
	}
}

func (l *fakeLocal) Page(ctx context.Context, peer natter.UserID, before history.Cursor, limit int) ([]history.Entry, history.Cursor, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pages++
	all := l.convs[peer]
	end := len(all)
	if before != "" {
		end, _ = strconv.Atoi(string(before))
	}
	start := max(end-limit, 0)
	var next history.Cursor
	if start > 0 {
		next = history.Cursor(strconv.Itoa(start))
	}
	return slices.Clone(all[start:end]), next, nil
}

func (l *fakeLocal) Search(ctx context.Context, query string, limit int) ([]history.Hit, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var hits []history.Hit
	for _, es := range l.convs {
		for _, e := range es {
			if strings.Contains(e.Body, query) && len(hits) < limit {
				hits = append(hits, history.Hit{Entry: e, Snippet: strings.ReplaceAll(e.Body, query, "["+query+"]")})
			}
		}
	}
	slices.SortFunc(hits, func(a, b history.Hit) int { return b.SentAt.Compare(a.SentAt) })
	return hits, nil
}

func (l *fakeLocal) Record(ctx context.Context, ev client.Event) {
	if m, ok := ev.(client.MessageEvent); ok {
		l.add(m.Message)
	}
}

func (l *fakeLocal) RecordSent(ctx context.Context, to natter.UserID, text string, res client.SendResult) {
	l.add(wire.Message{ID: res.ID, From: l.me, To: to, Body: []byte(text), ConvSeq: res.ConvSeq, SentAt: res.SentAt})
}

func (l *fakeLocal) add(m wire.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	peer, dir := m.From, history.In
	if m.From == l.me {
		peer, dir = m.To, history.Out
	}
	l.convs[peer] = append(l.convs[peer], history.Entry{ID: m.ID, From: m.From, To: m.To, Body: string(m.Body), SentAt: m.SentAt, ConvSeq: m.ConvSeq, Direction: dir})
}

// Test data.

func contact(u string, status natter.Status, text string) wire.Contact {
	return wire.Contact{User: natter.UserID(u), State: natter.ContactApproved, Status: status, Text: text, LastSeen: t0.Add(-3 * time.Hour)}
}

func someContacts() []wire.Contact {
	return []wire.Contact{
		contact("bob", natter.StatusOnline, "at my desk"),
		contact("carol", natter.StatusAway, "lunch"),
		contact("dave", natter.StatusBusy, ""),
		contact("erin", natter.StatusOffline, ""),
		contact("frank", natter.StatusOffline, ""),
		{User: "gina", State: natter.ContactPendingIn},
		{User: "hank", State: natter.ContactPendingOut},
		{User: "ivan", State: natter.ContactBlocked},
	}
}

// msgFrom is a message to alice.
func msgFrom(from string, seq uint64, text string, at time.Time) wire.Message {
	return wire.Message{ID: natter.MessageID(fmt.Sprintf("%s-%d", from, seq)), From: natter.UserID(from), To: "alice", Body: []byte(text), ConvSeq: seq, SentAt: at}
}
