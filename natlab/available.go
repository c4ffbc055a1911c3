package natlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter/internal/testenv"
)

// ErrUnavailable is wrapped by Available's error: this machine cannot run
// the lab (not root, or iproute2 or iptables missing or not working).
var ErrUnavailable = errors.New("NAT lab unavailable")

// RequireEnv names an environment variable that turns SkipIfUnavailable's
// skip into a failure (so does CI=true: see internal/testenv). .ci/run sets
// it as root, so a broken CI machine cannot pass by skipping the lab.
const RequireEnv = testenv.RequireEnv

// Available returns nil if this machine can run the lab: root, iproute2 and
// iptables, checked by making a namespace with a NAT rule, a conntrack
// match and a bridge, then deleting it.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root (uid %d)", ErrUnavailable, os.Geteuid())
	}
	for _, tool := range []string{"ip", "iptables", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var ns string
	for try := 0; ; try++ {
		ns = labID(os.Getpid()) + "chk" // a parallel check may hold one name
		_, err := run(ctx, "", "ip", "netns", "add", ns)
		if err == nil {
			break
		}
		if try == 5 {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	defer deleteNamespaces(context.Background(), []string{ns})
	rules := "*nat\n-A POSTROUTING -o lo -j MASQUERADE --random-fully\nCOMMIT\n" +
		"*mangle\n-A PREROUTING -i lo -m conntrack --ctstate NEW -j DROP\nCOMMIT\n"
	if _, err := run(ctx, rules, "ip", "netns", "exec", ns, "iptables-restore"); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if _, err := run(ctx, "", "ip", "-n", ns, "link", "add", "br0", "type", "bridge"); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// SkipIfUnavailable skips the test with the reason when Available fails,
// or fails it instead in CI (NATLAB_REQUIRE set, or CI=true): it calls
// testenv.Unavailable, so a package whose TestMain runs testenv.Main
// reports the skip even without go test -v.
func SkipIfUnavailable(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		testenv.Unavailable(t, "NAT lab needs root, iproute2 and iptables: %v", err)
	}
}

// run runs a command with stdin, returning its standard output, or an
// error with the command line and its standard error.
func run(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		line := strings.Join(append([]string{name}, args...), " ")
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return stdout.String(), fmt.Errorf("%s: %w: %s", line, err, msg)
		}
		return stdout.String(), fmt.Errorf("%s: %w", line, err)
	}
	return stdout.String(), nil
}
