// Package session is one client connection's transport: a small Conn
// interface with two implementations (length-prefixed frames over TLS/TCP,
// binary messages over WebSocket) and the Writer that owns a connection's
// writes, draining a bounded outbound queue and batching what is queued into
// as few writes as possible. A client too slow to drain its queue overflows
// it and is disconnected, so it never blocks anyone else.
//
// What the frames mean is package hub's business.
package session
