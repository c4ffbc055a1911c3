package client_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

func withCache(dir string) func(*client.Options) {
	return func(o *client.Options) { o.ChunkCache = dir }
}

// TestDirectFileResumesAfterDrop sends a 200 MiB file over a peer-to-peer
// channel and cuts the channel halfway: the transfer goes on over the next
// channel from the chunks in flight, natterd stores none of it, and the
// file assembled from the receiving device's cache is byte for byte the
// one sent.
func TestDirectFileResumesAfterDrop(t *testing.T) {
	size := int64(200 << 20)
	if testing.Short() {
		size = 8 << 20
	}
	nChunks := int((size + wire.ChunkSize - 1) / wire.ChunkSize)
	inst := startServer(t)
	alice := signup(t, inst, "alice", "alice-1", withDirect(false))
	cache := t.TempDir()
	bob := signup(t, inst, "bob", "bob-1", withDirect(false), withCache(cache))
	befriend(t, alice, bob)
	waitReach(t, alice, "bob")
	if _, _, err := alice.OpenDirect(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "film.mkv")
	writeRandomFile(t, src, size)

	var once sync.Once
	cut := make(chan bool, 1)
	start := time.Now()
	res, info, err := alice.SendFile(t.Context(), "bob", src, func(done, total int64) {
		if done >= total/2 {
			once.Do(func() { cut <- client.CutDirect(bob.Client, "alice") })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if !<-cut {
		t.Fatal("there was no channel to cut: the test proves nothing")
	}
	pushed, uploaded, _, _ := client.FileStatsOf(alice.Client)
	_, _, received, dups := client.FileStatsOf(bob.Client)
	t.Logf("200 MiB peer to peer with a cut halfway: %.1f MiB/s (%v); %d chunks, %d pushed (%d again), %d received (%d already held), %d through the server",
		float64(size)/(1<<20)/took.Seconds(), took.Round(time.Millisecond), nChunks, pushed, pushed-nChunks, received, dups, uploaded)
	if uploaded != 0 || pushed < nChunks || pushed-nChunks > 8 {
		t.Errorf("pushed %d chunks of %d and uploaded %d: want every chunk pushed, at most the window in flight again, none through the server", pushed, nChunks, uploaded)
	}
	if n := metricValue(t, inst, "natter_chunks_stored_total"); n != 0 {
		t.Errorf("natterd stored %v chunks of a file sent peer to peer", n)
	}
	ev := bob.ev.message(res.ID)
	if ev.File == nil || ev.File.SHA256 != info.SHA256 {
		t.Fatalf("bob's message: %+v", ev)
	}
	start = time.Now()
	got, err := bob.FetchFile(t.Context(), ev.File, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("assembled from the cache in %v", time.Since(start).Round(time.Millisecond))
	if !sameFile(t, src, got) {
		t.Fatal("the received file differs from the one sent")
	}
	if left, _ := os.ReadDir(cache); len(left) != 0 {
		t.Errorf("the cache still holds %d entries after the file was assembled", len(left))
	}
}

// TestDirectFileRefusedGoesThroughServer: a device that keeps no chunk
// cache refuses the offer, and the file goes through natterd instead,
// even though a channel is up.
func TestDirectFileRefusedGoesThroughServer(t *testing.T) {
	inst := startServer(t)
	alice := signup(t, inst, "alice", "alice-1", withDirect(false))
	bob := signup(t, inst, "bob", "bob-1", withDirect(false)) // no ChunkCache
	befriend(t, alice, bob)
	waitReach(t, alice, "bob")
	if _, _, err := alice.OpenDirect(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "notes.txt")
	writeRandomFile(t, src, 3*wire.ChunkSize+5)
	res, _, err := alice.SendFile(t.Context(), "bob", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pushed, uploaded, _, _ := client.FileStatsOf(alice.Client); pushed != 0 || uploaded != 4 {
		t.Fatalf("pushed %d, uploaded %d: want 0 and 4", pushed, uploaded)
	}
	if res.Path != client.PathServer {
		t.Errorf("the file's message went %s, want server (it names chunks natterd holds)", res.Path)
	}
	ev := bob.ev.message(res.ID)
	got, err := bob.FetchFile(t.Context(), ev.File, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sameFile(t, src, got) {
		t.Fatal("the received file differs from the one sent")
	}
}

// TestDirectFileOtherDevice: a file sent peer to peer reaches the device
// it was sent to; the user's other device sees the message and gets a
// clear error when it asks natterd for the chunks.
func TestDirectFileOtherDevice(t *testing.T) {
	inst := startServer(t)
	alice := signup(t, inst, "alice", "alice-1", withDirect(false))
	bob := signup(t, inst, "bob", "bob-1", withDirect(false), withCache(t.TempDir()))
	bob2, _ := login(t, inst, "bob", "bob-2")
	befriend(t, alice, bob)
	waitReach(t, alice, "bob")
	if _, _, err := alice.OpenDirect(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "small.bin")
	writeRandomFile(t, src, 1000)
	res, _, err := alice.SendFile(t.Context(), "bob", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != client.PathDirect {
		t.Errorf("the file's message went %s, want direct", res.Path)
	}
	ev := bob.ev.message(res.ID)
	if got, err := bob.FetchFile(t.Context(), ev.File, t.TempDir(), nil); err != nil || !sameFile(t, src, got) {
		t.Fatalf("bob-1 fetch: %v", err)
	}
	ev2 := bob2.ev.message(res.ID)
	if ev2.File == nil {
		t.Fatalf("bob-2 got %+v", ev2)
	}
	_, err = bob2.FetchFile(t.Context(), ev2.File, t.TempDir(), nil)
	if err == nil {
		t.Fatal("bob-2 fetched a file natterd never held")
	}
	t.Logf("bob-2: %v", err)
}
