package disk

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestChunkDir(t *testing.T) {
	d := ChunkDir{Dir: filepath.Join(t.TempDir(), "chunks")}
	if err := d.Room(1); err != nil {
		t.Fatalf("Room: %v", err)
	}
	if d.Has("h1") {
		t.Fatal("empty folder has h1")
	}
	if err := d.Put("h1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if b, ok := d.Get("h1"); !ok || string(b) != "one" || !d.Has("h1") {
		t.Fatalf("Get = %q, %v", b, ok)
	}
	d.Delete("h1")
	if _, ok := d.Get("h1"); ok {
		t.Fatal("h1 still there after Delete")
	}

	// Sweep: old chunks and stale temporary files go, the rest stays.
	now := time.Now()
	for name, age := range map[string]time.Duration{
		"fresh": time.Hour, "old": 31 * 24 * time.Hour,
		".tmp-fresh-1": time.Minute, ".tmp-stale-1": 2 * time.Hour,
	} {
		p := filepath.Join(d.Dir, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	d.Sweep(now)
	ents, _ := os.ReadDir(d.Dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if want := []string{".tmp-fresh-1", "fresh"}; !slices.Equal(left, want) {
		t.Errorf("after Sweep: %v, want %v", left, want)
	}
}

func TestSpool(t *testing.T) {
	s := Spool{Dir: filepath.Join(t.TempDir(), "spool")}
	files, errs := s.Load(func([]byte) { t.Error("a line from no folder") })
	if files != nil || errs != nil {
		t.Fatalf("Load of no folder = %v, %v", files, errs)
	}
	if err := s.Save([]byte("a\nb\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Save([]byte("c\n")); err != nil {
		t.Fatal(err)
	}
	// Neither hidden nor foreign files are read.
	os.WriteFile(filepath.Join(s.Dir, ".tmp-x.jsonl"), []byte("hidden\n"), 0o600)
	os.WriteFile(filepath.Join(s.Dir, "notes.txt"), []byte("foreign\n"), 0o600)

	var lines []string
	files, errs = s.Load(func(l []byte) { lines = append(lines, string(l)) })
	slices.Sort(lines)
	if len(files) != 2 || errs != nil || !slices.Equal(lines, []string{"a", "b", "c"}) {
		t.Fatalf("Load = %v, %v, lines %q", files, errs, lines)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v", f, fi.Mode(), err)
		}
	}
	s.Remove(files)
	files, _ = s.Load(func([]byte) {})
	if len(files) != 0 {
		t.Errorf("after Remove: %v", files)
	}
}
