// Package cli is the natter command: a scriptable client for the natter
// instant-messaging service, built on the client SDK.
//
// Every run is one command (natter send bob hi). Commands that talk to the
// server resume the session whose token natter login left in the home
// folder, so only signup and login need a password. Output is plain text for
// people, or one JSON object per line with --json for scripts. The exit
// status is 0 on success, 1 for an error the user can act on (the message
// says what to do) and 2 for a command line natter cannot make sense of.
//
// Run is the whole command: cmd/natter only wires it to the process, so tests
// can run it in-process with their own streams and environment.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/history"
)

// Stdio is a command's standard streams.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// Exit statuses.
const (
	ExitOK    = 0 // success
	ExitError = 1 // an error the user can act on; the message says what
	ExitUsage = 2 // a command line natter cannot make sense of
)

// command is one natter subcommand.
type command struct {
	name    string
	args    string // synopsis of the positional arguments
	summary string // one line for the command list
	help    string // the rest of natter help NAME
	group   string
	minArgs int
	maxArgs int // -1: no limit
	flags   func(fs *flag.FlagSet, o *cmdOpts)
	run     func(ctx context.Context, r *runner, args []string) error
	// live: while a listen, chat or terminal UI of the home is online, the
	// command is handed to it (agent.go) instead of connecting itself.
	live bool
	// login: the command makes a new session, which a running listen,
	// chat or terminal UI of the home would lose: it is refused meanwhile.
	login bool
}

func (c *command) usage() string {
	if c.args == "" {
		return "natter " + c.name + " [flags]"
	}
	return "natter " + c.name + " [flags] " + c.args
}

// cmdOpts holds the flags of single commands.
type cmdOpts struct {
	passwordStdin bool          // signup, login
	wait          time.Duration // send: how long to wait for a delivered receipt
	count         int           // listen: exit after this many events
	timeout       time.Duration // listen: exit after this long
	only          string        // listen: comma-separated event types to print
	confirm       bool          // verify: mark verified
	unverify      bool          // verify: clear the mark
	limit         int           // history, search: how many messages
	before        string        // history: the cursor of the page to show
}

// runner is one run of natter: its streams, environment and flags.
type runner struct {
	stdio  Stdio
	getenv func(string) string
	now    func() time.Time
	g      globals
	opts   cmdOpts
	cmd    *command
	home   home

	longLived  bool     // listen or chat: see lock.go
	direct     bool     // talk to contacts peer to peer even though short-lived (sendfile)
	busyFile   *os.File // the shared busy lock, once connected
	onlineFile *os.File // the exclusive online lock of listen and chat
	agent      *agent   // listen, chat: the home's agent socket they serve
	via        *agent   // a command handed to a running listen or chat: its connection
	cwd        string   // the caller's working folder, for a handed-over command
	// trust, if set, asks the person whether to trust a server's
	// certificate on first use (the terminal UI's form) instead of the
	// notice on stderr.
	trust func(addr, fingerprint string) bool

	// The history messages are logged in (see record in history.go).
	histMu   sync.Mutex
	hist     *history.Log // opened at the first message, closed by Run
	histUser natter.UserID
	histErr  error // the first failure to log
}

// Run runs natter with args (without the program name) and returns the exit
// status. getenv reads the environment (os.Getenv in the real command).
// Cancelling ctx (on SIGINT, say) ends listen and chat cleanly.
func Run(ctx context.Context, args []string, stdio Stdio, getenv func(string) string) int {
	r := &runner{stdio: stdio, getenv: getenv, now: time.Now}
	defer r.releaseLocks()
	defer r.closeHistory()
	return r.main(ctx, args)
}

func (r *runner) main(ctx context.Context, args []string) int {
	top := newFlagSet("natter")
	r.g.register(top)
	if err := top.Parse(args); err != nil {
		if isHelp(err) {
			r.overview(r.stdio.Out)
			return ExitOK
		}
		return r.report(usagef(nil, "%v", err))
	}
	rest := top.Args()
	if len(rest) == 0 {
		if !isTerminal(r.stdio.In, r.stdio.Out) {
			r.overview(r.stdio.Err)
			return ExitUsage
		}
		// On a terminal, natter alone is the terminal UI.
		if err := r.resolve(); err != nil {
			return r.report(err)
		}
		return r.report(r.runTUI(ctx))
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		return r.helpCmd(rest)
	}
	cmd := lookup(name)
	if cmd == nil {
		return r.report(usagef(nil, "unknown command %q", name))
	}
	r.cmd = cmd
	fs := newFlagSet(name)
	r.g.register(fs)
	if cmd.flags != nil {
		cmd.flags(fs, &r.opts)
	}
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if isHelp(err) {
			r.commandHelp(r.stdio.Out, cmd)
			return ExitOK
		}
		return r.report(usagef(cmd, "%v", err))
	}
	switch {
	case len(pos) < cmd.minArgs:
		return r.report(usagef(cmd, "%s: missing arguments", name))
	case cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs:
		return r.report(usagef(cmd, "%s: too many arguments", name))
	}
	if err := r.resolve(); err != nil {
		return r.report(err)
	}
	if r.via == nil {
		switch {
		case cmd.live:
			if code, ok := r.handOver(ctx, args); ok {
				return code
			}
		case cmd.login && r.agentRunning(ctx):
			return r.report(withCode("busy", "a natter listen, chat or terminal UI is online with the home %s: end it before you %s, or use another --home", r.home.dir, cmd.name))
		}
	}
	err = cmd.run(ctx, r, pos)
	if err == nil {
		err = r.historyErr() // already reported on stderr; the exit status says it too
	}
	return r.report(err)
}

// resolve fills the global settings from the environment where no flag
// set them.
func (r *runner) resolve() error {
	if r.g.server == "" {
		r.g.server = r.getenv("NATTER_SERVER")
	}
	dir := r.g.home
	if dir == "" {
		dir = r.getenv("NATTER_HOME")
	}
	if dir == "" {
		d, err := defaultHomeDir()
		if err != nil {
			return err
		}
		dir = d
	}
	r.home = home{dir: dir}
	return nil
}

// report prints err (if any) and returns the exit status for it.
func (r *runner) report(err error) int {
	if err == nil {
		return ExitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(r.stdio.Err, "natter: %s\n", ue.msg)
		if ue.cmd != nil {
			fmt.Fprintf(r.stdio.Err, "usage: %s\nRun 'natter help %s' for details.\n", ue.cmd.usage(), ue.cmd.name)
		} else {
			fmt.Fprintf(r.stdio.Err, "Run 'natter help' for the list of commands.\n")
		}
		return ExitUsage
	}
	msg, code := describe(err)
	fmt.Fprintf(r.stdio.Err, "natter: %s\n", msg)
	if r.g.json {
		r.emit(jsonError{Error: jsonErrorBody{Code: code, Message: firstLine(msg)}})
	}
	return ExitError
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// commands is natter's command table, in the order help lists them.
func commands() []*command {
	return []*command{
		{name: "signup", args: "USER", group: "Account", minArgs: 1, maxArgs: 1, flags: passwordFlags, run: runSignup, login: true,
			summary: "create an account and log in",
			help: `Creates the account USER on the server and logs in: the session token is
kept in the home folder (mode 0600), so later commands need no password.
The password comes from --password-stdin, else $NATTER_PASSWORD, else a
prompt on the terminal.`},
		{name: "login", args: "USER", group: "Account", minArgs: 1, maxArgs: 1, flags: passwordFlags, run: runLogin, login: true,
			summary: "log in and keep the session token",
			help: `Logs in as USER and keeps the session token in the home folder. The
password comes from --password-stdin, else $NATTER_PASSWORD, else a prompt
on the terminal.`},
		{name: "logout", group: "Account", run: runLogout, live: true,
			summary: "log out and forget the session token"},
		{name: "contacts", group: "Contacts", run: runContacts, live: true,
			summary: "list contacts with their state and presence",
			help: `States: approved (you see each other's presence and may message each other),
pending in (they asked you: natter accept USER), pending out (you asked
them), blocked (you blocked them). Approved contacts show their status,
status text and when they were last seen.`},
		contactCmd("add", "ask USER to be your contact (or accept their request)"),
		contactCmd("accept", "accept USER's contact request"),
		contactCmd("refuse", "refuse USER's contact request"),
		contactCmd("remove", "remove USER from your contacts"),
		contactCmd("block", "block USER: they can no longer reach you or see your presence"),
		contactCmd("unblock", "unblock USER"),
		{name: "status", args: "online|away|busy [TEXT]", group: "Presence and messages", minArgs: 1, maxArgs: -1, run: runStatus, live: true,
			summary: "set your status and status text",
			help: `Sets the status your approved contacts see, with an optional text
(natter status away "at lunch"). The status is also remembered in the home
folder and applied whenever natter listen or natter chat goes online.`},
		{name: "send", args: "USER TEXT", group: "Presence and messages", minArgs: 2, maxArgs: -1, flags: sendFlags, run: runSend, live: true,
			summary: "send a message and wait for the server to store it",
			help: `Sends TEXT (the remaining arguments, joined by spaces) to USER and waits for
the server's acknowledgement. If USER is online natter waits briefly (--wait)
for their device to confirm and says "delivered", else "sent"; if USER is
offline the message is "stored for offline delivery".`},
		{name: "sendfile", args: "USER PATH", group: "Presence and messages", minArgs: 2, maxArgs: 2, run: runSendFile, live: true,
			summary: "send a file of any kind and size, sealed end to end",
			help: `Seals the file in chunks and sends them (showing bytes, rate and time left)
straight to USER's device over a peer-to-peer channel when one can be
opened (USER runs natter listen or chat), else through the server, which
keeps them until USER fetches them; then sends USER a message that carries
the file. An interrupted natter sendfile, run again, goes on where it
stopped: chunks USER's device or the server already holds are not sent
again. --no-direct always uses the server.`},
		{name: "files", group: "Presence and messages", run: runFiles, live: true,
			summary: "fetch the files that arrived and list them",
			help: `Fetches every file that arrived and is not fetched yet into the files folder
of the home (names made safe), resuming interrupted downloads, and lists
them all with where they were saved.`},
		{name: "inbox", group: "Presence and messages", run: runInbox, live: true,
			summary: "show what arrived while you were offline, by sender",
			help: `Prints the messages (and read receipts) that arrived while you were offline,
grouped by sender, then acknowledges them: a second natter inbox shows only
what arrived since.`},
		{name: "listen", group: "Presence and messages", flags: listenFlags, run: runListen,
			summary: "stay online and print events as they come",
			help: `Stays online and prints messages, receipts, presence and contact changes
as they come, until interrupted. With --json each event is one JSON object
on its own line, with a "type" field: message, receipt, presence, contact,
reach or connection. --only filters types, --count and --timeout end it.`},
		{name: "chat", args: "USER", group: "Presence and messages", minArgs: 1, maxArgs: 1, run: runChat,
			summary: "chat with USER: each line of input is sent",
			help: `Sends each line read from standard input to USER and prints the
conversation as it comes. End of input (Ctrl-D) ends the chat.`},
		{name: "verify", args: "USER", group: "Security", minArgs: 1, maxArgs: 1, flags: verifyFlags, run: runVerify, live: true,
			summary: "show the safety number shared with USER; --confirm marks them verified",
			help: `Messages are sealed end to end for your contacts' devices. natter verify
shows the safety number of your and USER's identity keys: the same on both
sides. Compare it with USER in person or by phone; if it matches, run
natter verify USER --confirm. If a verified contact's key changes later,
natter refuses to send to them until you verify again. --unverify clears
the mark.`},
		{name: "devices", args: "[approve DEVICE | remove DEVICE | reset]", group: "Security", maxArgs: 2, run: runDevices, live: true,
			summary: "list your devices; approve a new one, remove a lost one",
			help: `Lists the devices of your account that published keys. A new device must be
approved from the device that holds your identity key (the first one you
used) before contacts seal messages for it: natter devices approve DEVICE
(check the device ID shown by natter devices on the new device). If no
device holding the identity is left, natter devices reset makes this
device's new identity key the account's: contacts are warned, and those who
verified you must verify again. natter devices remove DEVICE removes a
device you lost or no longer use: its sessions end, contacts stop sealing
for it, and it no longer counts against the server's limit of devices per
account (to use it again, log in on it as a new device).`},
		{name: "archive", args: "[status|on|off|fetch]", group: "History", maxArgs: 1, run: runArchive, live: true,
			summary: "server-side history for your new devices: off by default",
			help: `Shows whether your server-side history is on. natter archive on turns it on
for your account: from then on each of your devices keeps a copy of every
message it sends or reads on the server, sealed so that only your devices
can open it, and this device puts its own history there too. A new device,
once approved (natter devices approve), gets the key from a device that has
it and natter archive fetch brings the archived conversations into its
history (natter history, natter search). natter archive off deletes it
from the server.`},
		{name: "history", args: "USER", group: "History", minArgs: 1, maxArgs: 1, flags: historyFlags, run: runHistory,
			summary: "show your conversation with USER, as kept on this device",
			help: `Prints the newest --limit messages of your conversation with USER, oldest
first, and then how to see the page before (natter history USER --before
CURSOR). With --json each message is one object (type "message", with its
direction, in or out), and a last object (type "page") holds the cursor
of the page before as "next", if there is one.

Every message natter receives or sends is kept on this device, in the home
folder: messages are sealed end to end, so the server cannot give old ones
back, and this is your history. natter history reads only that file: it
works offline.`},
		{name: "search", args: "TEXT", group: "History", minArgs: 1, maxArgs: -1, flags: searchFlags, run: runSearch,
			summary: "search the messages kept on this device",
			help: `Finds the messages kept on this device (see natter help history) that
contain every word of TEXT, as a word or the start of one (meet finds
meeting; case and accents do not matter), and prints the newest first, with
who sent them, when, and the words around the match [marked like this].
Quotes, parentheses and operators are just text. With --json each match is
one object (type "hit") with the whole message and its "snippet". Works
offline.`},
	}
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

const globalHelp = `Global flags (before or after the command):
  --server HOST:PORT  the server, or several nodes of it comma-separated (default $NATTER_SERVER,
                      then the server of the last login)
  --home DIR          where the session token, pinned certificate, device ID, keys and
                      message history live (default $NATTER_HOME, then the natter folder
                      in the user config folder)
  --ca FILE           verify the server with the PEM certificate(s) in FILE instead of
                      trusting its certificate on first use and pinning it
  --json              machine-readable output: one JSON object per line
  --no-direct         never talk to contacts peer to peer (chat and listen do when they can)
  --verbose           also print details for debugging: contacts' network addresses, why a
                      peer-to-peer connection failed

chat and listen connect to a contact's device directly when both are online (through
NATs, or through the server's relay), and say which path a conversation takes: direct,
relayed or server, with its round-trip time.

While natter (the full-screen client), listen or chat is online with a home, the other
commands of that home are handed to it and run on its connection. Commands run on their
own connect quietly: contacts do not see you come online for them. NATTER_BELL=off keeps
the full-screen client from ringing the terminal bell for new messages.

Without --ca, the first connection trusts the server's certificate and pins its
SHA-256 fingerprint in the home folder; a different certificate later is refused.

Exit status: 0 success, 1 error (the message says what to do), 2 usage error.
`

// overview prints the command list.
func (r *runner) overview(w io.Writer) {
	fmt.Fprint(w, "natter is the terminal client of the natter instant-messaging service.\n\n"+
		"Usage: natter [flags]                          the full-screen client (on a terminal)\n"+
		"       natter [flags] COMMAND [flags] [ARGS]   one command\n")
	cmds := commands()
	width := len("help [COMMAND]")
	for _, c := range cmds {
		width = max(width, len(c.name)+1+len(c.args))
	}
	group := ""
	for _, c := range cmds {
		if c.group != group {
			group = c.group
			fmt.Fprintf(w, "\n%s:\n", group)
		}
		fmt.Fprintf(w, "  %-*s  %s\n", width, strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(w, "  %-*s  %s\n", width, "help [COMMAND]", "show help")
	fmt.Fprint(w, "\n"+globalHelp)
}

// helpCmd is natter help [COMMAND].
func (r *runner) helpCmd(args []string) int {
	switch {
	case len(args) == 0:
		r.overview(r.stdio.Out)
		return ExitOK
	case len(args) > 1:
		return r.report(usagef(nil, "help: too many arguments"))
	}
	cmd := lookup(args[0])
	if cmd == nil {
		return r.report(usagef(nil, "help: unknown command %q", args[0]))
	}
	r.commandHelp(r.stdio.Out, cmd)
	return ExitOK
}

// commandHelp prints one command's help and flags.
func (r *runner) commandHelp(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "usage: %s\n\n%s.\n", cmd.usage(), upperFirst(cmd.summary))
	if cmd.help != "" {
		fmt.Fprintf(w, "\n%s\n", cmd.help)
	}
	if cmd.flags != nil {
		fs := newFlagSet(cmd.name)
		var o cmdOpts
		cmd.flags(fs, &o)
		fmt.Fprint(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fmt.Fprint(w, "\n"+globalHelp)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func passwordFlags(fs *flag.FlagSet, o *cmdOpts) {
	fs.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
}

func sendFlags(fs *flag.FlagSet, o *cmdOpts) {
	fs.DurationVar(&o.wait, "wait", 2*time.Second, "how long to wait for an online recipient's device to confirm delivery")
}

func listenFlags(fs *flag.FlagSet, o *cmdOpts) {
	fs.IntVar(&o.count, "count", 0, "exit after printing `N` events (0: no limit)")
	fs.DurationVar(&o.timeout, "timeout", 0, "exit after `DURATION` (0: no limit); with --count, fewer events than N by then is an error")
	fs.StringVar(&o.only, "only", "", "print only these event `TYPES` (comma-separated: message,receipt,presence,contact,reach,connection)")
}

func contactCmd(name, summary string) *command {
	return &command{name: name, args: "USER", group: "Contacts", minArgs: 1, maxArgs: 1, summary: summary, live: true,
		run: func(ctx context.Context, r *runner, args []string) error { return runContactOp(ctx, r, name, args[0]) }}
}
