package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter/internal/servertest"
)

func TestPeersOf(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{2, 1}, {5, 4}, {20, 4}, {20, 5}, {7, 6}, {8, 7}, {1000, 10}} {
		t.Run(fmt.Sprintf("n=%d,k=%d", tc.n, tc.k), func(t *testing.T) {
			edges := map[[2]int32]int{}
			for i := range tc.n {
				ps := peersOf(i, tc.n, tc.k)
				if len(ps) != tc.k {
					t.Fatalf("user %d has %d contacts, want %d", i, len(ps), tc.k)
				}
				seen := map[int32]bool{}
				for _, p := range ps {
					if p == int32(i) || seen[p] || p < 0 || int(p) >= tc.n {
						t.Fatalf("user %d: bad contact list %v", i, ps)
					}
					seen[p] = true
					edges[[2]int32{min(int32(i), p), max(int32(i), p)}]++
				}
			}
			// Symmetric: every edge is listed by both ends.
			for e, n := range edges {
				if n != 2 {
					t.Fatalf("edge %v listed %d times, want 2", e, n)
				}
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	ok := Config{Addr: "x:1", Users: 10, Contacts: 2, Duration: time.Second, Password: "12345678"}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"too many contacts", func(c *Config) { c.Contacts = 10 }, "more than"},
		{"odd contacts, odd users", func(c *Config) { c.Users, c.Contacts = 9, 3 }, "even number of users"},
		{"no contacts", func(c *Config) { c.Contacts = 0 }, "need contacts"},
		{"idle without contacts", func(c *Config) { c.Contacts, c.Idle, c.Duration = 0, true, 0 }, ""},
		{"bad prefix", func(c *Config) { c.Prefix = "Bad" }, "prefix"},
		{"short password", func(c *Config) { c.Password = "short" }, "password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.check()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("check() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseSources(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"127.0.0.1", []string{"127.0.0.1"}, false},
		{"127.0.0.1, 127.0.0.2", []string{"127.0.0.1", "127.0.0.2"}, false},
		{"127.0.0.1-127.0.0.3,::1", []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"}, false},
		{"127.0.0.3-127.0.0.1", nil, true},
		{"localhost", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseSources(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSources(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		var gs []string
		for _, a := range got {
			gs = append(gs, a.String())
		}
		if !slices.Equal(gs, tt.want) {
			t.Errorf("ParseSources(%q) = %v, want %v", tt.in, gs, tt.want)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	page := `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
go_memstats_heap_inuse_bytes 1.2345e+06
go_memstats_next_gc_bytes 4.194304e+06
go_memstats_stack_inuse_bytes 65536
natter_connections{transport="tcp"} 10
natter_connections{transport="ws"} 2
natter_sessions 11
process_cpu_seconds_total 3.5
process_resident_memory_bytes 2.097152e+07
`
	var s Stats
	if err := parseMetrics(strings.NewReader(page), &s); err != nil {
		t.Fatal(err)
	}
	want := Stats{RSS: 20971520, HeapInuse: 1234500, StackInuse: 65536, NextGC: 4194304, Goroutines: 42, CPUSeconds: 3.5, Connections: 12, Sessions: 11}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("parseMetrics = %+v, want %+v", s, want)
	}
}

func TestBody(t *testing.T) {
	r := &runner{cfg: Config{Size: 100}}
	newRunID(&r.run)
	at := time.Unix(1700000000, 123456789)
	b := r.makeBody(at)
	if len(b) != 100 {
		t.Fatalf("body is %d bytes, want 100", len(b))
	}
	if sent, ok, old := r.parseBody(b); !ok || old || sent != at.UnixNano() {
		t.Errorf("parseBody = %d, %v, %v; want %d, true, false", sent, ok, old, at.UnixNano())
	}
	other := &runner{cfg: r.cfg}
	newRunID(&other.run)
	if _, ok, old := other.parseBody(b); !ok || !old {
		t.Errorf("another run's body: ok %v old %v, want true, true", ok, old)
	}
	if _, ok, _ := r.parseBody([]byte("hello, not a bench message")); ok {
		t.Error("a foreign body parsed as the bench's")
	}
}

// TestRun runs the whole thing, small, against a real server: a load run
// that signs users up, a second that resumes them from the state file, and
// an idle run. Figures are printed, not asserted: only that messages went
// through and that the summary says so.
func TestRun(t *testing.T) {
	inst := servertest.Start(t)
	state := filepath.Join(t.TempDir(), "state.json")
	base := Config{
		Addr: inst.Addr, TLS: inst.ClientTLS(), Users: 20, Contacts: 4,
		Duration: 1500 * time.Millisecond, Warmup: 300 * time.Millisecond, Drain: 5 * time.Second,
		Password: "bench password", StateFile: state, Admin: inst.AdminAddr,
		ServerPID: os.Getpid(), // the server runs in this process: exercises /proc
		Sources:   []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")},
		Logger:    servertest.Logger(t),
	}
	// The server starts its listeners' goroutines in the background: count
	// only once it answers, so that they are in the baseline.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := hc.Get("http://" + inst.AdminAddr + "/healthz"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	time.Sleep(100 * time.Millisecond)
	goroutines := runtime.NumGoroutine()

	t.Run("closed loop, sign up", func(t *testing.T) {
		res := runOK(t, base)
		if res.Setup.SignedUp != 20 || res.Setup.ContactAdds != 80 || res.Setup.ContactsMissing != 0 {
			t.Errorf("setup %+v, want 20 sign-ups and 80 contact adds, nothing missing", res.Setup)
		}
	})
	t.Run("rate, resume", func(t *testing.T) {
		cfg := base
		cfg.Rate, cfg.Inflight, cfg.Size = 400, 2, 200
		changes := metricValue(t, inst.AdminAddr, "natter_key_changes_total")
		res := runOK(t, cfg)
		if res.Setup.Resumed != 20 || res.Setup.ContactAdds != 0 {
			t.Errorf("setup %+v, want 20 resumed and no contact adds", res.Setup)
		}
		// The devices' keys came from the state file: the resumes
		// published none (the first run published each device's once).
		if n := metricValue(t, inst.AdminAddr, "natter_key_changes_total") - changes; n != 0 {
			t.Errorf("%v key changes announced during a run that resumed every user with its saved keys, want 0", n)
		}
		if res.Sends.Acked > 400*2 { // 1.8 s at 400/s
			t.Errorf("%d sends acked at 400/s over 1.8s: the pacer overshoots", res.Sends.Acked)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		cfg := base
		cfg.Duration = time.Minute
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		// Interrupt in the load window: 400 ms after it opens (the
		// warm-up's length varies: it waits for every user's first
		// acknowledgement).
		cfg.Logger = slog.New(onMessage{Handler: cfg.Logger.Handler(), msg: "measuring", once: new(sync.Once), f: func() {
			time.AfterFunc(400*time.Millisecond, cancel)
		}})
		res, err := Run(ctx, cfg)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if !res.Interrupted || res.WindowSeconds <= 0 || res.WindowSeconds > 5 {
			t.Errorf("interrupted %v, window %.1fs: want a shortened window", res.Interrupted, res.WindowSeconds)
		}
		if res.Sends.Acked == 0 || res.Deliveries.Missing != 0 || res.Sends.Errors != 0 {
			t.Errorf("sends %+v, deliveries %+v: want messages through, none missing, no errors", res.Sends, res.Deliveries)
		}
	})
	t.Run("idle", func(t *testing.T) {
		cfg := base
		cfg.Idle, cfg.Hold = true, 100*time.Millisecond
		res, out := run(t, cfg)
		if res.Setup.Resumed != 20 || res.Setup.Failed != 0 {
			t.Errorf("setup %+v, want 20 resumed", res.Setup)
		}
		if res.Server.Connected == nil || res.Server.Connected.Sessions < 20 {
			t.Errorf("server stats once connected %+v, want at least 20 sessions", res.Server.Connected)
		}
		for _, want := range []string{"idle:", "per connection:"} {
			if !strings.Contains(out, want) {
				t.Errorf("summary lacks %q:\n%s", want, out)
			}
		}
	})

	// Every Client and its goroutines are gone (the server's too, once
	// it saw the connections close).
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after the runs, %d before:\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
	}
}

// metricValue returns the value of an unlabelled metric on the admin
// listener's /metrics.
func metricValue(t *testing.T, admin, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s on /metrics", name)
	return 0
}

// run runs cfg and returns the result and its summary, checking that the
// summary survives a JSON round trip.
func run(t *testing.T, cfg Config) (*Result, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var out bytes.Buffer
	if err := res.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("summary:\n%s", out.String())
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back.Sends.Acked != res.Sends.Acked {
		t.Errorf("JSON round trip: %v, acked %d, want %d", err, back.Sends.Acked, res.Sends.Acked)
	}
	return res, out.String()
}

// runOK runs a load and checks that messages went through, none were lost,
// and the summary shows latencies.
func runOK(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, out := run(t, cfg)
	if res.Sends.Acked == 0 || res.Sends.AckedInWindow == 0 || res.Deliveries.InWindow == 0 {
		t.Errorf("sends %+v, deliveries %+v: want messages through in the window", res.Sends, res.Deliveries)
	}
	if res.Deliveries.Missing != 0 || res.Sends.Errors != 0 || len(res.Errors) != 0 {
		t.Errorf("missing %d, send errors %d, errors %+v: want none", res.Deliveries.Missing, res.Sends.Errors, res.Errors)
	}
	if l := res.DeliveryLatency; l.Count == 0 || !(l.P50 > 0 && l.P50 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("delivery latency %+v: want 0 < p50 <= p99 <= p99.9 <= max", l)
	}
	for _, re := range []string{`sends: +\d+ acked/s`, `deliveries: \d+ msgs/s`, `delivery: +p50 [\d.]+ms .*p99 [\d.]+ms +p99\.9 [\d.]+ms`,
		`send-ack: +p50`, `server: +RSS [\d.]+ MiB before`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("summary does not match %s:\n%s", re, out)
		}
	}
	return res
}

// onMessage is a slog.Handler that calls f (once) when a record with
// message msg passes.
type onMessage struct {
	slog.Handler
	msg  string
	f    func()
	once *sync.Once
}

// Enabled is true for every level: the record is wanted whatever the
// wrapped handler prints.
func (h onMessage) Enabled(context.Context, slog.Level) bool { return true }

func (h onMessage) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(h.f)
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h onMessage) WithAttrs(as []slog.Attr) slog.Handler {
	return onMessage{Handler: h.Handler.WithAttrs(as), msg: h.msg, f: h.f, once: h.once}
}

func (h onMessage) WithGroup(name string) slog.Handler {
	return onMessage{Handler: h.Handler.WithGroup(name), msg: h.msg, f: h.f, once: h.once}
}
