package natsbus

import (
	"context"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natterim/natter/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// sharedURL is the NATS server with JetStream that the tests share;
// NATTER_TEST_NATS overrides it.
func sharedURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("NATTER_TEST_NATS")
	if u == "" {
		u = "nats://127.0.0.1:4222"
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("NATTER_TEST_NATS %q: %v", u, err)
	}
	c, err := net.DialTimeout("tcp", pu.Host, 2*time.Second)
	if err != nil {
		testenv.Unavailable(t, "no NATS server at %s (start nats-server -js): %v", u, err)
	}
	c.Close()
	return u
}

// space is one test's own subject prefix and bucket on a NATS server,
// deleted when the test ends.
type space struct {
	url    string
	prefix string
	bucket string
}

func newSpace(t testing.TB, url string) *space {
	t.Helper()
	r := randomHex(6)
	s := &space{url: url, prefix: "t" + r, bucket: "t_" + r}
	t.Cleanup(func() {
		nc, err := nats.Connect(s.url, nats.Timeout(2*time.Second))
		if err != nil {
			t.Logf("cleanup: connect: %v", err)
			return
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteKeyValue(ctx, s.bucket); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Logf("cleanup: delete bucket %s: %v", s.bucket, err)
		}
	})
	return s
}

// open opens a node in s, closed when the test ends. cfg's URL, prefix
// and bucket are s's.
func (s *space) open(t testing.TB, cfg Config) *Node {
	t.Helper()
	cfg.URLs, cfg.Prefix, cfg.Bucket = s.url, s.prefix, s.bucket
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}
