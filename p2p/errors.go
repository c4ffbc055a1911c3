package p2p

import "errors"

// Errors of package p2p. They are wrapped with context; match them with
// errors.Is. Conn.Err says which one ended a connection.
var (
	// ErrClosed is returned by calls on a closed Manager or Conn, and is
	// Conn.Err of a connection ended by Close on this side.
	ErrClosed = errors.New("p2p: closed")
	// ErrTimeout means a connection attempt did not open its data channel
	// within Config.ConnectTimeout.
	ErrTimeout = errors.New("p2p: connection attempt timed out")
	// ErrFailed means the ICE or DTLS transport failed: no path was found,
	// or an established path broke (no traffic for Config.FailedTimeout).
	ErrFailed = errors.New("p2p: connection failed")
	// ErrPeerClosed means the peer ended the connection or the attempt (it
	// sent "bye", closed the data channel or the DTLS session).
	ErrPeerClosed = errors.New("p2p: closed by peer")
	// ErrTooLarge is returned by Send for a message over MaxMessageSize.
	ErrTooLarge = errors.New("p2p: message too large")
	// ErrProtocol means the peer broke the channel's framing; the
	// connection is closed.
	ErrProtocol = errors.New("p2p: protocol error")
	// ErrBadSignal is wrapped by the error for a signal that cannot be
	// decoded. HandleSignal logs and drops such signals.
	ErrBadSignal = errors.New("p2p: bad signal")
	// ErrBusy means too many connection attempts are in progress
	// (Config.MaxPending).
	ErrBusy = errors.New("p2p: too many connection attempts")
)
