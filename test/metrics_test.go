package test

import (
	"net/http"
	"testing"

	"github.com/natterim/natter/internal/servertest"
)

// metric reads a metric from the server (summed over its labels).
func metric(t *testing.T, in *servertest.Instance, name string) float64 {
	t.Helper()
	return in.Metric(t, name)
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
