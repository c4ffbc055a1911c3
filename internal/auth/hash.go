package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultParams meet OWASP's recommended minimum for argon2id (m=19 MiB, t=2,
// p=1).
var DefaultParams = Params{Time: 2, Memory: 19 * 1024, Threads: 1}

// ErrBusy means the hashing pool's queue is full: the server is taking more
// logins than it can hash. The caller should tell the client to retry later.
var ErrBusy = errors.New("too many logins in progress")

// ErrMalformedHash means a stored hash could not be parsed.
var ErrMalformedHash = errors.New("malformed password hash")

const (
	saltLen = 16
	keyLen  = 32
)

// Hasher computes and checks argon2id hashes on a fixed pool of workers
// with a bounded queue. Each worker holds at most one hash's memory at a
// time, so memory use is bounded by workers × Params.Memory.
type Hasher struct {
	params Params
	jobs   chan func()
	wg     sync.WaitGroup
	once   sync.Once
}

// NewHasher starts workers goroutines with a queue of queue pending jobs.
//
// Each worker runs on an operating-system thread of its own at a lower
// scheduling priority (nice HashNice, where the platform allows it; see
// lowerPriority): when the CPUs are busy, the kernel runs message routing
// first and hashing with what is left, so a burst of password logins
// queues up (and, past the queue, is refused with ErrBusy) instead of
// slowing every conversation. A worker holds one of the Go runtime's
// GOMAXPROCS slots while it hashes, even while the kernel has it waiting;
// natterd therefore runs with GOMAXPROCS raised by the number of workers
// (internal/server), so that routing keeps one slot per CPU.
func NewHasher(workers, queue int, p Params) *Hasher {
	if workers < 1 {
		workers = 1
	}
	h := &Hasher{params: p, jobs: make(chan func(), queue)}
	for range workers {
		h.wg.Go(func() {
			// The thread is never unlocked: it ends with the goroutine,
			// so its lowered priority never passes to other work.
			runtime.LockOSThread()
			lowerPriority()
			for job := range h.jobs {
				job()
			}
		})
	}
	return h
}

// HashNice is the nice value of the hashing workers' threads (0 is the
// default priority, 19 the lowest). At 10 the kernel gives a busy worker
// about a tenth of the CPU that a busy routing thread gets when they
// compete, and all of an idle CPU.
const HashNice = 10

// Close stops the workers after the queued jobs.
func (h *Hasher) Close() {
	h.once.Do(func() { close(h.jobs) })
	h.wg.Wait()
}

// run queues f and waits for it. It fails fast with ErrBusy when the queue is
// full, and returns ctx.Err() if ctx ends first (f may still run).
func (h *Hasher) run(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case h.jobs <- func() { f(); close(done) }:
	default:
		return ErrBusy
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Hash returns the encoded argon2id hash of password, in the PHC string
// format: $argon2id$v=19$m=…,t=…,p=…$salt$hash.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	var key []byte
	p := h.params
	if err := h.run(ctx, func() { key = argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen) }); err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches encoded, using the parameters
// stored in encoded (so raising DefaultParams keeps old hashes working).
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	p, salt, want, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	var got []byte
	if err := h.run(ctx, func() { got = argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want))) }); err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Dummy burns the same work as a Verify, for a user that does not exist, so
// that response times do not reveal which names are taken.
func (h *Hasher) Dummy(ctx context.Context, password string) error {
	p := h.params
	return h.run(ctx, func() { argon2.IDKey([]byte(password), make([]byte, saltLen), p.Time, p.Memory, p.Threads, keyLen) })
}

func parseHash(s string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, ErrMalformedHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("%w: version %q", ErrMalformedHash, parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("%w: parameters: %v", ErrMalformedHash, err)
	}
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: salt: %v", ErrMalformedHash, err)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) == 0 {
		return p, nil, nil, fmt.Errorf("%w: key", ErrMalformedHash)
	}
	return p, salt, key, nil
}
