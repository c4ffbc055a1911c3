package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHashVerify(t *testing.T) {
	h := NewHasher(2, 8, Params{Time: 1, Memory: 1024, Threads: 1})
	defer h.Close()
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("encoding %q", enc)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"correct horse", true}, {"correct horsE", false}, {"", false}} {
		ok, err := h.Verify(ctx, enc, tc.pw)
		if err != nil || ok != tc.want {
			t.Errorf("Verify(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	if _, err := h.Verify(ctx, "$argon2id$garbage", "x"); !errors.Is(err, ErrMalformedHash) {
		t.Errorf("malformed: %v", err)
	}
}

func TestDefaultParamsMeetOWASP(t *testing.T) {
	// OWASP: argon2id with at least m=19456 KiB, t=2, p=1.
	if DefaultParams.Memory < 19456 || DefaultParams.Time < 2 || DefaultParams.Threads < 1 {
		t.Fatalf("DefaultParams %+v below OWASP minimum", DefaultParams)
	}
}

func TestHasherBusy(t *testing.T) {
	h := NewHasher(1, 1, Params{Time: 1, Memory: 1024, Threads: 1})
	defer h.Close()
	block := make(chan struct{})
	started := make(chan struct{})
	go h.run(context.Background(), func() { close(started); <-block })
	<-started
	// Fill the queue: pushes that fit return at their context's end; the
	// first that does not fit must fail at once with ErrBusy.
	var err error
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err = h.run(ctx, func() {})
		cancel()
		if errors.Is(err, ErrBusy) {
			break
		}
	}
	close(block)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("full queue: got %v, want ErrBusy", err)
	}
}

func TestThrottleGrows(t *testing.T) {
	th := NewThrottle()
	now := time.Unix(1000, 0)
	var prev time.Duration
	for i := range 12 {
		d := th.Fail("alice", now)
		if d < prev || d > th.Max {
			t.Fatalf("fail %d: back-off %v after %v", i, d, prev)
		}
		prev = d
	}
	if prev != th.Max {
		t.Fatalf("back-off should reach Max, got %v", prev)
	}
	if w := th.Wait("alice", now.Add(time.Second)); w <= 0 {
		t.Fatal("should wait")
	}
	if w := th.Wait("bob", now); w != 0 {
		t.Fatal("other key should not wait")
	}
	th.Succeed("alice")
	if w := th.Wait("alice", now); w != 0 {
		t.Fatal("success should clear")
	}
}

func TestToken(t *testing.T) {
	tok, h := NewToken()
	if len(tok) < 40 || string(HashToken(tok)) != string(h) {
		t.Fatalf("token %q", tok)
	}
	tok2, _ := NewToken()
	if tok == tok2 {
		t.Fatal("tokens repeat")
	}
}

func TestThrottleFree(t *testing.T) {
	th := NewThrottle()
	th.Free = 3
	now := time.Unix(1000, 0)
	for i := range 3 {
		if d := th.Fail("ip:1", now); d != 0 {
			t.Fatalf("free failure %d cost %v", i, d)
		}
	}
	if d := th.Fail("ip:1", now); d != th.Base {
		t.Fatalf("first paid failure: %v, want %v", d, th.Base)
	}
}
