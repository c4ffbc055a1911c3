package client_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMeasureFileRates measures a 200 MiB file's transfer through the
// server on this machine (no proxy, no drops). It runs only with
// NATTER_MEASURE=1: figures are for the operator, not a test's verdict.
func TestMeasureFileRates(t *testing.T) {
	if os.Getenv("NATTER_MEASURE") == "" {
		t.Skip("set NATTER_MEASURE=1 to measure")
	}
	const size = 200 << 20
	inst := startServer(t)
	alice := signup(t, inst, "alice", "a1")
	bob := signup(t, inst, "bob", "b1")
	befriend(t, alice, bob)
	src := filepath.Join(t.TempDir(), "big.bin")
	writeRandomFile(t, src, size)
	start := time.Now()
	res, _, err := alice.SendFile(t.Context(), "bob", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	up := time.Since(start)
	ev := bob.ev.message(res.ID)
	start = time.Now()
	if _, err := bob.FetchFile(t.Context(), ev.File, t.TempDir(), nil); err != nil {
		t.Fatal(err)
	}
	down := time.Since(start)
	t.Logf("200 MiB through the server: upload %.1f MiB/s (%v), download %.1f MiB/s (%v)",
		size/(1<<20)/up.Seconds(), up.Round(time.Millisecond), size/(1<<20)/down.Seconds(), down.Round(time.Millisecond))
}

// TestMeasureDirectFileRate measures a 200 MiB file's transfer over a
// peer-to-peer channel on loopback (sealing, the channel, the receiver's
// durable cache writes) and its assembly from the cache. NATTER_MEASURE=1.
func TestMeasureDirectFileRate(t *testing.T) {
	if os.Getenv("NATTER_MEASURE") == "" {
		t.Skip("set NATTER_MEASURE=1 to measure")
	}
	const size = 200 << 20
	inst := startServer(t)
	alice := signup(t, inst, "alice", "a1", withDirect(false))
	bob := signup(t, inst, "bob", "b1", withDirect(false), withCache(t.TempDir()))
	befriend(t, alice, bob)
	waitReach(t, alice, "bob")
	if _, _, err := alice.OpenDirect(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "big.bin")
	writeRandomFile(t, src, size)
	start := time.Now()
	res, _, err := alice.SendFile(t.Context(), "bob", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Since(start)
	ev := bob.ev.message(res.ID)
	start = time.Now()
	if _, err := bob.FetchFile(t.Context(), ev.File, t.TempDir(), nil); err != nil {
		t.Fatal(err)
	}
	assembled := time.Since(start)
	t.Logf("200 MiB peer to peer (%s): sent %.1f MiB/s (%v), assembled from the cache in %v",
		res.Path, size/(1<<20)/sent.Seconds(), sent.Round(time.Millisecond), assembled.Round(time.Millisecond))
}
