package natlab

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/natterim/natter/internal/testenv"
)

func TestStalePID(t *testing.T) {
	self := strconv.FormatInt(int64(os.Getpid()), 36)
	dead := strconv.FormatInt(1<<22+1, 36) // above any pid_max
	for _, c := range []struct {
		ns            string
		natlab, stale bool
	}{
		{"nl" + self + "-k7inet", true, false},
		{"nl" + dead + "-k7inet", true, true},
		{"nl" + dead + "-k7hab", true, true},
		{"nl" + dead + "-k7", false, false},       // no role
		{"nl" + dead + "-k7habcde", false, false}, // role too long
		{"docker-ns", false, false},
		{"nl-k7inet", false, false},
	} {
		natlab, stale := stalePID(c.ns)
		if natlab != c.natlab || stale != c.stale {
			t.Errorf("stalePID(%q) = %v, %v; want %v, %v", c.ns, natlab, stale, c.natlab, c.stale)
		}
	}
	if id := labID(os.Getpid()); len(id)+5 > 15 || !nsNameRE.MatchString(id+"inet") {
		t.Errorf("labID = %q", id)
	}
}

func TestZombie(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		testenv.Unavailable(t, "cannot start a child process: %v", err)
	}
	defer cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for !zombie(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("an exited, unreaped child is not seen as a zombie")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if zombie(os.Getpid()) {
		t.Error("this process is seen as a zombie")
	}
}
