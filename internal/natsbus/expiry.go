package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natterim/natter"
)

// beat is what a node knows of another's heartbeat: its revision and when
// this node first saw it (on its own clock, so clocks need not agree).
type beat struct {
	rev uint64
	at  time.Time
}

// beatValue is a heartbeat's value, for people reading the bucket.
type beatValue struct {
	Node string    `json:"node"`
	At   time.Time `json:"at"`
}

// Heartbeat timing, in fractions of Config.Timeout: a node beats every
// sixth, and is dead when its heartbeat stood still for half (two beats
// missed, and a third late). Every node checks the others as often as it
// beats, so it sees a heartbeat at most a sixth after it was written, and
// declares the node dead at most a sixth after half of Timeout passed:
// the sessions of a node that stopped end within 5/6 of Timeout of its
// last heartbeat, plus the time to scan the bucket.
func (n *Node) beatEvery() time.Duration { return n.cfg.Timeout / 6 }
func (n *Node) deadAfter() time.Duration { return n.cfg.Timeout / 2 }

// maintain runs the registry's background work until the node closes:
// heartbeats (and recovery when the node reconnects) on one goroutine,
// checks of the other nodes on another, so that a long expiry (a scan of
// every user's key) never delays this node's own heartbeat.
func (r *Registry) maintain(wake <-chan struct{}) {
	r.n.wg.Go(r.restoreLoop)
	r.n.wg.Go(func() {
		t := time.NewTicker(r.n.beatEvery())
		defer t.Stop()
		for {
			select {
			case <-r.n.base.Done():
				return
			case <-t.C:
				r.checkNodes()
			}
		}
	})
	t := time.NewTicker(r.n.beatEvery())
	defer t.Stop()
	for {
		select {
		case <-r.n.base.Done():
			return
		case <-wake:
			// Reconnected: the watch may have missed changes (or its
			// bucket may be gone), so the copy is filled again.
			r.beat()
			r.watchWanted = true
		case <-t.C:
			r.beat()
		case <-r.watchEnded:
			r.watchWanted = true
		}
		if r.watchWanted && r.n.base.Err() == nil {
			if err := r.rewatch(); err != nil {
				r.n.log.Warn("registry copy not filled; Sessions reads NATS until the next heartbeat's try", "err", err)
			}
		}
	}
}

// putBeat writes this node's heartbeat whatever was there.
func (r *Registry) putBeat(ctx context.Context) error {
	v, _ := json.Marshal(beatValue{Node: r.n.id, At: time.Now().UTC()})
	rev, err := r.kv.Put(ctx, beatKey(r.n.id), v)
	if err != nil {
		return fmt.Errorf("natsbus: heartbeat: %w", err)
	}
	r.beatRev = rev
	return nil
}

// beat renews this node's heartbeat. If the heartbeat is not as this node
// left it, it writes a new one and has the sessions this node holds put
// back (restoreLoop): either another node took this one for dead, deleted
// its heartbeat and removed its sessions, or the NATS server restarted
// and lost the bucket, which beat then creates again.
func (r *Registry) beat() {
	ctx, cancel := r.n.opContext()
	defer cancel()
	v, _ := json.Marshal(beatValue{Node: r.n.id, At: time.Now().UTC()})
	rev, err := r.kv.Update(ctx, beatKey(r.n.id), v, r.beatRev)
	if err == nil {
		r.beatRev = rev
		return
	}
	if r.n.base.Err() != nil {
		return
	}
	r.n.log.Info("heartbeat lost; putting this node's sessions back", "err", err)
	// Contacts were told this node's users went offline only if another
	// node deleted the heartbeat (expireNode): its delete marker says so.
	// A heartbeat with no history at all was lost with the bucket.
	notify := r.heartbeatDeleted(ctx)
	if _, err := r.n.js.CreateOrUpdateKeyValue(ctx, r.n.kvConfig()); err != nil {
		r.n.log.Warn("registry bucket not available; trying again at the next heartbeat", "err", err)
		r.beatRev = 0
		return
	}
	if err := r.putBeat(ctx); err != nil {
		r.n.log.Warn("heartbeat not written; trying again at the next heartbeat", "err", err)
		r.beatRev = 0
		return
	}
	r.watchWanted = true // the bucket may be a new one
	select {
	case r.restore <- notify:
	default: // one is pending: it puts back everything held then
	}
}

// heartbeatDeleted reports whether this node's heartbeat was deleted (by
// a node that took this one for dead), rather than lost with the bucket.
func (r *Registry) heartbeatDeleted(ctx context.Context) bool {
	es, err := r.kv.History(ctx, beatKey(r.n.id))
	if err != nil || len(es) == 0 {
		return false
	}
	op := es[len(es)-1].Operation()
	return op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge
}

// restoreLoop puts back the sessions this node holds whenever beat asks,
// on a goroutine of its own so that heartbeats go on meanwhile (a node
// with many sessions takes a while). With notify, each session put back
// is reported to OnRestore's function.
func (r *Registry) restoreLoop() {
	for {
		select {
		case <-r.n.base.Done():
			return
		case notify := <-r.restore:
			r.putAllBack(notify)
		}
	}
}

func (r *Registry) putAllBack(notify bool) {
	r.mu.Lock()
	mine := make([]natter.LiveSession, 0, len(r.mine))
	for _, s := range r.mine {
		mine = append(mine, s)
	}
	r.mu.Unlock()
	back, failed := 0, 0
	for _, s := range mine {
		ctx, cancel := r.n.opContext()
		restored, err := r.putBack(ctx, s)
		cancel()
		if r.n.base.Err() != nil {
			return
		}
		if err != nil {
			failed++
			r.n.log.Warn("put a session back", "user", s.User, "device", s.Device, "err", err)
			continue
		}
		if restored {
			back++
			if fn := r.onRestore.Load(); fn != nil && notify {
				(*fn)(s)
			}
		}
	}
	r.n.log.Info("sessions put back", "put_back", back, "failed", failed, "held", len(mine))
	if failed > 0 {
		// Try again after the next heartbeat's interval.
		r.n.wg.Go(func() {
			select {
			case <-r.n.base.Done():
			case <-time.After(r.n.beatEvery()):
				select {
				case r.restore <- notify:
				default:
				}
			}
		})
	}
}

// putBack puts s, a session this node held, back into the registry if it
// is missing there and this node still holds it (no Delete ended it
// meanwhile); a session another connection replaced is forgotten. It
// reports whether it put s back.
func (r *Registry) putBack(ctx context.Context, s natter.LiveSession) (bool, error) {
	unlock := r.lock(s.User, s.Device)
	defer unlock()
	r.mu.Lock()
	cur, ok := r.mine[mineKey{s.User, s.Device}]
	r.mu.Unlock()
	if !ok || cur.Conn != s.Conn {
		return false, nil // ended or replaced on this node since
	}
	replaced := false
	st := stored{Owner: r.n.id, Device: s.Device, Conn: s.Conn, Node: s.Node, Status: s.Status, Text: s.Text,
		Reach: s.Reach, Since: s.Since, Quiet: s.Quiet}
	wrote, err := r.update(ctx, s.User, func(rec *record) bool {
		replaced = false
		if i := rec.find(s.Device); i >= 0 {
			replaced = rec.Sessions[i].Conn != s.Conn
			return false
		}
		rec.put(st)
		return true
	})
	if err != nil {
		return false, err
	}
	if replaced {
		r.forget(s.User, s.Device, s.Conn)
	}
	return wrote, nil
}

// checkNodes reads every heartbeat and expires the nodes whose heartbeat
// stood still for deadAfter.
func (r *Registry) checkNodes() {
	ctx, cancel := r.n.opContext()
	defer cancel()
	beats, err := r.scan(ctx, "n.*")
	if err != nil {
		if r.n.base.Err() == nil {
			r.n.log.Warn("read heartbeats", "err", err)
		}
		return
	}
	r.nodes.Store(int64(len(beats)))
	now := time.Now()
	listed := make(map[string]bool, len(beats))
	for _, e := range beats {
		node := strings.TrimPrefix(e.Key(), "n.")
		listed[node] = true
		if node == r.n.id {
			continue
		}
		b, ok := r.seen[node]
		if !ok || b.rev != e.Revision() {
			r.seen[node] = beat{rev: e.Revision(), at: now}
			continue
		}
		if now.Sub(b.at) >= r.n.deadAfter() {
			r.expireNode(node)
			delete(r.seen, node)
		}
	}
	for node := range r.seen {
		if !listed[node] {
			delete(r.seen, node)
		}
	}
}

// scan returns the entries (not deleted) of the keys matching filter.
func (r *Registry) scan(ctx context.Context, filter string) ([]jetstream.KeyValueEntry, error) {
	w, err := r.kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watcher stopped")
			}
			if e == nil {
				return out, nil // the initial values are all in
			}
			out = append(out, e)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// expireNode removes every session of node, a dead node, and reports
// each one this node removed to OnExpire's function; then it deletes the
// node's heartbeat. Several nodes may do this at once: each session is
// removed, and reported, by one of them.
func (r *Registry) expireNode(node string) {
	r.n.log.Warn("node dead: expiring its sessions", "dead", node)
	ctx, cancel := context.WithTimeout(r.n.base, r.n.cfg.Timeout)
	defer cancel()
	entries, err := r.scan(ctx, "u.*")
	if err != nil {
		r.n.log.Warn("scan sessions of a dead node", "dead", node, "err", err)
		return
	}
	n := 0
	for _, e := range entries {
		var rec record
		if json.Unmarshal(e.Value(), &rec) != nil || !slices.ContainsFunc(rec.Sessions, func(s stored) bool { return s.Owner == node }) {
			continue
		}
		var gone []stored
		_, err := r.update(ctx, rec.User, func(rec *record) bool {
			gone = gone[:0]
			rec.Sessions = slices.DeleteFunc(rec.Sessions, func(s stored) bool {
				if s.Owner == node {
					gone = append(gone, s)
					return true
				}
				return false
			})
			return len(gone) > 0
		})
		if err != nil {
			r.n.log.Warn("expire session", "user", rec.User, "dead", node, "err", err)
			continue
		}
		for _, s := range gone {
			n++
			r.n.met.expired.Inc()
			if fn := r.onExpire.Load(); fn != nil {
				(*fn)(s.live(rec.User))
			}
		}
	}
	// Whatever its heartbeat did meanwhile: if the node was not dead
	// after all (cut off, and back just now), a heartbeat gone is what
	// tells it to put back the sessions removed here.
	if err := r.kv.Delete(ctx, beatKey(node)); err != nil {
		r.n.log.Warn("delete a dead node's heartbeat", "dead", node, "err", err)
	}
	r.n.log.Info("expired a dead node's sessions", "dead", node, "sessions", n)
}
