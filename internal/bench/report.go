package bench

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Result is what a run measured. It marshals to the JSON that
// natter-bench --json prints.
type Result struct {
	Config ResultConfig `json:"config"`
	Setup  SetupResult  `json:"setup"`

	WindowSeconds float64 `json:"window_seconds,omitempty"`
	Interrupted   bool    `json:"interrupted,omitempty"` // the window was cut short
	// MachineCPU is the CPU time all processes of the machine used per
	// second of the window (CPUs of them available): with the server's and
	// the bench's own, it tells whether something else competed.
	MachineCPU   float64 `json:"machine_cpu_in_window,omitempty"`
	CPUs         int     `json:"cpus,omitempty"`
	DrainSeconds float64 `json:"drain_seconds,omitempty"`

	Sends struct {
		Acked         uint64  `json:"acked"`           // whole run
		AckedInWindow uint64  `json:"acked_in_window"` // acks that arrived in the window
		AckedPerSec   float64 `json:"acked_per_sec"`
		Errors        uint64  `json:"errors"`
		Unfinished    uint64  `json:"unfinished"` // still waiting when the drain ended
		Skipped       uint64  `json:"skipped"`    // rate mode: every user picked had Inflight sends waiting
	} `json:"sends"`
	Deliveries struct {
		Delivered uint64  `json:"delivered"` // messages of this run received, whole run
		InWindow  uint64  `json:"in_window"`
		PerSec    float64 `json:"per_sec"`
		Offline   uint64  `json:"offline"` // came from the store (after a reconnect, Sync, gap fill)
		Missing   uint64  `json:"missing"` // acknowledged but not received by the end of the drain
		Stale     uint64  `json:"stale"`   // messages of earlier runs (left in inboxes)
		Foreign   uint64  `json:"foreign"` // messages that are not the bench's
		// Unopened messages could not be opened (their keys are gone):
		// counted here and as errors, not as deliveries.
		Unopened uint64 `json:"unopened,omitempty"`
	} `json:"deliveries"`
	DeliveryLatency Latency `json:"delivery_latency"` // for messages sent in the window
	// Timeline is the window second by second (Config.Timeline).
	Timeline   []TimelineSec `json:"timeline,omitempty"`
	AckLatency Latency       `json:"ack_latency"` // for sends started in the window

	Connections struct {
		Disconnects   uint64 `json:"disconnects"`
		Reconnects    uint64 `json:"reconnects"`
		SessionsEnded uint64 `json:"sessions_ended"`
	} `json:"connections"`
	Errors []ErrorCount `json:"errors,omitempty"`

	Server ProcResult `json:"server"`
	// Bench is natter-bench's own figures; with --procs, every process's
	// CPU together (Parts has each).
	Bench ProcResult `json:"bench"`
	// With --procs: the parent process, and each part.
	Parent *ProcResult  `json:"parent,omitempty"`
	Parts  []PartResult `json:"parts,omitempty"`
}

// ResultConfig echoes the parameters of the run.
type ResultConfig struct {
	Addr     string   `json:"addr"`
	Users    int      `json:"users"`
	Contacts int      `json:"contacts"`
	Rate     float64  `json:"rate"`
	Inflight int      `json:"inflight"`
	Duration float64  `json:"duration_seconds"`
	Warmup   float64  `json:"warmup_seconds"`
	Size     int      `json:"size"`
	Receipts bool     `json:"receipts,omitempty"`
	Sources  []string `json:"sources,omitempty"`
	Idle     bool     `json:"idle,omitempty"`
	Hold     float64  `json:"hold_seconds,omitempty"`
	Prefix   string   `json:"prefix"`
	Procs    int      `json:"procs,omitempty"`
}

func resultConfig(c *Config) ResultConfig {
	rc := ResultConfig{Addr: c.Addr, Users: c.Users, Contacts: c.Contacts, Rate: c.Rate, Inflight: c.Inflight,
		Duration: c.Duration.Seconds(), Warmup: c.Warmup.Seconds(), Size: c.Size, Receipts: c.Receipts,
		Idle: c.Idle, Prefix: c.Prefix, Procs: c.Procs}
	if c.Idle {
		rc.Hold = c.Hold.Seconds()
	}
	for _, s := range c.Sources {
		rc.Sources = append(rc.Sources, s.String())
	}
	return rc
}

// SetupResult is what the setup did.
type SetupResult struct {
	Resumed         int64   `json:"resumed"`
	LoggedIn        int64   `json:"logged_in"`
	SignedUp        int64   `json:"signed_up"`
	Failed          int64   `json:"failed"`
	Retries         int64   `json:"retries"`
	ConnectSeconds  float64 `json:"connect_seconds"`
	ContactAdds     int64   `json:"contact_adds"`
	ContactErrors   int64   `json:"contact_errors"`
	ContactsMissing int64   `json:"contacts_missing"` // expected contacts not approved after setup
	ContactsSeconds float64 `json:"contacts_seconds"`
	// What the server spent on the logins (with Config.ServerPID or
	// Admin), per user connected: storage bytes written and CPU time.
	ServerBytesPerLogin float64 `json:"server_write_bytes_per_login,omitempty"`
	ServerCPUPerLogin   float64 `json:"server_cpu_ms_per_login,omitempty"`
}

// perLogin fills the server's cost per login from its figures before and
// after the connections.
func (s *SetupResult) perLogin(a, b *Stats) {
	n := s.Resumed + s.LoggedIn + s.SignedUp
	if a == nil || b == nil || n == 0 {
		return
	}
	if b.DiskWriteBytes > 0 {
		s.ServerBytesPerLogin = float64(b.DiskWriteBytes-a.DiskWriteBytes) / float64(n)
	}
	if b.CPUSeconds > 0 {
		s.ServerCPUPerLogin = (b.CPUSeconds - a.CPUSeconds) / float64(n) * 1e3
	}
}

// Latency summarises a Histogram, in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func latencyOf(h *Histogram) Latency {
	return Latency{Count: h.Count(), Mean: ms(h.Mean()), P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)),
		P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)), Max: ms(h.Max())}
}

// ProcResult is a process's figures: snapshots before connecting, once
// connected (for idle runs, after the hold) and after the run, and what
// follows from them.
type ProcResult struct {
	Before    *Stats `json:"before,omitempty"`
	Connected *Stats `json:"connected,omitempty"`
	After     *Stats `json:"after,omitempty"`
	// CPUInWindow is CPU time per second of the window (1.0 = one core).
	CPUInWindow float64 `json:"cpu_in_window,omitempty"`
	// Storage writes and write system calls (files and sockets) during the window, per
	// message acknowledged in it.
	DiskBytesPerMsg float64 `json:"disk_write_bytes_per_msg,omitempty"`
	// CPUPerMsg is CPU time in the window per message delivered in it,
	// in microseconds.
	CPUPerMsg           float64 `json:"cpu_us_per_delivered_msg,omitempty"`
	WriteSyscallsPerMsg float64 `json:"write_syscalls_per_msg,omitempty"`
	// Idle runs, per connection: (Connected − Before) / users connected.
	RSSPerConn       float64 `json:"rss_per_conn_bytes,omitempty"`
	HeapPerConn      float64 `json:"heap_inuse_per_conn_bytes,omitempty"`
	StackPerConn     float64 `json:"stack_inuse_per_conn_bytes,omitempty"`
	GoroutinePerConn float64 `json:"goroutines_per_conn,omitempty"`
	// Store is what the server's store did in the window (from its
	// natter_store_* histograms; server only).
	Store *StoreWindow `json:"store,omitempty"`
}

func (p *ProcResult) perConnection(n int64) {
	if p.Before == nil || p.Connected == nil || n <= 0 {
		return
	}
	f := float64(n)
	if p.Before.RSS > 0 && p.Connected.RSS > 0 {
		p.RSSPerConn = float64(p.Connected.RSS-p.Before.RSS) / f
	}
	if p.Before.HeapInuse > 0 && p.Connected.HeapInuse > 0 {
		p.HeapPerConn = float64(p.Connected.HeapInuse-p.Before.HeapInuse) / f
	}
	if p.Before.StackInuse > 0 && p.Connected.StackInuse > 0 {
		p.StackPerConn = float64(p.Connected.StackInuse-p.Before.StackInuse) / f
	}
	if p.Connected.Goroutines > 0 {
		p.GoroutinePerConn = float64(p.Connected.Goroutines-p.Before.Goroutines) / f
	}
}

func (res *Result) perConnection() {
	if !res.Config.Idle {
		return // setup and sending leave garbage: only idle runs say something
	}
	n := res.Setup.Resumed + res.Setup.LoggedIn + res.Setup.SignedUp
	res.Server.perConnection(n)
	res.Bench.perConnection(n)
}

// ErrorCount counts one kind of error, with the text of its first one.
type ErrorCount struct {
	Kind    string `json:"kind"`
	Count   uint64 `json:"count"`
	Example string `json:"example"`
}

func sortErrors(es []ErrorCount) {
	slices.SortFunc(es, func(a, b ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Kind, b.Kind))
	})
}

// WriteText writes the human summary of res to w.
func (res *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	c := &res.Config
	fmt.Fprintf(&b, "natter-bench against %s: %d users, %d contacts each", c.Addr, c.Users, c.Contacts)
	if c.Procs > 1 {
		fmt.Fprintf(&b, ", in %d processes", c.Procs)
	}
	if len(c.Sources) > 0 {
		fmt.Fprintf(&b, ", from %s", strings.Join(c.Sources, ","))
	}
	b.WriteString("\n")
	s := &res.Setup
	n := s.Resumed + s.LoggedIn + s.SignedUp
	fmt.Fprintf(&b, "setup:      %d connected in %.1fs, %.0f/s (%d resumed, %d logged in, %d signed up, %d failed, %d retries)\n",
		n, s.ConnectSeconds, float64(n)/max(s.ConnectSeconds, 1e-9), s.Resumed, s.LoggedIn, s.SignedUp, s.Failed, s.Retries)
	if s.ServerBytesPerLogin > 0 || s.ServerCPUPerLogin > 0 {
		fmt.Fprintf(&b, "%-11s server per login: %.1f KiB written to storage, %.2f ms CPU\n", "", s.ServerBytesPerLogin/1024, s.ServerCPUPerLogin)
	}
	if c.Contacts > 0 {
		fmt.Fprintf(&b, "contacts:   %d adds, %d errors, %d missing, in %.1fs\n",
			s.ContactAdds, s.ContactErrors, s.ContactsMissing, s.ContactsSeconds)
	}
	if !c.Idle {
		rate := "as fast as acks allow"
		if c.Rate > 0 {
			rate = fmt.Sprintf("%.0f msgs/s offered", c.Rate)
		}
		cut := ""
		if res.Interrupted {
			cut = " (interrupted)"
		}
		fmt.Fprintf(&b, "load:       %s, %d in flight per user, %d-byte bodies, %.1fs window%s after %.1fs warm-up (drain %.1fs)\n",
			rate, c.Inflight, c.Size, res.WindowSeconds, cut, c.Warmup, res.DrainSeconds)
		fmt.Fprintf(&b, "sends:      %.0f acked/s (%d acked in all, %d errors, %d unfinished, %d skipped)\n",
			res.Sends.AckedPerSec, res.Sends.Acked, res.Sends.Errors, res.Sends.Unfinished, res.Sends.Skipped)
		d := &res.Deliveries
		fmt.Fprintf(&b, "deliveries: %.0f msgs/s (%d in all, %d missing, %d from the store, %d from earlier runs",
			d.PerSec, d.Delivered, d.Missing, d.Offline, d.Stale)
		if d.Unopened > 0 {
			fmt.Fprintf(&b, ", %d that did not open", d.Unopened)
		}
		b.WriteString(")\n")
		writeLatency(&b, "delivery", &res.DeliveryLatency)
		writeLatency(&b, "send-ack", &res.AckLatency)
	} else {
		fmt.Fprintf(&b, "idle:       held %.1fs\n", c.Hold)
	}
	cn := &res.Connections
	if cn.Disconnects+cn.Reconnects+cn.SessionsEnded > 0 {
		fmt.Fprintf(&b, "conns:      %d drops, %d reconnects, %d sessions ended\n", cn.Disconnects, cn.Reconnects, cn.SessionsEnded)
	}
	writeProc(&b, "server", &res.Server)
	writeProc(&b, "bench", &res.Bench)
	if len(res.Parts) > 0 {
		if res.Parent != nil {
			fmt.Fprintf(&b, "%-11s parent: CPU %.2f cores\n", "", res.Parent.CPUInWindow)
		}
		for _, p := range res.Parts {
			fmt.Fprintf(&b, "%-11s part %d (pid %d, %d users): CPU %.2f cores, RSS %.1f MiB connected, %d acked and %d delivered in the window\n", "",
				p.Part, p.Pid, p.Users, p.CPUInWindow, float64(p.RSS)/(1<<20), p.Acked, p.Delivered)
		}
	}
	if res.MachineCPU > 0 {
		other := res.MachineCPU - res.Bench.CPUInWindow - res.Server.CPUInWindow
		fmt.Fprintf(&b, "machine:    CPU %.2f of %d cores busy in the window", res.MachineCPU, res.CPUs)
		if res.Server.CPUInWindow > 0 {
			fmt.Fprintf(&b, ", %.2f of them by other processes", max(other, 0))
		}
		b.WriteString("\n")
	}
	writeTimeline(&b, res.Timeline)
	for _, e := range res.Errors {
		fmt.Fprintf(&b, "error:      %d × %s (e.g. %s)\n", e.Count, e.Kind, e.Example)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeLatency(b *strings.Builder, what string, l *Latency) {
	fmt.Fprintf(b, "%-11s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, n=%d)\n", what+":",
		fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.P999), fmtMS(l.Max), fmtMS(l.Mean), l.Count)
}

func fmtMS(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

func writeProc(b *strings.Builder, what string, p *ProcResult) {
	if p.Before == nil && p.Connected == nil && p.After == nil {
		return
	}
	fmt.Fprintf(b, "%-11s RSS %s before, %s connected, %s after", what+":",
		fmtBytes(p.Before, func(s *Stats) int64 { return s.RSS }),
		fmtBytes(p.Connected, func(s *Stats) int64 { return s.RSS }),
		fmtBytes(p.After, func(s *Stats) int64 { return s.RSS }))
	if p.Connected != nil && p.Connected.HeapInuse > 0 {
		fmt.Fprintf(b, "; heap+stacks in use %s before, %s connected",
			fmtBytes(p.Before, func(s *Stats) int64 { return s.HeapInuse + s.StackInuse }),
			fmtBytes(p.Connected, func(s *Stats) int64 { return s.HeapInuse + s.StackInuse }))
	}
	if p.CPUInWindow > 0 {
		fmt.Fprintf(b, "; CPU %.2f cores", p.CPUInWindow)
	}
	b.WriteString("\n")
	if p.CPUPerMsg > 0 {
		fmt.Fprintf(b, "%-11s per message delivered: %.0f µs CPU\n", "", p.CPUPerMsg)
	}
	if p.DiskBytesPerMsg > 0 || p.WriteSyscallsPerMsg > 0 {
		fmt.Fprintf(b, "%-11s per message acked: %.1f KiB written to storage, %.1f write system calls (files and sockets)\n", "",
			p.DiskBytesPerMsg/1024, p.WriteSyscallsPerMsg)
	} else if what == "server" && p.CPUInWindow > 0 {
		fmt.Fprintf(b, "%-11s (give --server-pid for the disk bytes written per message)\n", "")
	}
	if p.Store != nil && p.Store.Batches > 0 {
		fmt.Fprintf(b, "%-11s store: %s\n", "", p.Store.text())
	}
	if p.RSSPerConn != 0 || p.HeapPerConn != 0 {
		fmt.Fprintf(b, "%-11s per connection: RSS %.1f KiB, heap in use %.1f KiB, stacks %.1f KiB, %.1f goroutines\n", "",
			p.RSSPerConn/1024, p.HeapPerConn/1024, p.StackPerConn/1024, p.GoroutinePerConn)
	}
}

func fmtBytes(s *Stats, f func(*Stats) int64) string {
	if s == nil || f(s) == 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(f(s))/(1<<20))
}
