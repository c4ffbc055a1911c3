package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// user is one simulated user: one Client, one device.
type user struct {
	idx   int
	name  natter.UserID
	dev   natter.DeviceID
	peers []int32 // indices of the users that should be approved contacts

	c        *client.Client
	keys     *seal.Keyring // the device's keyring, kept in the state file
	inflight atomic.Int32
	warm     atomic.Bool   // a send of this user's was acknowledged
	ready    chan struct{} // closed once the login's inbox is complete
	done     chan struct{} // closed when the event loop ends
	// contacts is the contact list sent at login; written by the event
	// loop before ready is closed, read only after.
	contacts []wire.Contact
}

func userName(prefix string, i int) string { return prefix + "-" + strconv.Itoa(i) }

// deviceOf derives a stable device ID from a user name, so that a user's
// inbox cursor carries over from one run to the next even without a state
// file.
func deviceOf(name natter.UserID) natter.DeviceID {
	sum := sha256.Sum256([]byte("natter-bench device " + name))
	return natter.DeviceID("bench-" + hex.EncodeToString(sum[:8]))
}

func makeUsers(cfg *Config) []*user {
	us := make([]*user, cfg.Users)
	for i := range us {
		name := natter.UserID(userName(cfg.Prefix, i))
		us[i] = &user{idx: i, name: name, dev: deviceOf(name), peers: peersOf(i, cfg.Users, cfg.Contacts)}
	}
	return us
}

// peersOf returns user i's contacts in a circulant graph of n users with k
// contacts each: i±1 … i±k/2, and i+n/2 when k is odd (then n is even).
// Config.check ensures that these are k distinct users other than i.
func peersOf(i, n, k int) []int32 {
	if k == 0 {
		return nil
	}
	ps := make([]int32, 0, k)
	for d := 1; d <= k/2; d++ {
		ps = append(ps, int32((i+d)%n), int32((i-d+n)%n))
	}
	if k%2 == 1 {
		ps = append(ps, int32((i+n/2)%n))
	}
	return ps
}

// stateFile keeps what a real client keeps in its home across runs: each
// user's session token and its device's end-to-end keyring (seal's
// Marshal form, private keys included: the file is 0600). With the
// keyring kept, a resume or login finds its device's keys already
// published and writes none, as a real device does; without it every run
// was a new set of device keys that the server stored and announced to
// every contact.
type stateFile struct {
	path   string
	mu     sync.Mutex
	Tokens map[natter.UserID]string          `json:"tokens"`
	Keys   map[natter.UserID]json.RawMessage `json:"keys,omitempty"`
	dirty  bool
	// readOnly: save writes nothing (a part of a run spread over
	// processes: the parent saves).
	readOnly bool
}

func loadState(path string) (*stateFile, error) {
	s := &stateFile{path: path, Tokens: map[natter.UserID]string{}, Keys: map[natter.UserID]json.RawMessage{}}
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bench: read state file: %w", err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("bench: state file %s: %w", path, err)
	}
	if s.Tokens == nil {
		s.Tokens = map[natter.UserID]string{}
	}
	if s.Keys == nil {
		s.Keys = map[natter.UserID]json.RawMessage{}
	}
	return s, nil
}

// keys returns u's saved keyring, or nil.
func (s *stateFile) keys(u natter.UserID) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Keys[u]
}

// setKeys records u's keyring (as seal.Keyring.Marshal returns it).
func (s *stateFile) setKeys(u natter.UserID, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !bytes.Equal(s.Keys[u], b) {
		s.Keys[u] = b
		s.dirty = true
	}
}

func (s *stateFile) token(u natter.UserID) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Tokens[u]
}

func (s *stateFile) setToken(u natter.UserID, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Tokens[u] != token {
		if token == "" {
			delete(s.Tokens, u)
		} else {
			s.Tokens[u] = token
		}
		s.dirty = true
	}
}

// save writes the file if it changed, atomically (write, then rename).
func (s *stateFile) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == "" || !s.dirty || s.readOnly {
		return nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".natter-bench-state-*")
	if err != nil {
		return fmt.Errorf("bench: save state: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("bench: save state: %w", err)
	}
	s.dirty = false
	return nil
}

// dialer returns the Options.Dialer for the i-th connection: from the next
// source address in turn, or the system's choice.
func (r *runner) dialer(i int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{}
	if n := len(r.cfg.Sources); n > 0 {
		d.LocalAddr = &net.TCPAddr{IP: r.cfg.Sources[i%n].AsSlice()}
	}
	return d.DialContext
}

// setupCounts are the outcomes of the connect phase.
type setupCounts struct {
	resumed, loggedIn, signedUp, failed, retries atomic.Int64
}

// connectAll connects and logs in every user, Parallel at a time. Users
// that cannot log in are left out of the run (and counted); it fails only
// if none could.
func (r *runner) connectAll(ctx context.Context) error {
	start := time.Now()
	var sc setupCounts
	next := atomic.Int64{}
	var firstErr error
	var errOnce sync.Once
	stop := r.every(progressEvery, func() {
		done := sc.resumed.Load() + sc.loggedIn.Load() + sc.signedUp.Load()
		r.log.Info("connecting", "done", done, "of", r.hi-r.lo, "failed", sc.failed.Load(),
			"per_sec", int(float64(done)/time.Since(start).Seconds()))
		if err := r.state.save(); err != nil {
			r.log.Warn("cannot save the state file", "err", err)
		}
	})
	next.Store(int64(r.lo))
	var wg sync.WaitGroup
	for range min(r.cfg.Parallel, r.hi-r.lo) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= r.hi || ctx.Err() != nil {
					return
				}
				u := r.users[i]
				if err := r.connect(ctx, u, &sc); err != nil {
					sc.failed.Add(1)
					r.countErr("setup", err)
					errOnce.Do(func() { firstErr = err })
					r.log.Warn("cannot log in", "user", u.name, "err", err)
				}
			}
		})
	}
	wg.Wait()
	stop()
	took := time.Since(start)
	s := &r.res.Setup
	s.Resumed, s.LoggedIn, s.SignedUp = sc.resumed.Load(), sc.loggedIn.Load(), sc.signedUp.Load()
	s.Failed, s.Retries = sc.failed.Load(), sc.retries.Load()
	s.ConnectSeconds = took.Seconds()
	r.log.Info("connected", "users", r.hi-r.lo, "resumed", s.Resumed, "logged_in", s.LoggedIn,
		"signed_up", s.SignedUp, "failed", s.Failed, "took", took.Round(time.Millisecond))
	if err := ctx.Err(); err != nil {
		return err
	}
	// Users that could not log in are left out of the run (see peer).
	if s.Failed == int64(r.hi-r.lo) {
		return fmt.Errorf("bench: no user could log in: %w", firstErr)
	}
	return nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// connect dials and logs in u, retrying what the server asks to retry
// (hashing pool full) and failed dials.
func (r *runner) connect(ctx context.Context, u *user, sc *setupCounts) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if attempt > 0 {
			sc.retries.Add(1)
			wait := time.Duration(attempt) * 200 * time.Millisecond
			var we *wire.Err
			if errors.As(err, &we) && we.RetryAfter > 0 {
				wait = time.Duration(we.RetryAfter) * time.Millisecond
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err = r.connectOnce(ctx, u, sc)
		if err == nil || !retryable(err) {
			return err
		}
	}
	return err
}

func retryable(err error) bool {
	var we *wire.Err
	if errors.As(err, &we) {
		return we.Code == wire.CodeRateLimited || we.Code == wire.CodeUnavailable
	}
	var oe *net.OpError
	return errors.As(err, &oe) || errors.Is(err, client.ErrConnLost) || errors.Is(err, context.DeadlineExceeded)
}

func codeOf(err error) wire.Code {
	var we *wire.Err
	if errors.As(err, &we) {
		return we.Code
	}
	return ""
}

// connectOnce makes one attempt: dial (if not yet connected), then resume
// with the cached token, or sign up, or (if the name is taken) log in.
func (r *runner) connectOnce(ctx context.Context, u *user, sc *setupCounts) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if u.c == nil {
		keys, err := r.keysOf(u)
		if err != nil {
			return err
		}
		u.keys = keys
		c, err := client.Dial(ctx, client.Options{
			Addr:                  r.cfg.Addr,
			TLSConfig:             r.cfg.TLS,
			Device:                u.dev,
			Dialer:                r.dialer(u.idx),
			ClientName:            "natter-bench",
			EventBuffer:           64,
			DedupSize:             4096,
			AutoDeliveredReceipts: r.cfg.Receipts,
			// Each simulated device opens one session per contact device
			// and keeps its keys in memory; a small prekey stock keeps the
			// sign-up of thousands of users from being a prekey upload.
			Prekeys: 4,
			Keys:    keys,
		})
		if err != nil {
			return err
		}
		u.c = c
		u.ready = make(chan struct{})
		u.done = make(chan struct{})
		go r.events(u)
	}
	var sess client.Session
	var err error
	if tok := r.state.token(u.name); tok != "" {
		sess, err = u.c.Resume(ctx, tok)
		switch {
		case err == nil:
			sc.resumed.Add(1)
		case errors.Is(err, client.ErrLoggedIn):
			// An earlier attempt's resume went through after it had
			// timed out (a loaded server): this client is resumed.
			sess.Token, err = tok, nil
			sc.resumed.Add(1)
		case codeOf(err) == wire.CodeSessionExpired:
			r.state.setToken(u.name, "")
		default:
			return err
		}
	}
	if sess.Token == "" {
		// Sign up first: logging in to a name that does not exist counts
		// as a wrong password, and the server throttles the address.
		sess, err = u.c.Signup(ctx, u.name, r.cfg.Password)
		switch {
		case err == nil:
			sc.signedUp.Add(1)
		case codeOf(err) == wire.CodeUserExists:
			if sess, err = u.c.Login(ctx, u.name, r.cfg.Password); err != nil {
				return err
			}
			sc.loggedIn.Add(1)
		default:
			return err
		}
	}
	r.state.setToken(u.name, sess.Token)
	select {
	case <-u.ready:
		return nil
	case <-time.After(readyTimeout):
		return fmt.Errorf("%s: no contact list and inbox within %s of login", u.name, readyTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addContacts makes every user's expected contacts approved: each user
// Adds those not yet approved (the second Add of a pair approves it).
// checkContacts then reads the lists back to count what is missing.
func (r *runner) addContacts(ctx context.Context) error {
	start := time.Now()
	var added, failed, done atomic.Int64
	stop := r.every(progressEvery, func() {
		r.log.Info("building contacts", "users_done", done.Load(), "of", len(r.users), "adds", added.Load())
	})
	r.forUsers(ctx, func(u *user) {
		approved := make(map[natter.UserID]bool, len(u.contacts))
		for _, c := range u.contacts {
			if c.State == natter.ContactApproved {
				approved[c.User] = true
			}
		}
		for _, p := range u.peers {
			peer := r.peer(p)
			if peer == nil || approved[peer.name] {
				continue
			}
			octx, cancel := context.WithTimeout(ctx, opTimeout)
			err := u.c.Add(octx, peer.name)
			cancel()
			if err != nil {
				failed.Add(1)
				r.countErr("contact", err)
				continue
			}
			added.Add(1)
		}
		done.Add(1)
	})
	stop()
	if err := ctx.Err(); err != nil {
		return err
	}
	s := &r.res.Setup
	s.ContactAdds, s.ContactErrors = added.Load(), failed.Load()
	s.ContactsSeconds = time.Since(start).Seconds()
	r.log.Info("contacts added", "adds", s.ContactAdds, "errors", s.ContactErrors, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// checkContacts reads every user's contact list back and counts the
// expected contacts that are not approved.
func (r *runner) checkContacts(ctx context.Context) error {
	var missing atomic.Int64
	r.forUsers(ctx, func(u *user) {
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		cs, err := u.c.Contacts(octx)
		cancel()
		if err != nil {
			r.countErr("contact", err)
			missing.Add(int64(len(u.peers)))
			return
		}
		approved := make(map[natter.UserID]bool, len(cs))
		for _, c := range cs {
			if c.State == natter.ContactApproved {
				approved[c.User] = true
			}
		}
		for _, p := range u.peers {
			if peer := r.peer(p); peer != nil && !approved[peer.name] {
				missing.Add(1)
			}
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	r.res.Setup.ContactsMissing = missing.Load()
	if n := missing.Load(); n > 0 {
		r.log.Warn("contacts missing", "missing", n)
	}
	return nil
}

// peer returns user i if it is logged in, else nil. A user of another
// process of the run counts as logged in.
func (r *runner) peer(i int32) *user {
	u := r.users[i]
	if int(i) < r.lo || int(i) >= r.hi {
		return u
	}
	if u.c == nil || !isClosed(u.ready) {
		return nil
	}
	return u
}

// forUsers calls fn for every logged-in user, Parallel at a time.
func (r *runner) forUsers(ctx context.Context, fn func(u *user)) {
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(r.cfg.Parallel, len(r.users)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(r.users) {
					return
				}
				if u := r.users[i]; u.c != nil && isClosed(u.ready) {
					fn(u)
				}
			}
		})
	}
	wg.Wait()
}

// every calls fn every d until the returned stop is called.
func (r *runner) every(d time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fn()
			case <-done:
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// keysOf returns u's keyring: the one kept in the state file, or new keys
// (benchKeys) if there is none or it is not this device's.
func (r *runner) keysOf(u *user) (*seal.Keyring, error) {
	if b := r.state.keys(u.name); b != nil {
		kr, err := seal.Load(b)
		if err == nil && kr.User() == u.name && kr.Device() == u.dev {
			return kr, nil
		}
		r.log.Warn("the state file's keys are not this device's: making new ones", "user", u.name, "err", err)
	}
	return benchKeys(u.name, u.dev)
}

// saveKeys records every connected user's keyring in the state (the file
// is written by stateFile.save).
func (r *runner) saveKeys() {
	for _, u := range r.users {
		if u.keys == nil {
			continue
		}
		b, err := u.keys.Marshal()
		if err != nil {
			r.log.Warn("cannot save keys", "user", u.name, "err", err)
			continue
		}
		r.state.setKeys(u.name, b)
	}
}

// benchKeys makes a simulated device's end-to-end keys. The user's identity
// is derived from the user's name, so that every run (and every process of
// a run) holds it and certifies its fresh device keys itself, without the
// approval a real new device needs. Never do this for real users: anyone
// who knows the name holds the identity.
func benchKeys(name natter.UserID, dev natter.DeviceID) (*seal.Keyring, error) {
	seed := sha256.Sum256([]byte("natter-bench identity " + string(name)))
	id, err := seal.IdentityFromSeed(seed[:])
	if err != nil {
		return nil, err
	}
	kr, err := seal.New(name, dev)
	if err != nil {
		return nil, err
	}
	return kr, kr.AdoptIdentity(id)
}
