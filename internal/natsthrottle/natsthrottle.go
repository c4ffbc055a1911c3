// Package natsthrottle shares natterd's wrong-password back-off among the
// nodes of a cluster, through a NATS JetStream key-value bucket kept in
// memory: a guesser who spreads attempts over the nodes meets one back-off,
// not one per node. The policy (how long after how many failures) is an
// auth.Throttle's; only the counts are shared.
//
// The bucket is memory only (never on disk) and its entries expire after
// the policy's Forget. When NATS cannot be reached, the throttle falls back
// to the node's own counts (an auth.Throttle) rather than letting every
// attempt through or refusing every login.
package natsthrottle

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natterim/natter/internal/auth"
)

// Bucket is the key-value bucket's name.
const Bucket = "natter_throttle"

// opTimeout bounds one round trip to NATS: a login waits for it.
const opTimeout = 2 * time.Second

// Throttle is a cluster-wide auth.Throttle. Keys are auth's ("u:<user>",
// "ip:<address>"); prefix separates throttles sharing the bucket.
type Throttle struct {
	policy *auth.Throttle // Backoff; also the local fallback's counts
	kv     jetstream.KeyValue
	prefix string
	log    *slog.Logger
}

// entry is what the bucket holds for a key.
type entry struct {
	Fails int   `json:"fails"`
	Until int64 `json:"until"` // Unix nanoseconds: no attempt before
}

// Conn is a NATS connection with the bucket, shared by the throttles of
// one node.
type Conn struct {
	nc *nats.Conn
	kv jetstream.KeyValue
}

// Dial connects to the NATS servers urls (comma-separated) and opens (or
// creates) the bucket, whose entries are forgotten after forget.
func Dial(ctx context.Context, urls string, forget time.Duration) (*Conn, error) {
	nc, err := nats.Connect(urls, nats.Name("natterd throttle"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("natsthrottle: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsthrottle: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "natterd's wrong-password back-off, shared by the cluster's nodes",
		TTL: forget, Storage: jetstream.MemoryStorage, History: 1,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsthrottle: bucket %s: %w", Bucket, err)
	}
	return &Conn{nc: nc, kv: kv}, nil
}

// Close closes the connection.
func (c *Conn) Close() { c.nc.Close() }

// Throttle returns a throttle with policy's back-off whose counts are
// shared; prefix names it in the bucket ("u", "ip").
func (c *Conn) Throttle(policy *auth.Throttle, prefix string, log *slog.Logger) *Throttle {
	return &Throttle{policy: policy, kv: c.kv, prefix: prefix, log: log}
}

// key is the bucket key of a throttle key (NATS keys allow few characters:
// the key is hex-encoded).
func (t *Throttle) key(k string) string { return t.prefix + "." + hex.EncodeToString([]byte(k)) }

// Wait returns how long key must still wait before an attempt is allowed.
func (t *Throttle) Wait(key string, now time.Time) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	e, _, err := t.get(ctx, key)
	if err != nil {
		t.log.Warn("shared login throttle unreachable: using this node's counts", "err", err)
		return t.policy.Wait(key, now)
	}
	if until := time.Unix(0, e.Until); now.Before(until) {
		return until.Sub(now)
	}
	return 0
}

// Fail records a wrong password for key and returns the back-off now in
// force. Concurrent failures on several nodes are counted each once
// (compare-and-set, retried).
func (t *Throttle) Fail(key string, now time.Time) time.Duration {
	local := t.policy.Fail(key, now) // the fallback's counts stay current
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for range 8 {
		e, rev, err := t.get(ctx, key)
		if err != nil {
			break
		}
		e.Fails++
		d := t.policy.Backoff(e.Fails)
		if d > 0 {
			e.Until = now.Add(d).UnixNano()
		}
		b, _ := json.Marshal(e)
		if rev == 0 {
			_, err = t.kv.Create(ctx, t.key(key), b)
		} else {
			_, err = t.kv.Update(ctx, t.key(key), b, rev)
		}
		if err == nil {
			return d
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongRevision(err) {
			t.log.Warn("shared login throttle: cannot record a failure", "err", err)
			break
		}
	}
	return local
}

// Succeed clears key's failures.
func (t *Throttle) Succeed(key string) {
	t.policy.Succeed(key)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := t.kv.Purge(ctx, t.key(key)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.log.Warn("shared login throttle: cannot clear", "err", err)
	}
}

// get returns key's entry and revision (0 and a zero entry if there is none).
func (t *Throttle) get(ctx context.Context, key string) (entry, uint64, error) {
	kve, err := t.kv.Get(ctx, t.key(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return entry{}, 0, nil
	}
	if err != nil {
		return entry{}, 0, err
	}
	var e entry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return entry{}, kve.Revision(), nil // damaged: start over
	}
	return e, kve.Revision(), nil
}

// isWrongRevision reports a compare-and-set that lost a race.
func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
