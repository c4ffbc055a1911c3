package auth

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestWorkersRunAtLowPriority checks, from inside a hashing job, that the
// worker's thread runs at nice HashNice while the test's own thread keeps
// its priority: the kernel must prefer routing to hashing.
func TestWorkersRunAtLowPriority(t *testing.T) {
	h := NewHasher(2, 4, Params{Time: 1, Memory: 64, Threads: 1})
	defer h.Close()
	for range 4 { // each job, whichever worker takes it
		var nice int
		var err error
		if rerr := h.run(t.Context(), func() { nice, err = threadNice() }); rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			t.Fatal(err)
		}
		if nice != HashNice {
			t.Fatalf("hashing thread runs at nice %d, want %d", nice, HashNice)
		}
	}
	if nice, err := threadNice(); err != nil || nice == HashNice {
		t.Fatalf("the caller's thread is at nice %d (%v): only the workers' threads may be lowered", nice, err)
	}
}

// threadNice reads the calling thread's nice value (field 19 of
// /proc/thread-self/stat, counted after the command name, which may hold
// spaces and is in parentheses).
func threadNice() (int, error) {
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return strconv.Atoi(fields[16]) // fields[0] is field 3 (state)
}
