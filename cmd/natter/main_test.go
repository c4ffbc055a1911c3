package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/natterim/natter/internal/server"
)

// TestMain makes this test binary double as the natter and natterd
// commands: testscript puts them on the scripts' PATH.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"natter":  main,
		"natterd": func() { os.Exit(server.Main()) },
	})
}

// TestScripts runs the scripts in testdata/script: the real natter command
// against a real natterd on 127.0.0.1.
//
// Besides testscript's own commands, scripts have:
//
//	natterd-start [NAME]   start a natterd with data in $WORK/NAME (default
//	                       natterd); set NATTER_SERVER to its TLS address,
//	                       and NAME_ADDR and NAME_SHA256 (NAME upper-cased)
//	                       to its address and certificate fingerprint. It is
//	                       stopped with SIGTERM when the script ends; its log
//	                       is $WORK/NAME.log.
//	natterd-stop [NAME]    stop it now (SIGTERM) and check it exits cleanly.
//
// Every natterd a script starts must exit with status 0 when it is stopped
// (a data race found under -race makes it exit 66), and its log must hold
// no DATA RACE and no level=ERROR line, unless the script sets
// NATTERD_ERRORS_OK to a regular expression that the ERROR lines it
// expects match: the script fails otherwise, also when natterd is stopped
// at its end.
//
//	waitfor [-timeout D] PATTERN PROG [ARGS...]
//	                       run PROG until its stdout matches PATTERN (every
//	                       100ms, for up to D, default 15s): for things that
//	                       happen in another process, like a background
//	                       natter listen coming online.
//	samenumber FILE1 FILE2 both files show the same safety number.
//	capture NAME PATTERN   set $NAME to the first group of PATTERN (a
//	                       regexp, multi-line) in the last command's stdout:
//	                       for what a command prints and the next one
//	                       needs, like a history cursor.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"natterd-start": cmdNatterdStart,
			"natterd-stop":  cmdNatterdStop,
			"waitfor":       cmdWaitfor,
			"samenumber":    cmdSameNumber,
			"capture":       cmdCapture,
		},
		Setup: func(env *testscript.Env) error {
			env.Setenv("NATTER_HOME", env.WorkDir+"/home")
			// Under -race every process sleeps 1s at exit (to catch late
			// races); scripts run dozens of natter processes. Races are
			// still reported, and fail the command with exit status 66.
			if os.Getenv("GORACE") == "" {
				env.Setenv("GORACE", "atexit_sleep_ms=50")
			}
			env.Values[serversKey{}] = map[string]*natterd{}
			env.Values[tKey{}] = env.T()
			return nil
		},
	})
}

type serversKey struct{}

// tKey holds the script's testscript.T, to fail the script from a deferred
// stop (where ts.Fatalf cannot be used).
type tKey struct{}

// natterd is a server started by natterd-start.
type natterd struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	err    error         // how it exited; set before exited is closed
}

var (
	listeningRE   = regexp.MustCompile(`msg=listening kind=tls addr=(\S+)`)
	certificateRE = regexp.MustCompile(`msg=certificate .*sha256=([0-9a-fA-F:]+)`)
)

func cmdNatterdStart(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 {
		ts.Fatalf("usage: natterd-start [NAME]")
	}
	name := "natterd"
	if len(args) == 1 {
		name = args[0]
	}
	servers := ts.Value(serversKey{}).(map[string]*natterd)
	if servers[name] != nil {
		ts.Fatalf("natterd-start: %s is already running", name)
	}
	logf, err := os.Create(ts.MkAbs(name + ".log"))
	ts.Check(err)
	cmd := exec.Command("natterd", "--data", ts.MkAbs(name), "--listen", "127.0.0.1:0",
		"--http", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--udp", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	ts.Check(err)
	cmd.Stdout = logf
	ts.Check(cmd.Start())
	s := &natterd{cmd: cmd, exited: make(chan struct{})}
	servers[name] = s

	// Read the log: report the address and fingerprint once both are seen,
	// then keep draining it into the log file until the server exits.
	type ready struct{ addr, sha string }
	readyc := make(chan ready, 1)
	go func() {
		var r ready
		sent := false
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := listeningRE.FindStringSubmatch(line); m != nil && r.addr == "" {
				r.addr = m[1]
			}
			if m := certificateRE.FindStringSubmatch(line); m != nil && r.sha == "" {
				r.sha = strings.ToLower(strings.ReplaceAll(m[1], ":", ""))
			}
			if !sent && r.addr != "" && r.sha != "" {
				readyc <- r
				sent = true
			}
		}
		if !sent && r.addr != "" {
			readyc <- r // no certificate line: go on without it
		}
		s.err = cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	ts.Defer(func() {
		if servers[name] != s {
			return // stopped and checked by natterd-stop
		}
		if err := s.check(ts, name); err != nil {
			t := ts.Value(tKey{}).(testscript.T)
			t.Log(err)
			t.FailNow()
		}
	})

	var r ready
	select {
	case r = <-readyc:
	case <-s.exited:
		ts.Fatalf("natterd-start %s: natterd exited (%v) before listening; log:\n%s", name, s.err, ts.ReadFile(name+".log"))
	case <-time.After(20 * time.Second):
		ts.Fatalf("natterd-start %s: no 'msg=listening kind=tls' line within 20s; log:\n%s", name, ts.ReadFile(name+".log"))
	}
	if r.sha == "" {
		ts.Logf("natterd-start %s: the log has no 'msg=certificate sha256=' line", name)
	}
	upper := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	ts.Setenv("NATTER_SERVER", r.addr)
	ts.Setenv(upper+"_ADDR", r.addr)
	ts.Setenv(upper+"_SHA256", r.sha)
	ts.Logf("natterd-start %s: listening on %s, certificate sha256 %s", name, r.addr, r.sha)
}

// stop stops the server with SIGTERM (SIGKILL after 10s) and returns how it
// exited.
func (s *natterd) stop() error {
	select {
	case <-s.exited:
		return s.err
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.err
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return errors.New("did not stop within 10s of SIGTERM; killed")
	}
}

func cmdNatterdStop(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 {
		ts.Fatalf("usage: natterd-stop [NAME]")
	}
	name := "natterd"
	if len(args) == 1 {
		name = args[0]
	}
	servers := ts.Value(serversKey{}).(map[string]*natterd)
	s := servers[name]
	if s == nil {
		ts.Fatalf("natterd-stop: %s is not running", name)
	}
	delete(servers, name)
	if err := s.check(ts, name); err != nil {
		ts.Fatalf("%v", err)
	}
}

// raceRE finds what a race detector report in natterd's log starts with.
var raceRE = regexp.MustCompile(`(?m)^WARNING: DATA RACE`)

// check stops the server and reports whether it exited with status 0 and
// its log is free of races and unexpected errors.
func (s *natterd) check(ts *testscript.TestScript, name string) error {
	err := s.stop()
	log := ts.ReadFile(name + ".log")
	if err != nil {
		return fmt.Errorf("natterd %s: %v; log:\n%s", name, err, log)
	}
	if raceRE.MatchString(log) {
		return fmt.Errorf("natterd %s: data race; log:\n%s", name, log)
	}
	var ok *regexp.Regexp
	if p := ts.Getenv("NATTERD_ERRORS_OK"); p != "" {
		var rerr error
		if ok, rerr = regexp.Compile(p); rerr != nil {
			return fmt.Errorf("NATTERD_ERRORS_OK: %v", rerr)
		}
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=ERROR") && (ok == nil || !ok.MatchString(line)) {
			return fmt.Errorf("natterd %s logged an error: %s\n(log:\n%s)", name, line, log)
		}
	}
	return nil
}

func cmdWaitfor(ts *testscript.TestScript, neg bool, args []string) {
	timeout := 15 * time.Second
	if len(args) > 0 && args[0] == "-timeout" {
		if len(args) < 2 {
			ts.Fatalf("usage: waitfor [-timeout DURATION] PATTERN PROG [ARGS...]")
		}
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		timeout, args = d, args[2:]
	}
	if neg || len(args) < 2 {
		ts.Fatalf("usage: waitfor [-timeout DURATION] PATTERN PROG [ARGS...]")
	}
	re, err := regexp.Compile(args[0])
	ts.Check(err)
	deadline := time.Now().Add(timeout)
	for {
		err := ts.Exec(args[1], args[2:]...)
		if err == nil && re.MatchString(ts.ReadFile("stdout")) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfor: %q never matched the output of %s within %v (last error: %v)", args[0], args[1], timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var safetyNumberRE = regexp.MustCompile(`\d{5}( \d{5}){5}`)

// cmdSameNumber checks that two outputs of natter verify show the same
// safety number.
func cmdSameNumber(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: samenumber FILE1 FILE2")
	}
	a := safetyNumberRE.FindString(ts.ReadFile(args[0]))
	b := safetyNumberRE.FindString(ts.ReadFile(args[1]))
	if a == "" || b == "" {
		ts.Fatalf("no safety number in %s (%q) or %s (%q)", args[0], a, args[1], b)
	}
	if (a == b) == neg {
		ts.Fatalf("safety numbers %q and %q: same = %v", a, b, a == b)
	}
}

func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: capture NAME PATTERN")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("capture: %q does not match the last stdout, or has no group", args[1])
	}
	ts.Setenv(args[0], m[1])
}
