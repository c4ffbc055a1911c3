package natlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Namespace names are "nl" + the creating process's pid in base 36 + "-" +
// two random base-36 characters (the lab) + a role: "inet" (the public
// segment), "srv" (the server host), "r0", "r1", ... (routers) and "h" +
// host name. At most 2+5+1+2+5 = 15 characters, like an interface name.
// The pid lets Sweep tell leftovers of dead runs from labs in use.
const nsPrefix = "nl"

var nsNameRE = regexp.MustCompile(`^nl([0-9a-z]{1,5})-([0-9a-z]{2})([a-z0-9]{1,5})$`)

// labID returns a fresh lab prefix for this process, like "nl1x3-k7".
func labID(pid int) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	var b [2]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s%s-%c%c", nsPrefix, strconv.FormatInt(int64(pid), 36),
		digits[int(b[0])%len(digits)], digits[int(b[1])%len(digits)])
}

// stalePID reports whether ns is a natlab namespace and, if so, whether the
// process that made it is gone.
func stalePID(ns string) (natlab, stale bool) {
	m := nsNameRE.FindStringSubmatch(ns)
	if m == nil {
		return false, false
	}
	pid, err := strconv.ParseInt(m[1], 36, 64)
	if err != nil || pid <= 0 || pid > 1<<31-1 {
		return false, false
	}
	if err := syscall.Kill(int(pid), 0); errors.Is(err, syscall.ESRCH) {
		return true, true
	}
	return true, zombie(int(pid))
}

// zombie reports whether process pid has exited but not been reaped: a
// test binary killed under a parent that does not wait for it (or under a
// PID 1 that reaps nothing) still answers kill(pid, 0).
func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) state ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	return stat[i+2] == 'Z' || stat[i+2] == 'X'
}

// listNamespaces returns the names of the named network namespaces.
func listNamespaces(ctx context.Context) ([]string, error) {
	out, err := run(ctx, "", "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// Sweep deletes the network namespaces natlab made in processes that are
// gone (a test binary killed before its cleanup ran), killing whatever
// still runs inside them first, and returns their names. Labs of live
// processes, parallel test runs included, are left alone. New calls it.
func Sweep(ctx context.Context) ([]string, error) {
	names, err := listNamespaces(ctx)
	if err != nil {
		return nil, fmt.Errorf("natlab sweep: %w", err)
	}
	var stale []string
	for _, ns := range names {
		if ok, dead := stalePID(ns); ok && dead {
			stale = append(stale, ns)
		}
	}
	if len(stale) == 0 {
		return nil, nil
	}
	if err := deleteNamespaces(ctx, stale); err != nil {
		return stale, fmt.Errorf("natlab sweep: %w", err)
	}
	return stale, nil
}

// deleteNamespaces kills the processes inside each namespace and deletes
// them all, going on past errors.
func deleteNamespaces(ctx context.Context, names []string) error {
	existing, err := listNamespaces(ctx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, ns := range existing {
		have[ns] = true
	}
	names = slices.DeleteFunc(slices.Clone(names), func(ns string) bool { return !have[ns] })
	if len(names) == 0 {
		return nil
	}
	var errs []error
	for _, ns := range names {
		errs = append(errs, killInside(ctx, ns))
	}
	var batch strings.Builder
	for _, ns := range names {
		fmt.Fprintf(&batch, "netns delete %s\n", ns)
	}
	if _, err := run(ctx, batch.String(), "ip", "-force", "-batch", "-"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killInside sends SIGKILL to every process in namespace ns. A process
// left there would keep the namespace alive after its name is deleted.
func killInside(ctx context.Context, ns string) error {
	out, err := run(ctx, "", "ip", "netns", "pids", ns)
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill %d in %s: %w", pid, ns, err)
		}
	}
	return nil
}
