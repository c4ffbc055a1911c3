package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	tea "charm.land/bubbletea/v2"
	"golang.org/x/term"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/history"
	"github.com/natterim/natter/internal/tui"
)

// natter with no command, on a terminal, opens the terminal UI (package
// tui): the home's stored session goes straight to the contact list, else
// the login form asks for the server, the user and the password. Like
// listen and chat it holds online.lock and serves the agent socket, so
// other natter commands of the home run beside it on its connection.
//
// Nothing may write to the terminal while the UI runs: what natter would
// print on stderr (warnings, the SDK's log) goes to tui.log in the home.

// tuiLogFile names the UI's log in the home.
const tuiLogFile = "tui.log"

// runTUI runs the terminal UI until the person quits.
func (r *runner) runTUI(ctx context.Context) error {
	if err := r.online(); err != nil {
		return err
	}
	if err := r.home.ensure(); err != nil {
		return err
	}
	logf, err := os.OpenFile(r.home.path(tuiLogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open the UI's log: %w", err)
	}
	defer logf.Close()
	term := r.stdio
	r.stdio.Err = logf // warnings of the history and the like
	log := slog.New(slog.NewTextHandler(logf, nil))

	cfg := tui.Config{
		Server:    r.g.server,
		Bell:      r.getenv("NATTER_BELL") != "off",
		Now:       r.now,
		Logger:    log,
		Input:     term.In,
		Output:    term.Out,
		Translate: translateEvent,
		Login: func(ctx context.Context, req tui.LoginRequest, trust tui.TrustFunc) (*tui.Session, error) {
			return r.tuiLogin(ctx, req, trust)
		},
	}
	if s, err := r.home.session(); err == nil {
		cfg.User = s.User
		if cfg.Server == "" {
			cfg.Server = s.Server
		}
		sess, err := r.tuiResume(ctx)
		if err != nil {
			// The form says what to do; the reason is in the log.
			log.Warn("resume the stored session", "err", err)
		} else {
			cfg.Session = sess
		}
	}
	return tui.Run(ctx, cfg)
}

// translateEvent maps the SDK's events the UI has no case for.
func translateEvent(ev client.Event) tea.Msg {
	if t, ok := ev.(client.TypingEvent); ok {
		return tui.TypingMsg{From: t.From}
	}
	return nil
}

// tuiResume resumes the home's stored session for the UI.
func (r *runner) tuiResume(ctx context.Context) (*tui.Session, error) {
	c, s, err := r.resume(ctx)
	if err != nil {
		return nil, err
	}
	return r.tuiSession(ctx, c, s)
}

// tuiLogin signs up or logs in from the UI's form, asking the form whether
// to trust a server seen for the first time.
func (r *runner) tuiLogin(ctx context.Context, req tui.LoginRequest, trust tui.TrustFunc) (*tui.Session, error) {
	if err := natter.ValidateUserID(string(req.User)); err != nil {
		return nil, err
	}
	r.g.server = req.Server
	r.trust = func(addr, fp string) bool { return trust(ctx, addr, fp) }
	defer func() { r.trust = nil }()
	c, addr, err := r.dial(ctx, "", req.User)
	if err != nil {
		return nil, plainErr(err)
	}
	sess, err := signIn(ctx, c, req.User, req.Password, req.Signup)
	if err != nil {
		c.Close()
		return nil, plainErr(serverErr(err, req.User))
	}
	s := storedSession{Server: addr, User: sess.User, Device: sess.Device, Token: sess.Token, Expires: sess.Expires}
	if err := r.home.saveSession(s); err != nil {
		c.Close()
		return nil, err
	}
	return r.tuiSession(ctx, c, s)
}

// plainErr is err as the person reads it (describe's words, without the
// chain).
func plainErr(err error) error {
	msg, _ := describe(err)
	return fmt.Errorf("%s", firstLine(msg))
}

// tuiSession gives the UI a connected session: the client, the home's
// history and notes, what earlier commands kept unshown, the remembered
// status; and makes it the connection of the home's agent.
func (r *runner) tuiSession(ctx context.Context, c *client.Client, s storedSession) (*tui.Session, error) {
	kept, commit, err := r.home.takeUnread(s.User)
	if err != nil {
		c.Close()
		return nil, err
	}
	if err := commit(); err != nil { // the UI shows them from here on
		c.Close()
		return nil, err
	}
	loc := &tuiLocal{r: r, s: s}
	p, _ := r.home.presence()
	// What commands handed to the UI send shows in its conversations; a
	// full buffer (nobody reading) only costs the display, not the message.
	sent := make(chan tui.SentElsewhere, 256)
	r.agent.setOnSent(func(to natter.UserID, text string, res client.SendResult) {
		select {
		case sent <- tui.SentElsewhere{To: to, Text: text, Result: res}:
		default:
		}
	})
	r.agent.set(c, s)
	var once sync.Once
	return &tui.Session{
		User:       s.User,
		Device:     s.Device,
		Server:     s.Server,
		Backend:    c,
		Local:      loc,
		FilesDir:   r.home.path(filesDir),
		Status:     p.Status,
		StatusText: p.Text,
		Kept:       inboxGroups(kept, s.User, s.Device),
		Sent:       sent,
		SaveStatus: func(st natter.Status, text string) error {
			return r.home.savePresence(storedPresence{Status: st, Text: text})
		},
		End: func(ctx context.Context, loggedOut bool) error {
			var err error
			once.Do(func() {
				r.agent.unset()
				c.Close()
				loc.close()
				if loggedOut {
					err = r.home.deleteSession()
				}
			})
			return err
		},
	}, nil
}

// tuiLocal is the home's history and notes for the UI. The runner's record
// functions are safe for concurrent use; reads use a handle of their own.
type tuiLocal struct {
	r *runner
	s storedSession

	mu  sync.Mutex
	log *history.Log
}

func (l *tuiLocal) open(ctx context.Context) (*history.Log, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.log == nil {
		h, err := l.r.home.openHistory(ctx, l.s.User)
		if err != nil {
			return nil, err
		}
		l.log = h
	}
	return l.log, nil
}

func (l *tuiLocal) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.log != nil {
		l.log.Close()
		l.log = nil
	}
}

// Page returns a page of the conversation with peer, older than before.
func (l *tuiLocal) Page(ctx context.Context, peer natter.UserID, before history.Cursor, limit int) ([]history.Entry, history.Cursor, error) {
	h, err := l.open(ctx)
	if err != nil {
		return nil, "", err
	}
	return h.Page(ctx, peer, before, limit)
}

// Search searches the history.
func (l *tuiLocal) Search(ctx context.Context, query string, limit int) ([]history.Hit, error) {
	h, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	return h.Search(ctx, query, limit)
}

// Record keeps what ev carries, and shows ev to the commands handed to the
// agent that watch events.
func (l *tuiLocal) Record(ctx context.Context, ev client.Event) {
	l.r.recordEvent(ctx, l.s.User, ev)
	l.r.agent.publish(ev)
}

// RecordSent keeps a message the UI sent.
func (l *tuiLocal) RecordSent(ctx context.Context, to natter.UserID, text string, res client.SendResult) {
	l.r.recordSent(ctx, l.s, to, text, res)
}

// isTerminal reports whether both of natter's streams are a terminal.
func isTerminal(in io.Reader, out io.Writer) bool {
	_, inTerm := terminalFd(in)
	o, ok := out.(interface{ Fd() uintptr })
	return inTerm && ok && term.IsTerminal(int(o.Fd()))
}
