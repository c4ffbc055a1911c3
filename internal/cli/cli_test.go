package cli

import (
	"context"
	"flag"
	"reflect"
	"strings"
	"testing"

	"github.com/natterim/natter/wire"
)

// run runs natter in-process with env as its whole environment.
func run(t *testing.T, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["NATTER_HOME"]; !ok {
		env["NATTER_HOME"] = t.TempDir()
	}
	code = Run(context.Background(), args, Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb}, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"no command", nil, nil, ExitUsage, "", "Usage: natter"},
		{"help", nil, []string{"help"}, ExitOK, "send USER TEXT", ""},
		{"--help", nil, []string{"--help"}, ExitOK, "Global flags", ""},
		{"-h", nil, []string{"-h"}, ExitOK, "Usage: natter", ""},
		{"help send", nil, []string{"help", "send"}, ExitOK, "usage: natter send [flags] USER TEXT", ""},
		{"send --help", nil, []string{"send", "--help"}, ExitOK, "--wait", ""},
		{"help unknown", nil, []string{"help", "frobnicate"}, ExitUsage, "", "unknown command"},
		{"unknown command", nil, []string{"frobnicate"}, ExitUsage, "", `unknown command "frobnicate"`},
		{"unknown flag", nil, []string{"--frob", "contacts"}, ExitUsage, "", "flag provided but not defined"},
		{"unknown command flag", nil, []string{"contacts", "--frob"}, ExitUsage, "", "usage: natter contacts"},
		{"missing argument", nil, []string{"send", "bob"}, ExitUsage, "", "usage: natter send [flags] USER TEXT"},
		{"too many arguments", nil, []string{"login", "alice", "bob"}, ExitUsage, "", "too many arguments"},
		{"bad status", nil, []string{"status", "sleeping"}, ExitUsage, "", "not a status"},
		{"empty message", nil, []string{"send", "bob", " "}, ExitUsage, "", "empty"},
		{"bad --only", nil, []string{"listen", "--only", "gossip"}, ExitUsage, "", "unknown event type"},
		{"invalid user name", nil, []string{"signup", "Bob"}, ExitError, "", "invalid user name"},
		{"invalid peer", nil, []string{"add", "x"}, ExitError, "", "3 to 32 characters"},
		{"not logged in", nil, []string{"contacts"}, ExitError, "", "not logged in: run natter login USER"},
		{"not logged in json", nil, []string{"contacts", "--json"}, ExitError, `"code":"not_logged_in"`, "not logged in"},
		{"no server", map[string]string{"NATTER_PASSWORD": "pw"}, []string{"login", "alice"}, ExitError, "", "--server HOST:PORT"},
		{"no password", map[string]string{"NATTER_SERVER": "127.0.0.1:1"}, []string{"login", "alice"}, ExitError, "", "NATTER_PASSWORD"},
		{"history not logged in", nil, []string{"history", "bob"}, ExitError, "", "not logged in: run natter login USER"},
		{"search not logged in", nil, []string{"search", "hello"}, ExitError, "", "not logged in"},
		{"history bad limit", nil, []string{"history", "bob", "--limit", "0"}, ExitUsage, "", "--limit must be at least 1"},
		{"history invalid user", nil, []string{"history", "B"}, ExitError, "", "invalid user name"},
		{"search nothing", nil, []string{"search"}, ExitUsage, "", "usage: natter search"},
		{"unreachable", map[string]string{"NATTER_SERVER": "127.0.0.1:1", "NATTER_PASSWORD": "pw"}, []string{"login", "alice"}, ExitError, "", "cannot connect to 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.env, "", tt.args...)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("natter %q: exit %d, want %d\nstdout: %s\nstderr: %s\nwant stdout ~ %q, stderr ~ %q",
					tt.args, code, tt.code, out, errOut, tt.stdout, tt.stderr)
			}
		})
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args []string
		pos  []string
		json bool
		wait string
	}{
		{[]string{"bob", "hi"}, []string{"bob", "hi"}, false, "2s"},
		{[]string{"--json", "bob", "hi"}, []string{"bob", "hi"}, true, "2s"},
		{[]string{"bob", "hi", "--json"}, []string{"bob", "hi"}, true, "2s"},
		{[]string{"bob", "--wait=5s", "hi", "there"}, []string{"bob", "hi", "there"}, false, "5s"},
		{[]string{"bob", "--", "-5", "--json"}, []string{"bob", "-5", "--json"}, false, "2s"},
	}
	for _, tt := range tests {
		var g globals
		var o cmdOpts
		fs := newFlagSet("send")
		g.register(fs)
		sendFlags(fs, &o)
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(pos, tt.pos) || g.json != tt.json || o.wait.String() != tt.wait {
			t.Errorf("%q: pos %q json %v wait %v; want %q %v %v", tt.args, pos, g.json, o.wait, tt.pos, tt.json, tt.wait)
		}
	}
}

func TestGlobalFlagsBeforeAndAfter(t *testing.T) {
	var g globals
	top := newFlagSet("natter")
	g.register(top)
	if err := top.Parse([]string{"--server", "a:1", "send", "bob"}); err != nil {
		t.Fatal(err)
	}
	fs := newFlagSet("send")
	g.register(fs) // must keep --server from before the command
	if _, err := parseInterspersed(fs, []string{"bob", "--json"}); err != nil {
		t.Fatal(err)
	}
	if g.server != "a:1" || !g.json {
		t.Errorf("globals = %+v", g)
	}
	if err := fs.Parse([]string{"-h"}); !isHelp(err) {
		t.Errorf("-h: %v", err)
	}
	_ = flag.ErrHelp
}

func TestPasswordSources(t *testing.T) {
	r := &runner{stdio: Stdio{In: strings.NewReader("s3cret pass\nrest\n")}, getenv: func(string) string { return "fromenv" }}
	if pw, err := r.password(true, false); err != nil || pw != "s3cret pass" {
		t.Errorf("--password-stdin: %q, %v", pw, err)
	}
	if pw, err := r.password(false, true); err != nil || pw != "fromenv" {
		t.Errorf("NATTER_PASSWORD: %q, %v", pw, err)
	}
	r = &runner{stdio: Stdio{In: strings.NewReader("")}, getenv: func(string) string { return "" }}
	if _, err := r.password(true, false); err == nil {
		t.Error("empty stdin gave a password")
	}
	if _, err := r.password(false, false); err != errNoPassword {
		t.Errorf("no source: %v, want errNoPassword", err)
	}
}

func TestServerMessages(t *testing.T) {
	tests := []struct {
		code wire.Code
		want string
	}{
		{wire.CodeBadCredentials, "wrong user name or password"},
		{wire.CodeNotContact, "bob is not your contact"},
		{wire.CodeNoRequest, "bob has not asked"},
		{wire.CodeSessionExpired, "natter login USER"},
		{wire.CodeUserExists, "bob is taken"},
		{wire.CodeNoSuchUser, "there is no user bob"},
	}
	for _, tt := range tests {
		err := serverErr(&wire.Err{Code: tt.code, Message: "x"}, "bob")
		msg, code := describe(err)
		if !strings.Contains(msg, tt.want) || code != string(tt.code) {
			t.Errorf("%s: %q (%s), want ~%q", tt.code, msg, code, tt.want)
		}
	}
}
