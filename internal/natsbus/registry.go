package natsbus

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natterim/natter"
)

// Registry is the NATS natter.ExpiringRegistry of one Node (see the
// package doc). Get it from Node.Registry.
//
// Calls for one connection's session (its Puts, then its Delete) are
// expected one after another, as the hub makes them; calls for different
// connections may run at once.
type Registry struct {
	n  *Node
	kv jetstream.KeyValue

	mu   sync.Mutex
	mine map[mineKey]natter.LiveSession // sessions this node put and, as far as it knows, still holds
	// stripes order the writes of one (user, device) on this node with
	// their bookkeeping in mine: without them, putting a session back
	// (putBack) could overtake the Delete that ended it and leave it
	// online for good.
	stripes [256]sync.Mutex
	seed    maphash.Seed

	restore   chan bool // beat asks restoreLoop to put sessions back (true: and report them)
	onExpire  atomic.Pointer[func(natter.LiveSession)]
	onRestore atomic.Pointer[func(natter.LiveSession)]
	nodes     atomic.Int64 // nodes with a heartbeat, as last seen

	// copy is the local copy of the user keys that Sessions reads; a
	// watch of the bucket keeps it current (watch.go).
	copy       *sessionCopy
	watchEnded chan struct{} // follow asks the heartbeat goroutine for a new watch

	// Used by the maintenance goroutines only: the heartbeat's, and the
	// one checking the other nodes.
	beatRev     uint64          // revision of this node's heartbeat, 0 if not written
	seen        map[string]beat // other nodes' heartbeats
	watch       *watch          // the running watch, nil if none
	watchWanted bool            // the last attempt to start a watch failed
}

var _ natter.ExpiringRegistry = (*Registry)(nil)

type mineKey struct {
	user   natter.UserID
	device natter.DeviceID
}

// record is the value of a user's key: every live session of the user,
// ordered by device.
type record struct {
	User     natter.UserID `json:"user"`
	Sessions []stored      `json:"sessions"`
}

// stored is one live session in a record, with the node that holds its
// connection (Owner; LiveSession.Node is whatever the hub put).
type stored struct {
	Owner  string             `json:"owner"`
	Device natter.DeviceID    `json:"device"`
	Conn   string             `json:"conn"`
	Node   string             `json:"node,omitempty"`
	Status natter.Status      `json:"status,omitempty"`
	Text   string             `json:"text,omitempty"`
	Reach  []natter.Candidate `json:"reach,omitempty"`
	Since  time.Time          `json:"since"`
	Quiet  bool               `json:"quiet,omitempty"`
}

func (s stored) live(user natter.UserID) natter.LiveSession {
	return natter.LiveSession{User: user, Device: s.Device, Conn: s.Conn, Node: s.Node, Status: s.Status,
		Text: s.Text, Reach: s.Reach, Since: s.Since, Quiet: s.Quiet}
}

func userKey(user natter.UserID) string { return "u." + escape(string(user)) }
func beatKey(node string) string        { return "n." + node }

func (n *Node) kvConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      n.cfg.Bucket,
		Description: "natter's live sessions (internal/natsbus); memory only",
		History:     1,
		Storage:     jetstream.MemoryStorage,
		Replicas:    n.cfg.Replicas,
	}
}

func newRegistry(ctx context.Context, n *Node) (*Registry, error) {
	r := &Registry{n: n, mine: make(map[mineKey]natter.LiveSession), seen: make(map[string]beat), seed: maphash.MakeSeed(),
		restore: make(chan bool, 1), copy: newSessionCopy(), watchEnded: make(chan struct{}, 1)}
	kv, err := n.js.CreateOrUpdateKeyValue(ctx, n.kvConfig())
	if err != nil {
		return nil, fmt.Errorf("natsbus: registry bucket %s: %w", n.cfg.Bucket, err)
	}
	r.kv = kv
	if err := r.putBeat(ctx); err != nil {
		return nil, err
	}
	if err := r.rewatch(); err != nil {
		return nil, err
	}
	r.nodes.Store(1) // this one, until the first check reads them all
	return r, nil
}

// Put records or replaces the live session of (s.User, s.Device) in the
// shared registry, as held by this node. A session without a user or
// device is refused with natter.ErrBadRequest.
func (r *Registry) Put(ctx context.Context, s natter.LiveSession) error {
	if s.User == "" || s.Device == "" {
		return fmt.Errorf("natsbus: put session %q/%q: %w: user and device are required", s.User, s.Device, natter.ErrBadRequest)
	}
	defer r.n.met.observeOp("put", time.Now())
	st := stored{Owner: r.n.id, Device: s.Device, Conn: s.Conn, Node: s.Node, Status: s.Status, Text: s.Text,
		Reach: slices.Clone(s.Reach), Since: s.Since, Quiet: s.Quiet}
	unlock := r.lock(s.User, s.Device)
	defer unlock()
	_, err := r.update(ctx, s.User, func(rec *record) bool {
		rec.put(st)
		return true
	})
	if err != nil {
		return fmt.Errorf("natsbus: put session %s/%s: %w", s.User, s.Device, err)
	}
	s.Reach = st.Reach
	r.mu.Lock()
	r.mine[mineKey{s.User, s.Device}] = s
	r.mu.Unlock()
	return nil
}

// Delete removes the live session of (user, device) if its connection is
// still conn, and reports whether it removed it. The check and the removal
// are one compare-and-set on the user's key: a device that reconnected on
// another node meanwhile keeps its new session.
func (r *Registry) Delete(ctx context.Context, user natter.UserID, device natter.DeviceID, conn string) (bool, error) {
	defer r.n.met.observeOp("delete", time.Now())
	unlock := r.lock(user, device)
	defer unlock()
	removed, err := r.update(ctx, user, func(rec *record) bool {
		i := rec.find(device)
		if i < 0 || rec.Sessions[i].Conn != conn {
			return false
		}
		rec.Sessions = slices.Delete(rec.Sessions, i, i+1)
		return true
	})
	if err != nil {
		return false, fmt.Errorf("natsbus: delete session %s/%s: %w", user, device, err)
	}
	r.forget(user, device, conn)
	return removed, nil
}

// lock locks the stripe of (user, device) and returns its unlock.
func (r *Registry) lock(user natter.UserID, device natter.DeviceID) func() {
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteString(string(user))
	h.WriteByte(0)
	h.WriteString(string(device))
	m := &r.stripes[h.Sum64()%uint64(len(r.stripes))]
	m.Lock()
	return m.Unlock
}

// forget drops (user, device) from the sessions this node holds if its
// connection is conn.
func (r *Registry) forget(user natter.UserID, device natter.DeviceID, conn string) {
	r.mu.Lock()
	if s, ok := r.mine[mineKey{user, device}]; ok && s.Conn == conn {
		delete(r.mine, mineKey{user, device})
	}
	r.mu.Unlock()
}

// Sessions returns user's live sessions on every node, ordered by device.
// It answers from the node's copy of the registry: this node's own Puts
// and Deletes show at once, other nodes' as soon as the watch delivers
// them (well under a millisecond on one machine). While the copy is being
// filled (after Open, or after a reconnect) it reads the user's key
// instead, one NATS round trip.
func (r *Registry) Sessions(ctx context.Context, user natter.UserID) ([]natter.LiveSession, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsbus: sessions of %s: %w", user, err)
	}
	if out, ok := r.copy.sessions(user); ok {
		r.n.met.copyReads.Inc()
		return out, nil
	}
	defer r.n.met.observeOp("sessions", time.Now())
	rec, _, err := r.read(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("natsbus: sessions of %s: %w", user, err)
	}
	return liveSessions(user, rec.Sessions), nil
}

// OnExpire sets the function told of each session the registry removes
// because its node died (see natter.ExpiringRegistry).
func (r *Registry) OnExpire(fn func(natter.LiveSession)) {
	if fn == nil {
		r.onExpire.Store(nil)
		return
	}
	r.onExpire.Store(&fn)
}

// OnRestore sets the function told of each session the registry puts
// back by itself after the other nodes removed it while they took this
// node for dead (it was cut off from NATS for half of Timeout): they told
// contacts its user went offline, and natterd's hub tells them again
// (hub.SessionRestored). Sessions put back after NATS lost them with its
// memory are not reported: nobody was told anything then. fn runs on a
// goroutine of the registry's, one session at a time.
func (r *Registry) OnRestore(fn func(natter.LiveSession)) {
	if fn == nil {
		r.onRestore.Store(nil)
		return
	}
	r.onRestore.Store(&fn)
}

// Held returns the number of live sessions this node holds in the
// registry.
func (r *Registry) Held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.mine)
}

// read returns user's record and its revision (0: none).
func (r *Registry) read(ctx context.Context, user natter.UserID) (record, uint64, error) {
	rec := record{User: user}
	e, err := r.kv.Get(ctx, userKey(user))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rec, 0, nil
	}
	if err != nil {
		return rec, 0, err
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		// Not natsbus's: overwritten by whatever comes next.
		r.n.log.Error("registry: unreadable entry replaced", "user", user, "err", err)
		rec = record{}
	}
	rec.User = user
	return rec, e.Revision(), nil
}

// update applies change to user's record and writes it back if the record
// did not change meanwhile, trying again from a fresh read until it did
// not. change returns whether it changed anything (nothing is written if
// not); it may be called several times and must only touch rec. update
// reports whether it wrote.
func (r *Registry) update(ctx context.Context, user natter.UserID, change func(*record) bool) (bool, error) {
	key := userKey(user)
	gen := r.copy.generation()
	for {
		rec, rev, err := r.read(ctx, user)
		if err != nil {
			return false, err
		}
		if !change(&rec) {
			return false, nil
		}
		var wrote uint64
		switch {
		case len(rec.Sessions) == 0 && rev == 0:
			return true, nil
		case len(rec.Sessions) == 0:
			err = r.kv.Delete(ctx, key, jetstream.LastRevision(rev))
		default:
			b, merr := json.Marshal(rec)
			if merr != nil {
				return false, merr
			}
			if rev == 0 {
				wrote, err = r.kv.Create(ctx, key, b)
			} else {
				wrote, err = r.kv.Update(ctx, key, b, rev)
			}
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			r.n.met.conflicts.Inc()
			continue
		}
		if err != nil {
			return false, err
		}
		// Read your writes: the copy has it before the watch brings it.
		if wrote == 0 {
			r.copy.applyLocal(gen, user, rev, true, nil)
		} else {
			r.copy.applyLocal(gen, user, wrote, false, liveSessions(user, rec.Sessions))
		}
		return true, nil
	}
}

// find returns the index of device's session in rec, or -1.
func (rec *record) find(device natter.DeviceID) int {
	for i, s := range rec.Sessions {
		if s.Device == device {
			return i
		}
	}
	return -1
}

// put inserts or replaces s, keeping the order by device.
func (rec *record) put(s stored) {
	if i := rec.find(s.Device); i >= 0 {
		rec.Sessions[i] = s
		return
	}
	i, _ := slices.BinarySearchFunc(rec.Sessions, s.Device, func(e stored, d natter.DeviceID) int { return cmp.Compare(e.Device, d) })
	rec.Sessions = slices.Insert(rec.Sessions, i, s)
}

// close deletes this node's heartbeat if it holds no session any more:
// otherwise the heartbeat goes stale and the other nodes expire what is
// left (and tell contacts).
func (r *Registry) close() {
	if r.Held() > 0 {
		r.n.log.Warn("closing with live sessions left; the other nodes will expire them", "sessions", r.Held())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.n.cfg.OpTimeout)
	defer cancel()
	if err := r.kv.Delete(ctx, beatKey(r.n.id)); err != nil {
		r.n.log.Warn("delete heartbeat", "err", err)
	}
}
