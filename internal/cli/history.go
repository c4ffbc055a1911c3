package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/history"
	"github.com/natterim/natter/wire"
)

// The home keeps the user's history: every message natter received or sent
// on this device, once (package history). The server cannot give old
// messages back in a form this device can open, so this is the history.
//
// Messages are logged when they arrive, whichever command receives them
// (listen, chat, inbox, or send, contacts and the other one-shot commands,
// which keep what they receive for natter inbox), and when natter send or
// natter chat sends them. A message that could not be opened is logged with
// the note natter shows in its place (withOpenErr), marked so that search
// leaves it out; a copy that opens later replaces it. A failed write does
// not stop a command: it says so on stderr and ends with exit status 1.
// natter history and natter search read the file and nothing else: they
// work offline.

// historyFile names the file of user's history in the home: one per user,
// like the keys.
func historyFile(user natter.UserID) string { return "history-" + string(user) + ".sqlite" }

// Defaults of natter history and natter search.
const defaultHistoryLimit = 20

// openHistory opens user's history in the home.
func (h home) openHistory(ctx context.Context, user natter.UserID) (*history.Log, error) {
	if err := h.ensure(); err != nil {
		return nil, err
	}
	return history.Open(ctx, h.path(historyFile(user)))
}

// record logs entries in user's history. It may be called from several
// goroutines. A failure is reported on stderr once and kept for the exit
// status (see historyErr); the command goes on.
func (r *runner) record(ctx context.Context, user natter.UserID, entries ...history.Entry) {
	if len(entries) == 0 {
		return
	}
	// Messages the SDK handed over are logged even after an interrupt.
	ctx = context.WithoutCancel(ctx)
	r.histMu.Lock()
	defer r.histMu.Unlock()
	err := func() error {
		if r.hist != nil && r.histUser != user {
			r.hist.Close()
			r.hist = nil
		}
		if r.hist == nil {
			l, err := r.home.openHistory(ctx, user)
			if err != nil {
				return err
			}
			r.hist, r.histUser = l, user
		}
		return r.hist.Add(ctx, entries...)
	}()
	if err != nil && r.histErr == nil {
		r.histErr = fmt.Errorf("keep messages in the history: %w", err)
		fmt.Fprintf(r.stdio.Err, "natter: warning: could not keep messages in the history: %v\n", err)
	}
}

// recordEvent logs the messages ev carries.
func (r *runner) recordEvent(ctx context.Context, user natter.UserID, ev client.Event) {
	r.record(ctx, user, historyOf(ev, user)...)
	if err := r.noteFiles(user, ev); err != nil {
		fmt.Fprintf(r.stdio.Err, "natter: warning: could not note an arrived file: %v\n", err)
	}
}

// recordSent logs a message this device sent.
func (r *runner) recordSent(ctx context.Context, s storedSession, to natter.UserID, text string, res client.SendResult) {
	m := wire.Message{ID: res.ID, From: s.User, FromDevice: s.Device, To: to, Body: []byte(text), ConvSeq: res.ConvSeq, SentAt: res.SentAt}
	r.record(ctx, s.User, historyEntry(m, res.Path, nil, s.User))
	if r.via != nil {
		r.via.sent(to, text, res)
	}
}

// historyErr returns the first failure to write the history, if any.
func (r *runner) historyErr() error {
	r.histMu.Lock()
	defer r.histMu.Unlock()
	return r.histErr
}

// closeHistory closes the history, if record opened it.
func (r *runner) closeHistory() {
	r.histMu.Lock()
	defer r.histMu.Unlock()
	if r.hist != nil {
		r.hist.Close()
		r.hist = nil
	}
}

// historyOf returns the messages an event carries, as history entries.
func historyOf(ev client.Event, me natter.UserID) []history.Entry {
	switch ev := ev.(type) {
	case client.MessageEvent:
		return []history.Entry{historyEntry(ev.Message, ev.Path, ev.OpenErr, me)}
	case client.InboxEvent:
		var out []history.Entry
		for _, g := range ev.Groups {
			for _, m := range g.Messages {
				path := client.PathServer
				if m.Direct {
					path = client.PathDirect
				}
				out = append(out, historyEntry(m.Message, path, ev.OpenErrs[m.ID], me))
			}
		}
		return out
	}
	return nil
}

// historyEntry is the history entry of a message of me's.
func historyEntry(m wire.Message, path string, openErr error, me natter.UserID) history.Entry {
	if path == "" {
		path = client.PathServer
	}
	body := string(withOpenErr(m, openErr).Body)
	if f, ok := client.FileOf(m.Body); ok {
		body = fileText(f) // the history keeps the file's name, not its key
	}
	e := history.Entry{
		ID: m.ID, From: m.From, To: m.To, FromDevice: m.FromDevice, Body: body,
		Unopened: openErr != nil, SentAt: m.SentAt, ConvSeq: m.ConvSeq, Path: path, Direction: history.In,
	}
	if m.From == me {
		e.Direction = history.Out
	}
	if e.SentAt.IsZero() { // a peer-to-peer message may come without
		e.SentAt = time.Now()
	}
	return e
}

func historyFlags(fs *flag.FlagSet, o *cmdOpts) {
	fs.IntVar(&o.limit, "limit", defaultHistoryLimit, "show `N` messages")
	fs.StringVar(&o.before, "before", "", "show the messages before `CURSOR` (printed at the end of the previous page)")
}

func searchFlags(fs *flag.FlagSet, o *cmdOpts) {
	fs.IntVar(&o.limit, "limit", defaultHistoryLimit, "show at most `N` messages")
}

// jsonLogged is a message from the history: a page line of natter history
// (type "message") or a hit of natter search (type "hit").
type jsonLogged struct {
	jsonMessage
	Direction history.Direction `json:"direction"`          // in or out
	Unopened  bool              `json:"unopened,omitempty"` // text is a note: the message could not be opened
	Snippet   string            `json:"snippet,omitempty"`  // search: the words around the match, marked [like this]
}

func toJSONLogged(typ string, e history.Entry) jsonLogged {
	j := jsonLogged{jsonMessage: toJSONMessage(loggedMessage(e)), Direction: e.Direction, Unopened: e.Unopened}
	j.Type, j.Path = typ, e.Path
	return j
}

// jsonPage ends the output of natter history --json.
type jsonPage struct {
	Type     string         `json:"type"` // "page"
	User     natter.UserID  `json:"user"`
	Messages int            `json:"messages"`
	Next     history.Cursor `json:"next,omitempty"` // for --before: the page before this one
}

// loggedMessage turns a history entry back into the message the rest of
// natter prints.
func loggedMessage(e history.Entry) wire.Message {
	return wire.Message{ID: e.ID, From: e.From, FromDevice: e.FromDevice, To: e.To, Body: []byte(e.Body), ConvSeq: e.ConvSeq, SentAt: e.SentAt}
}

// historyUser returns the user whose history natter history and natter
// search read: the one of the stored session. They need no server.
func (r *runner) historyUser() (natter.UserID, error) {
	s, err := r.home.session()
	if err != nil {
		return "", err
	}
	return s.User, nil
}

func runHistory(ctx context.Context, r *runner, args []string) error {
	if err := natter.ValidateUserID(args[0]); err != nil {
		return err
	}
	peer := natter.UserID(args[0])
	if r.opts.limit < 1 {
		return usagef(r.cmd, "history: --limit must be at least 1")
	}
	me, err := r.historyUser()
	if err != nil {
		return err
	}
	l, err := r.home.openHistory(ctx, me)
	if err != nil {
		return err
	}
	defer l.Close()
	entries, next, err := l.Page(ctx, peer, history.Cursor(r.opts.before), r.opts.limit)
	if errors.Is(err, history.ErrBadCursor) {
		return usagef(r.cmd, "history: --before %q is not a cursor that natter history printed", r.opts.before)
	}
	if err != nil {
		return err
	}
	if r.g.json {
		for _, e := range entries {
			r.emit(toJSONLogged(evMessage, e))
		}
		r.emit(jsonPage{Type: "page", User: peer, Messages: len(entries), Next: next})
		return nil
	}
	if len(entries) == 0 {
		if r.opts.before != "" {
			r.printf("no older messages with %s\n", peer)
		} else {
			r.printf("no messages with %s on this device\n", peer)
		}
		return nil
	}
	p := eventPrinter{r: r, me: me}
	for _, e := range entries {
		r.printf("%s\n", p.messageLine(loggedMessage(e)))
	}
	if next != "" {
		r.printf("(older messages: natter history %s --before %s)\n", peer, next)
	}
	return nil
}

func runSearch(ctx context.Context, r *runner, args []string) error {
	query := strings.Join(args, " ")
	if r.opts.limit < 1 {
		return usagef(r.cmd, "search: --limit must be at least 1")
	}
	me, err := r.historyUser()
	if err != nil {
		return err
	}
	l, err := r.home.openHistory(ctx, me)
	if err != nil {
		return err
	}
	defer l.Close()
	hits, err := l.Search(ctx, query, r.opts.limit)
	if errors.Is(err, history.ErrEmptyQuery) {
		return usagef(r.cmd, "search: nothing to search for in %q: search words need letters or digits", query)
	}
	if err != nil {
		return err
	}
	if r.g.json {
		for _, h := range hits {
			j := toJSONLogged("hit", h.Entry)
			j.Snippet = h.Snippet
			r.emit(j)
		}
		return nil
	}
	if len(hits) == 0 {
		r.printf("no messages match %q\n", query)
		return nil
	}
	for _, h := range hits {
		who := string(h.From)
		if h.Direction == history.Out {
			who = "you → " + string(h.To)
		}
		snippet := strings.Join(strings.Fields(messageText([]byte(h.Snippet))), " ")
		r.printf("[%s] %s: %s\n", when(h.SentAt, r.now()), who, snippet)
	}
	return nil
}
