package blobs_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/natterim/natter/internal/blobs"
)

func open(t *testing.T) (*blobs.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "blobs")
	s, err := blobs.Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, dir
}

// files lists every regular file under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPutGet(t *testing.T) {
	s, dir := open(t)
	ctx := t.Context()
	tests := []struct {
		name string
		data []byte
	}{
		{"Empty", nil},
		{"Small", []byte("hello \x00\xff")},
		{"Chunk", bytes.Repeat([]byte{0xab}, 256<<10+16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := blobs.Sum(tt.data)
			if ok, err := s.Has(h); err != nil || ok {
				t.Fatalf("Has before Put = %v, %v", ok, err)
			}
			if _, err := s.Get(ctx, h); !errors.Is(err, blobs.ErrNotFound) {
				t.Fatalf("Get before Put: %v, want ErrNotFound", err)
			}
			for range 2 { // the second Put is a no-op
				if err := s.Put(ctx, h, tt.data); err != nil {
					t.Fatalf("Put: %v", err)
				}
			}
			got, err := s.Get(ctx, h)
			if err != nil || !bytes.Equal(got, tt.data) {
				t.Fatalf("Get = %d bytes, %v; want the %d put", len(got), err, len(tt.data))
			}
			if n, err := s.Size(h); err != nil || n != int64(len(tt.data)) {
				t.Fatalf("Size = %d, %v", n, err)
			}
			want := filepath.Join(dir, h[:2], h[2:4], h)
			if _, err := os.Stat(want); err != nil {
				t.Fatalf("blob not at %s: %v", want, err)
			}
			if err := s.Delete(h); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if err := s.Delete(h); err != nil {
				t.Fatalf("Delete of a missing blob: %v", err)
			}
			if ok, err := s.Has(h); err != nil || ok {
				t.Fatalf("Has after Delete = %v, %v", ok, err)
			}
		})
	}
	if left := files(t, dir); len(left) != 0 {
		t.Fatalf("files left: %q", left)
	}
}

func TestBadInput(t *testing.T) {
	s, dir := open(t)
	ctx := t.Context()
	data := []byte("data")
	good := blobs.Sum(data)
	tests := []struct {
		name string
		hash string
		data []byte
		want error
	}{
		{"Mismatch", blobs.Sum([]byte("other")), data, blobs.ErrHashMismatch},
		{"Upper", strings.ToUpper(good), data, blobs.ErrInvalidHash},
		{"Short", good[:63], data, blobs.ErrInvalidHash},
		{"Long", good + "0", data, blobs.ErrInvalidHash},
		{"Empty", "", data, blobs.ErrInvalidHash},
		{"Path", "../" + good[3:], data, blobs.ErrInvalidHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Put(ctx, tt.hash, tt.data); !errors.Is(err, tt.want) {
				t.Fatalf("Put: %v, want %v", err, tt.want)
			}
			if tt.want == blobs.ErrInvalidHash {
				if _, err := s.Get(ctx, tt.hash); !errors.Is(err, tt.want) {
					t.Fatalf("Get: %v, want %v", err, tt.want)
				}
				if err := s.Delete(tt.hash); !errors.Is(err, tt.want) {
					t.Fatalf("Delete: %v, want %v", err, tt.want)
				}
			}
		})
	}
	if left := files(t, dir); len(left) != 0 {
		t.Fatalf("files left: %q", left)
	}
}

// TestCorrupt: a blob changed on disk is not handed out.
func TestCorrupt(t *testing.T) {
	s, dir := open(t)
	data := []byte("original")
	h := blobs.Sum(data)
	if err := s.Put(t.Context(), h, data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, h[:2], h[2:4], h), []byte("0riginal"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), h); !errors.Is(err, blobs.ErrCorrupt) {
		t.Fatalf("Get of a damaged blob: %v, want ErrCorrupt", err)
	}
}

// TestConcurrentPuts: many writers of the same blobs leave one file each.
func TestConcurrentPuts(t *testing.T) {
	s, dir := open(t)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			data := []byte{byte(i % 4)}
			if err := s.Put(t.Context(), blobs.Sum(data), data); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := files(t, dir); len(got) != 4 {
		t.Fatalf("%d files, want 4: %q", len(got), got)
	}
}

// TestOpenRemovesLeftovers: temporary files a crash left are gone after
// Open; blobs stay.
func TestOpenRemovesLeftovers(t *testing.T) {
	s, dir := open(t)
	data := []byte("kept")
	h := blobs.Sum(data)
	if err := s.Put(t.Context(), h, data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", h+".partial"), []byte("ke"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := blobs.Open(dir); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(h[:2], h[2:4], h)
	if got := files(t, dir); len(got) != 1 || got[0] != want {
		t.Fatalf("files after Open: %q, want only %s", got, want)
	}
}

// TestModes: whatever the umask, the store's folders are 0700 and its
// blobs 0600, so that no other local user can read them (natterd's data
// folder is private too, see internal/server).
func TestModes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		umask int
	}{
		{"umask 022", 0o022},
		{"umask 000", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := syscall.Umask(tc.umask) // not parallel: the umask is the process's
			defer syscall.Umask(prev)
			s, dir := open(t)
			data := []byte("a chunk")
			if err := s.Put(t.Context(), blobs.Sum(data), data); err != nil {
				t.Fatal(err)
			}
			n := 0
			err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				fi, err := d.Info()
				if err != nil {
					return err
				}
				want := fs.FileMode(0o600)
				if d.IsDir() {
					want = 0o700
				}
				if got := fi.Mode().Perm(); got != want {
					t.Errorf("%s is %#o, want %#o", p, got, want)
				}
				n++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != 5 { // blobs, tmp, ab, ab/cd, the blob
				t.Errorf("%d entries, want 5", n)
			}
		})
	}
}
