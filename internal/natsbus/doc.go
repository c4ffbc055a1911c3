// Package natsbus implements natter.Bus and natter.ExpiringRegistry over
// NATS, so that several natterd nodes share one bus and one live-session
// registry. Both pass the conformance suites in internal/bustest, like the
// single-node internal/membus.
//
// One Node is one natterd process's connection to NATS (one or several
// server URLs, for a NATS cluster); its Bus and Registry share it.
//
// # The bus
//
// Each user has a core NATS subject, <prefix>.u.<user> (the user's name
// escaped into one subject token). A node holds one NATS subscription per
// user with a local subscriber and fans the user's events out to its local
// subscribers itself. Core NATS keeps the order of one connection's
// messages on one subject, so the events one node publishes for one user
// arrive in order at every node; that is all natter.Bus promises. Subscribe
// returns once the NATS server has the subscription (a round trip), so an
// event published after it returns, from any node connected to the same
// NATS server, reaches it (the hub reads the inbox after subscribing and
// relies on this). Across a NATS cluster, interest travels between NATS
// servers asynchronously: an event published on another NATS server within
// that propagation (a millisecond or so) can miss a new subscriber; it is
// in the store (see below).
//
// Events larger than the NATS server's max_payload (1 MiB by default, less
// than natter's largest frame plus its envelope) are split into parts that
// the receiving node joins again; parts of one event come from one
// connection on one subject, so they arrive in order.
//
// # Events while a node is cut off from NATS
//
// Core NATS does not keep messages. While a node is disconnected, the
// events it publishes are buffered by nats.go (up to ReconnectBufSize) and
// sent when it reconnects; events other nodes publish for users connected
// to it are lost to it. Nothing durable is lost: every message and receipt
// is in the store before it is published (the bus only says "look"). A
// client recovers what it missed from its inbox: it notices a gap in inbox
// sequence numbers at the next event it gets and sends Sync (client's
// dispatcher, after gapGrace), and every login and resume replays the inbox
// from the device's cursor. Presence, connection info and typing events
// missed meanwhile are not replayed: a client has them again at its next
// login (the contact list with presence). The Node counts reconnects
// (natter_bus_reconnects_total).
//
// # The registry
//
// Live sessions are kept in a JetStream key-value bucket with memory
// storage: never written to disk, lost with the NATS server (after which
// every node puts its own sessions back, see below). One key per user,
// u.<user>, holds all the user's sessions as JSON, each tagged with the
// Node (process incarnation) that holds its connection. Put and Delete
// read the key and write it back only if its revision is unchanged
// (compare-and-set, retried on conflict), so a Delete removes a session
// only if it still belongs to its connection, atomically across nodes.
//
// # The registry's local copy
//
// Sessions costs no round trip (the hub reads sessions at every send and
// for every contact at login, and a dead node's clients all log in again
// at once): each node keeps a copy of the bucket's user keys in memory,
// filled and then kept current by a watch of the bucket (a JetStream
// ordered consumer). Each entry carries the revision it reflects and only moves to
// a later one. The node's own Puts and Deletes go into the copy as soon
// as NATS acknowledges them, so a node reads its own writes; other nodes'
// writes show once the watch delivers them (after Put returned: p50 under
// 20 µs, p99 under 150 µs through one NATS server on this machine,
// BenchmarkCopyLag), so two nodes may briefly disagree. A compare-and-set
// still reads the bucket itself.
//
// The copy is cold, and Sessions reads the user's key in NATS (one round
// trip) instead, until the watch's initial values are all in: after Open,
// after every reconnect (the watch may have missed changes, or the bucket
// may have been lost with the NATS server, which starts revisions again:
// the node empties the copy and starts a new watch once the bucket is
// back), and when the watch ends by itself (a new one is started at
// once, or at the next heartbeat). While the node is cut off from NATS it
// answers from the copy it has: NATS could not answer, and the sessions
// in it are those of a moment ago. The copy holds every online user's
// sessions, about 520 bytes per session (BenchmarkCopyMemory: one
// session with status text and two candidates per user).
//
// Each node keeps a heartbeat key, n.<node>, which it rewrites every
// Timeout/6. Every node reads the heartbeats as often; a node whose
// heartbeat has not changed for half of Timeout is dead: the nodes that
// see it remove its sessions (compare-and-set again, so each removal
// happens once), report each to the hub (natter.ExpiringRegistry), and
// then delete its heartbeat. A dead node's sessions thus end within 5/6 of
// Timeout of its last heartbeat (plus the time to scan the bucket's user
// keys, one watch), and natterd sets Timeout to its keepalive. A node
// whose heartbeat stalls for half of Timeout while it lives (cut off from
// NATS) is taken for dead all the same: contacts are told its users went
// offline; it puts its sessions back when it notices (below) and reports
// them (Registry.OnRestore), and natterd's hub tells contacts again.
//
// A node remembers the sessions it put. When its heartbeat is not as it
// left it (deleted by a node that took it for dead, or lost with the
// bucket when the NATS server restarted; checked at every heartbeat and
// at once when it reconnects), it creates the bucket if need be, writes a
// new heartbeat and, on a goroutine of its own (heartbeats go on), puts
// back those of its sessions that no Delete ended and no other connection
// replaced meanwhile.
package natsbus
