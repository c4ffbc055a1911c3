package natter

import (
	"context"
	"time"
)

// Bus carries events to wherever a user's devices are connected: in one
// process for a single node, over NATS for many. Events are opaque bytes.
// Every implementation passes internal/bustest.
type Bus interface {
	// Publish sends event to every current subscriber of user, on any node.
	// Events published by one caller for one user arrive in the order they
	// were published.
	Publish(ctx context.Context, user UserID, event []byte) error
	// Subscribe calls fn for every event published for user until the
	// subscription ends. fn must not block: it runs on the bus's delivery
	// path, so it should only queue the event.
	Subscribe(user UserID, fn func(event []byte)) (Subscription, error)
	// Close ends all subscriptions.
	Close() error
}

// Subscription is a live Bus subscription.
type Subscription interface {
	Unsubscribe() error
}

// Registry is the live-session registry: which devices are online, on which
// node, with which presence and connection info. It is never written to disk
// by natter itself: for one node it is memory; for many it is the cluster's
// shared registry. Every implementation passes internal/bustest.
type Registry interface {
	// Put records or replaces the live session of (s.User, s.Device),
	// every field as given (Quiet included).
	Put(ctx context.Context, s LiveSession) error
	// Delete removes the live session of (user, device), but only if it still
	// belongs to connection conn: a device that reconnected elsewhere keeps
	// its new entry. It reports whether it removed anything.
	Delete(ctx context.Context, user UserID, device DeviceID, conn string) (bool, error)
	// Sessions returns user's live sessions, ordered by device.
	Sessions(ctx context.Context, user UserID) ([]LiveSession, error)
}

// LiveSession is one logged-in device, as the registry holds it.
type LiveSession struct {
	User   UserID
	Device DeviceID
	Conn   string // unique ID of the connection that owns the session
	Node   string // the node the connection is on
	Status Status
	Text   string
	Reach  []Candidate // how the device can be reached (connection info)
	Since  time.Time   // when the session began
	// Quiet marks a session that does not count for presence (a one-shot
	// command's): it is live for requests and pushes, but PresenceOf
	// leaves it out, so a user whose only sessions are quiet is offline
	// to contacts. A registry keeps it as put, like every other field.
	Quiet bool
}

// Candidate is one way to reach a device: an address and port it can be
// reached at (ICE's term). The server passes candidates on; it never dials
// them.
type Candidate struct {
	Type     string `json:"type"`  // host, srflx (public, seen by STUN), relay
	Proto    string `json:"proto"` // udp or tcp
	Addr     string `json:"addr"`  // host:port
	Priority uint32 `json:"prio,omitempty"`
}

// PresenceOf folds a user's live sessions into what contacts see: online if
// any device is online, else busy, else away; offline with no sessions. The
// status text is the one of the most recently started session that has one.
// Quiet sessions are left out: they count for nothing.
func PresenceOf(user UserID, sessions []LiveSession, lastSeen time.Time) Presence {
	p := Presence{User: user, Status: StatusOffline, LastSeen: lastSeen}
	rank := map[Status]int{StatusOffline: 0, StatusAway: 1, StatusBusy: 2, StatusOnline: 3}
	var textAt time.Time
	for _, s := range sessions {
		if s.Quiet {
			continue
		}
		if rank[s.Status] > rank[p.Status] {
			p.Status = s.Status
		}
		if s.Text != "" && !s.Since.Before(textAt) {
			p.Text, textAt = s.Text, s.Since
		}
	}
	return p
}

// ExpiringRegistry is a Registry in which sessions can also end without a
// Delete. A cluster's registry ends the sessions of a node that died
// (killed, or cut off from the cluster for longer than its timeout): that
// node will never Delete them, and they must not stay online forever. A
// single node's registry (internal/membus) dies with its sessions and does
// not implement it.
type ExpiringRegistry interface {
	Registry
	// OnExpire has fn called with every session the registry ends that
	// way, so that the hub tells the user's contacts, as it does after a
	// Delete (the user may have gone offline; the device's connection info
	// is void). Each such session is reported once across the cluster, by
	// the node that removed it; sessions removed by Delete are never
	// reported. fn runs on the registry's own goroutine, one session at a
	// time; it may block briefly (do I/O) but delays further expiries while
	// it runs. Before OnExpire is called, or with fn nil, expired sessions
	// are removed unreported.
	OnExpire(fn func(LiveSession))
}
