package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stats is a snapshot of a process: the server or the bench itself. Zero
// means unknown.
type Stats struct {
	RSS         int64   `json:"rss_bytes,omitempty"`
	HeapInuse   int64   `json:"heap_inuse_bytes,omitempty"`
	StackInuse  int64   `json:"stack_inuse_bytes,omitempty"` // goroutine stacks (not in HeapInuse)
	NextGC      int64   `json:"next_gc_bytes,omitempty"`     // the heap goal: about twice the heap live at the last GC
	Goroutines  int64   `json:"goroutines,omitempty"`
	CPUSeconds  float64 `json:"cpu_seconds,omitempty"` // user + system since start
	Connections int64   `json:"connections,omitempty"` // server: natter_connections
	Sessions    int64   `json:"sessions,omitempty"`    // server: natter_sessions
	// From /proc/PID/io (server with ServerPID, and the bench): bytes the
	// process caused to be written to storage, and write system calls.
	DiskWriteBytes int64 `json:"disk_write_bytes,omitempty"`
	WriteSyscalls  int64 `json:"write_syscalls,omitempty"`
	// Hists are the server's store histograms (storeHists) by series.
	Hists map[string]*PromHist `json:"-"`
}

// serverStats reads the server's figures from /proc (Config.ServerPID) and
// its /metrics (Config.Admin), whichever are given. Failures are logged
// and leave fields zero.
func (r *runner) serverStats(ctx context.Context) *Stats {
	if r.cfg.ServerPID == 0 && r.cfg.Admin == "" {
		return nil
	}
	s := &Stats{}
	if r.cfg.Admin != "" {
		if err := scrapeMetrics(ctx, r.cfg.Admin, s); err != nil {
			r.log.Warn("cannot read the server's metrics", "err", err)
		}
	}
	if pid := r.cfg.ServerPID; pid != 0 {
		if rss, err := procRSS(strconv.Itoa(pid)); err != nil {
			r.log.Warn("cannot read the server's RSS", "err", err)
		} else {
			s.RSS = rss
		}
		if cpu, err := procCPU(strconv.Itoa(pid)); err == nil {
			s.CPUSeconds = cpu
		}
		s.DiskWriteBytes, s.WriteSyscalls, _ = procIO(strconv.Itoa(pid))
	}
	return s
}

// benchStats returns this process's figures; with gc, after a collection,
// so that the heap holds only what is live.
func benchStats(gc bool) *Stats {
	if gc {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := &Stats{HeapInuse: int64(ms.HeapInuse), StackInuse: int64(ms.StackInuse), NextGC: int64(ms.NextGC),
		Goroutines: int64(runtime.NumGoroutine())}
	s.RSS, _ = procRSS("self")
	s.DiskWriteBytes, s.WriteSyscalls, _ = procIO("self")
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.CPUSeconds = tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
	}
	return s
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// procRSS returns VmRSS from /proc/PID/status, in bytes.
func procRSS(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%s/status", pid)
}

// procIO returns write_bytes and syscw from /proc/PID/io (readable for
// one's own processes).
func procIO(pid string) (writeBytes, writeCalls int64, err error) {
	b, err := os.ReadFile("/proc/" + pid + "/io")
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "write_bytes":
			writeBytes = n
		case "syscw":
			writeCalls = n
		}
	}
	return writeBytes, writeCalls, nil
}

// machineCPU returns the CPU time, in seconds, that all CPUs of the machine
// spent busy (neither idle nor waiting for I/O) since boot, from /proc/stat.
func machineCPU() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, errors.New("malformed /proc/stat")
	}
	var busy float64
	for i, v := range f[1:] {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, errors.New("malformed /proc/stat")
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already counted in user.
		if i != 3 && i != 4 && i < 8 {
			busy += n
		}
	}
	return busy / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// procCPU returns the user and system CPU time of a process, in seconds.
func procCPU(pid string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields start
	// after its closing parenthesis, with the state (field 3).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%s/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc/%s/stat", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64) // field 14, utime
	st, err2 := strconv.ParseFloat(f[12], 64) // field 15, stime
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc/%s/stat", pid)
	}
	return (ut + st) / clockTicks, nil
}

// scrapeMetrics reads the figures it knows from a Prometheus text page at
// http://addr/metrics.
func scrapeMetrics(ctx context.Context, addr string, s *Stats) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return err
	}
	req.Close = true // a few scrapes per run: keep no idle connection behind
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body, s)
}

// parseMetrics fills s from the Prometheus text format. Series with labels
// are summed by name.
func parseMetrics(r io.Reader, s *Stats) error {
	sums := map[string]float64{}
	hists := map[string]*PromHist{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		labels := ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			name, labels, rest = line[:i], line[i+1:j], strings.TrimSpace(line[j+1:])
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sums[name] += v
		addHistLine(hists, name, labels, v)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if v, ok := sums["process_resident_memory_bytes"]; ok {
		s.RSS = int64(v)
	}
	if v, ok := sums["process_cpu_seconds_total"]; ok {
		s.CPUSeconds = v
	}
	s.HeapInuse = int64(sums["go_memstats_heap_inuse_bytes"])
	s.StackInuse = int64(sums["go_memstats_stack_inuse_bytes"])
	s.NextGC = int64(sums["go_memstats_next_gc_bytes"])
	s.Goroutines = int64(sums["go_goroutines"])
	s.Connections = int64(sums["natter_connections"])
	s.Sessions = int64(sums["natter_sessions"])
	if len(hists) > 0 {
		s.Hists = hists
	}
	return nil
}

// window fills p's figures for the measurement window from the snapshots at
// its edges.
func (p *ProcResult) window(a, b *Stats, secs float64, acked, delivered uint64) {
	p.CPUInWindow = cpuShare(a, b, secs)
	p.Store = storeWindow(a, b)
	if delivered > 0 && p.CPUInWindow > 0 {
		p.CPUPerMsg = p.CPUInWindow * secs / float64(delivered) * 1e6
	}
	if a == nil || b == nil || acked == 0 {
		return
	}
	if b.DiskWriteBytes > 0 {
		p.DiskBytesPerMsg = float64(b.DiskWriteBytes-a.DiskWriteBytes) / float64(acked)
	}
	if b.WriteSyscalls > 0 {
		p.WriteSyscallsPerMsg = float64(b.WriteSyscalls-a.WriteSyscalls) / float64(acked)
	}
}

// cpuShare returns the CPU used between two snapshots per second of wall
// time (1.0 = one core busy), or 0 if unknown.
func cpuShare(a, b *Stats, secs float64) float64 {
	if a == nil || b == nil || secs <= 0 || b.CPUSeconds == 0 {
		return 0
	}
	return (b.CPUSeconds - a.CPUSeconds) / secs
}
