package tui

import (
	"context"
	"io"
	"log/slog"
	"time"

	"charm.land/bubbles/v2/textarea"
	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

// Config is how Run (or New) sets the UI up. Only Session or Login is
// needed; every other field has a usable default.
type Config struct {
	// Session is a session the app resumed already; nil shows the login
	// form.
	Session *Session
	// Login signs up or logs in from the login form (and again after
	// /logout). Nil: the form says that logging in is not possible here.
	Login LoginFunc
	// Server and User prefill the login form.
	Server string
	User   natter.UserID
	// Bell rings the terminal bell when a message arrives in a
	// conversation that is not on screen.
	Bell bool
	// Now is the clock (default time.Now); Location the time zone times
	// are shown in (default time.Local).
	Now      func() time.Time
	Location *time.Location
	// Translate, if set, turns SDK events the UI does not know into
	// messages for it (the SDK's typing event into a TypingMsg). A nil
	// result means: handle the event as usual.
	Translate func(client.Event) tea.Msg
	// Logger receives what the UI cannot show (default: discarded).
	Logger *slog.Logger
	// Input and Output are the terminal (default: the process's).
	Input  io.Reader
	Output io.Writer
	// ProgramOptions are added to the tea.Program's (tests set a colour
	// profile and size with them).
	ProgramOptions []tea.ProgramOption
}

// Timings.
const (
	opTimeout    = 30 * time.Second // a network call
	typingEvery  = 3 * time.Second  // at most one typing notification per peer
	typingTTL    = 6 * time.Second  // how long "is typing" lasts unless renewed
	receiptDelay = 150 * time.Millisecond
	doubleClick  = 400 * time.Millisecond
	pageSize     = 200 // messages read from the history at a time
)

// wideWidth is the narrowest terminal that shows the contact list beside
// the open screen.
const wideWidth = 80

// pane is what the main area shows.
type pane uint8

const (
	paneNone pane = iota
	paneChat
	paneInbox
	panePanel
)

// focus is where keys go.
type focus uint8

const (
	focusList focus = iota
	focusMain
)

// App is the whole UI, a tea.Model. Make it with New.
type App struct {
	cfg Config
	lk  look
	now func() time.Time
	log *slog.Logger

	w, h int

	login *loginForm // set while the login form shows
	sess  *Session
	gen   int // counts sessions: results of an older one are dropped

	contacts contactList
	convs    map[natter.UserID]*conv
	tabs     []natter.UserID
	active   int // index in tabs; -1: none

	pane    pane
	focus   focus
	cmdMode bool // a command is being typed from the list or a panel

	inbox inboxView
	panel *panel

	input  textarea.Model
	comp   completion
	notice string
	bad    bool // notice is an error

	conn         string // what is wrong with the connection, if anything
	myStatus     natter.Status
	myText       string
	typingSent   map[natter.UserID]time.Time
	flushPending bool
	arrived      []*arrivedFile
	nextTransfer int
	lastClick    click
	quitting     bool
	loggingOut   bool
	receiptDelay time.Duration // receiptDelay; tests shorten it
}

// click remembers a click on a contact, to see a double click.
type click struct {
	at   time.Time
	user natter.UserID
}

// New returns the UI for cfg.
func New(cfg Config) *App {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &App{
		cfg:    cfg,
		lk:     look{st: newStyles(), loc: cfg.Location},
		now:    cfg.Now,
		log:    cfg.Logger,
		w:      80,
		h:      24,
		active: -1,
		input:  newInput(),

		receiptDelay: receiptDelay,
	}
	if cfg.Session == nil {
		a.login = newLoginForm(cfg.Server, cfg.User)
	}
	return a
}

// Init starts the session given in the Config, or the login form.
func (a *App) Init() tea.Cmd {
	if a.cfg.Session != nil {
		return a.start(a.cfg.Session)
	}
	return a.login.init()
}

// Session returns the live session, if any (after Run: the one to close).
func (a *App) Session() *Session { return a.sess }

// start makes s the live session.
func (a *App) start(s *Session) tea.Cmd {
	a.gen++
	a.login = nil
	a.sess = s
	a.lk.me = s.User
	a.contacts = contactList{}
	a.convs = map[natter.UserID]*conv{}
	a.tabs, a.active = nil, -1
	a.pane, a.focus, a.cmdMode, a.panel = paneNone, focusList, false, nil
	a.inbox = inboxView{}
	a.typingSent = map[natter.UserID]time.Time{}
	a.arrived = nil
	a.conn = ""
	a.myStatus, a.myText = natter.StatusOnline, ""
	a.input.Reset()
	a.input.Placeholder = "type / for commands"
	if s.Server != "" {
		a.setNotice(false, "logged in as %s on %s · /help lists the commands", s.User, s.Server)
	} else {
		a.setNotice(false, "logged in as %s · /help lists the commands", s.User)
	}
	cmds := []tea.Cmd{a.pump(), a.pumpSent(), a.fetchContacts(), a.input.Focus()}
	if len(s.Kept) > 0 {
		cmds = append(cmds, a.inboxEvent(client.InboxEvent{Groups: s.Kept}))
	}
	if s.Status != "" {
		a.myStatus, a.myText = s.Status, s.StatusText
		st, text := s.Status, s.StatusText
		cmds = append(cmds, a.call("set status", func(ctx context.Context, b Backend) error { return b.SetPresence(ctx, st, text) }))
	}
	return tea.Batch(cmds...)
}

// end leaves the live session: the UI goes back to the login form.
func (a *App) end(why string) tea.Cmd {
	s := a.sess
	a.sess = nil
	a.gen++
	a.login = newLoginForm(s.Server, s.User)
	a.login.err = why
	if s.End == nil {
		return a.login.init()
	}
	return tea.Batch(a.login.init(), func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := s.End(ctx, false); err != nil {
			a.log.Warn("end session", "err", err)
		}
		return nil
	})
}

// conv returns the conversation with peer, making it.
func (a *App) conv(peer natter.UserID) *conv {
	c, ok := a.convs[peer]
	if !ok {
		c = newConv(peer, a.sess.User)
		a.convs[peer] = c
	}
	return c
}

// activeConv is the conversation of the current tab, or nil.
func (a *App) activeConv() *conv {
	if a.active < 0 || a.active >= len(a.tabs) {
		return nil
	}
	return a.convs[a.tabs[a.active]]
}

// onScreen reports whether a conversation is visible now.
func (a *App) onScreen(c *conv) bool {
	if c == nil || a.pane != paneChat || a.activeConv() != c {
		return false
	}
	return a.wide() || a.focus == focusMain
}

// wide reports whether the list and the main area are side by side.
func (a *App) wide() bool { return a.w >= wideWidth }

// unread returns a contact's unread count.
func (a *App) unread(u natter.UserID) int {
	if c, ok := a.convs[u]; ok {
		return c.unread
	}
	return 0
}

// totalUnread is the sum over every conversation.
func (a *App) totalUnread() int {
	n := 0
	for _, c := range a.convs {
		n += c.unread
	}
	return n
}

// call runs a Backend call in a Cmd; its result comes back as a doneMsg
// saying what was done.
func (a *App) call(what string, fn func(ctx context.Context, b Backend) error) tea.Cmd {
	b, gen := a.sess.Backend, a.gen
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		return doneMsg{gen: gen, what: what, err: fn(ctx, b)}
	}
}

// doneMsg is the result of a call: what it did, or why not.
type doneMsg struct {
	gen  int
	what string
	err  error
}
