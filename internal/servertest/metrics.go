package servertest

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Metric returns a metric from the server's /metrics: the sum over all its
// label sets, or with labels (e.g. `path="direct"`) that one series. A
// metric that is not there reads as 0.
func (in *Instance) Metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + in.AdminAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	return ParseMetric(string(page), name, labels...)
}

// ParseMetric finds a metric in a Prometheus text page, as Metric does.
func ParseMetric(page, name string, labels ...string) float64 {
	want := ""
	if len(labels) > 0 {
		want = name + "{" + strings.Join(labels, ",") + "}"
	}
	var sum float64
	for _, line := range strings.Split(page, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if want != "" && f[0] != want || want == "" && f[0] != name && !strings.HasPrefix(f[0], name+"{") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			sum += v
		}
	}
	return sum
}
