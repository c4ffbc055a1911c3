package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// globals are the flags every command takes. They may come before the
// command name (natter --json contacts) or after it (natter contacts --json).
type globals struct {
	server string // --server HOST:PORT[,HOST:PORT...], else NATTER_SERVER, else the session's server
	home   string // --home DIR, else NATTER_HOME, else UserConfigDir/natter
	ca     string // --ca FILE: verify the server with this certificate instead of pinning
	json   bool   // --json: machine-readable output
	// --no-direct: no peer-to-peer channels (chat and listen use them)
	noDirect bool
	// --verbose: also the details people need only to debug: contacts'
	// network addresses, why a peer-to-peer attempt failed
	verbose bool
}

// register adds the global flags to fs. The defaults are g's current values,
// so registering them again on a command's FlagSet keeps what was parsed
// before the command name.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", g.server, "server `HOST:PORT`, or several, comma-separated (nodes of one service; default $NATTER_SERVER, then the server of the last login)")
	fs.StringVar(&g.home, "home", g.home, "home `DIR` for the session token, pinned certificate, device ID, keys and message history (default $NATTER_HOME, then the user config folder)")
	fs.StringVar(&g.ca, "ca", g.ca, "trust the server certificate(s) in PEM `FILE` instead of pinning on first use")
	fs.BoolVar(&g.json, "json", g.json, "print machine-readable JSON")
	fs.BoolVar(&g.noDirect, "no-direct", g.noDirect, "never talk to contacts peer to peer (chat and listen do by default)")
	fs.BoolVar(&g.verbose, "verbose", g.verbose, "also print details for debugging: contacts' network addresses, why a peer-to-peer connection failed")
}

// usageError is a command line natter cannot make sense of: exit status 2.
type usageError struct {
	cmd *command // nil for errors before the command name
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd *command, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// newFlagSet returns a quiet FlagSet: natter prints usage itself.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseInterspersed parses flags anywhere among the arguments (natter send
// bob hi --json) and returns the positional arguments in order. Everything
// after "--" is positional, so natter send bob -- -5 degrees works.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// isHelp reports whether err is the flag package's answer to -h or --help.
func isHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }
