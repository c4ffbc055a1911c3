package test

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/natterim/natter/internal/servertest"
)

// metric reads one unlabelled metric (or the sum over its labels) from the
// server's /metrics.
func metric(t *testing.T, in *servertest.Instance, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + in.AdminAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || rest[0] != ' ' && rest[0] != '{' {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

func TestAdminEndpoints(t *testing.T) {
	in := servertest.Start(t)
	signup(t, in, "alice")
	resp, err := http.Get("http://" + in.AdminAddr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := metric(t, in, "natter_logins_total"); n < 1 {
		t.Fatalf("natter_logins_total = %v", n)
	}
	if n := metric(t, in, "natter_connections"); n < 1 {
		t.Fatalf("natter_connections = %v", n)
	}
}
