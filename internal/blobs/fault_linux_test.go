package blobs_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/blobs"
	"github.com/natterim/natter/internal/testenv"
)

// TestDiskFull fills a real (small tmpfs) file system with blobs: the Put
// that does not fit returns an error wrapping natter.ErrStoreUnavailable and
// leaves no file, every blob stored before is intact, and Puts work again
// once there is room. Mounting needs root; without it the test skips, or
// fails in CI (testenv.Unavailable).
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "mounting a tmpfs for a real full disk needs root")
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=2m"); err != nil {
		testenv.Unavailable(t, "cannot mount a tmpfs for a real full disk (no CAP_SYS_ADMIN?): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	dir := filepath.Join(mnt, "blobs")
	s, err := blobs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	chunk := func(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%07d", i)), 300<<10/7) }
	var stored []string
	var full error
	for i := 0; i < 100 && full == nil; i++ {
		data := chunk(i)
		h := blobs.Sum(data)
		if full = s.Put(ctx, h, data); full == nil {
			stored = append(stored, h)
		} else if ok, err := s.Has(h); err != nil || ok {
			t.Fatalf("a refused Put left its blob: Has = %v, %v", ok, err)
		}
	}
	if !errors.Is(full, natter.ErrStoreUnavailable) {
		t.Fatalf("Put on a full disk: %v, want an error wrapping ErrStoreUnavailable", full)
	}
	if len(stored) == 0 {
		t.Fatal("nothing fit on a 2 MiB disk")
	}
	t.Logf("%d blobs fit; then: %v", len(stored), full)
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	for i, h := range stored {
		if got, err := s.Get(ctx, h); err != nil || !bytes.Equal(got, chunk(i)) {
			t.Fatalf("blob %d after the disk filled: %v", i, err)
		}
	}
	// Room again.
	if err := s.Delete(stored[0]); err != nil {
		t.Fatal(err)
	}
	data := []byte("small")
	if err := s.Put(ctx, blobs.Sum(data), data); err != nil {
		t.Fatalf("Put after freeing room: %v", err)
	}
}
