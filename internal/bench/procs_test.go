package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/servertest"
)

// asMainEnv makes the test binary run natter-bench's Main instead of the
// tests: TestProcs starts it as the parts of a --procs run.
const asMainEnv = "NATTER_BENCH_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(Main(testContext(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestParsePart(t *testing.T) {
	for _, tt := range []struct {
		in   string
		k, n int
		ok   bool
	}{
		{"0/1", 0, 1, true}, {"2/3", 2, 3, true}, {"3/3", 0, 0, false}, {"-1/3", 0, 0, false},
		{"1", 0, 0, false}, {"a/b", 0, 0, false}, {"0/0", 0, 0, false},
	} {
		k, n, err := parsePart(tt.in)
		if (err == nil) != tt.ok || k != tt.k || n != tt.n {
			t.Errorf("parsePart(%q) = %d, %d, %v", tt.in, k, n, err)
		}
	}
}

// TestProcs runs natter-bench --procs 3 (the parts are this test binary)
// against a real server, twice: the first run signs the users up, the
// second resumes them with the tokens and keys the parts reported, which
// the parent saved. Every message crosses processes (a user's contacts
// are its neighbours, and the users are split in three ranges), so the
// run ID is shared and the window common.
func TestProcs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	inst := servertest.Start(t)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, inst.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state.json")
	t.Setenv(asMainEnv, "1") // for the parts only: this process has started
	args := []string{"--server", inst.Addr, "--ca", ca, "--admin", inst.AdminAddr, "--state", state,
		"--users", "12", "--contacts", "4", "--rate", "150", "--warmup", "300ms", "--duration", "1500ms",
		"--drain", "5s", "--procs", "3", "--password", "bench password", "--json", "--timeline", "--log-level", "warn"}
	for i, want := range []string{"signed_up", "resumed"} {
		var out, errb bytes.Buffer
		code := Main(t.Context(), args, strings.NewReader(""), &out, &errb)
		if code != 0 {
			t.Fatalf("run %d: exit %d\n%s", i, code, errb.String())
		}
		var res Result
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out.String())
		}
		t.Logf("run %d: %s", i, out.String())
		got := map[string]int64{"signed_up": res.Setup.SignedUp, "resumed": res.Setup.Resumed}
		if got[want] != 12 || res.Setup.Failed != 0 || res.Setup.ContactsMissing != 0 {
			t.Errorf("run %d: setup %+v, want 12 %s, none failed or missing", i, res.Setup, want)
		}
		if len(res.Parts) != 3 || res.Parts[0].Users+res.Parts[1].Users+res.Parts[2].Users != 12 {
			t.Errorf("run %d: parts %+v, want 3 sharing 12 users", i, res.Parts)
		}
		var sumAcked uint64
		for _, p := range res.Parts {
			sumAcked += p.Acked
		}
		if res.Sends.AckedInWindow == 0 || sumAcked != res.Sends.AckedInWindow {
			t.Errorf("run %d: %d acked in the window, parts' sum %d", i, res.Sends.AckedInWindow, sumAcked)
		}
		if res.Deliveries.Missing != 0 || res.Deliveries.Stale != 0 || res.Sends.Errors != 0 || len(res.Errors) != 0 {
			t.Errorf("run %d: deliveries %+v, send errors %d, errors %+v: want every message delivered, none stale", i,
				res.Deliveries, res.Sends.Errors, res.Errors)
		}
		if l := res.DeliveryLatency; l.Count != res.Deliveries.InWindow && l.Count == 0 {
			t.Errorf("run %d: delivery latency over %d messages", i, l.Count)
		}
		if res.Server.CPUInWindow <= 0 || res.Bench.CPUInWindow <= 0 {
			t.Errorf("run %d: CPU server %v, bench %v: want both measured", i, res.Server.CPUInWindow, res.Bench.CPUInWindow)
		}
		var tl uint64
		for _, s := range res.Timeline {
			tl += s.Delivered
		}
		if tl != res.DeliveryLatency.Count {
			t.Errorf("run %d: the timeline counts %d deliveries, the histogram %d", i, tl, res.DeliveryLatency.Count)
		}
	}
	// The state holds every user's token and keys.
	st, err := loadState(state)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		u := natter.UserID(userName(defaultPrefix, i))
		if st.Tokens[u] == "" || st.Keys[u] == nil {
			t.Errorf("state lacks the token or keys of %s", u)
		}
	}
}

// TestProcsIdle runs natter-bench --idle --procs 2 (the parts are this
// test binary): both parts' users are connected when the parent reads the
// server's figures, which then count every connection.
func TestProcsIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	inst := servertest.Start(t)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, inst.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(asMainEnv, "1")
	args := []string{"--server", inst.Addr, "--ca", ca, "--admin", inst.AdminAddr, "--state", filepath.Join(dir, "state.json"),
		"--users", "10", "--contacts", "0", "--idle", "--hold", "500ms", "--procs", "2",
		"--password", "bench password", "--json", "--log-level", "warn"}
	var out, errb bytes.Buffer
	if code := Main(t.Context(), args, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.Setup.SignedUp != 10 || len(res.Parts) != 2 {
		t.Fatalf("setup %+v, %d parts; want 10 signed up by 2", res.Setup, len(res.Parts))
	}
	c := res.Server.Connected
	if c == nil || c.Connections != 10 {
		t.Fatalf("server figures at the measurement: %+v, want 10 connections", c)
	}
	if res.Server.RSSPerConn == 0 || res.Server.GoroutinePerConn == 0 {
		t.Errorf("per connection: %+v, want RSS and goroutines", res.Server)
	}
}

// testContext is the context of the test binary run as natter-bench: it
// ends at an interrupt, as natter-bench's main's does.
func testContext() context.Context {
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt)
	return ctx
}
