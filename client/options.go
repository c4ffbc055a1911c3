package client

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client/internal/disk"
	"github.com/natterim/natter/seal"
)

// Options configures a Client. Addr (or Addrs) and Device are required;
// every other field has a usable default.
type Options struct {
	// Addr is natterd's TLS/TCP address, host:port (or a ws:// or
	// wss:// URL for a WebSocket).
	Addr string
	// Addrs are more addresses of the same service (other natterd nodes
	// sharing one store). The Client connects to one of Addr and Addrs at
	// random, and when a connection fails or drops, to the next one
	// (addrs.go); a host name that resolves to several IP addresses counts
	// as several. One of Addr and Addrs is required.
	Addrs []string
	// TLSConfig says how to trust the server; nil means the system roots
	// and the host name of Addr. If its ServerName is empty, the host of
	// Addr is used.
	TLSConfig *tls.Config
	// Device is this device's stable ID (natter.NewDeviceID, kept by the
	// app). The server keeps one delivery cursor per device.
	Device natter.DeviceID
	// Dialer opens the TCP connection, e.g. to pick a source address.
	// Default: a net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives the SDK's logs. Default: none.
	Logger *slog.Logger
	// ClientName is sent in Hello for the server's logs, e.g.
	// "natter-cli/0.1".
	ClientName string
	// EventBuffer is the size of the Events channel. Default 256.
	EventBuffer int
	// AutoDeliveredReceipts makes the SDK send "delivered" receipts for the
	// messages of others it hands to the app, coalesced per peer.
	AutoDeliveredReceipts bool
	// Quiet makes every session of this Client quiet (Signup, Login,
	// Resume and the automatic resumes after a drop; see wire.Login): it
	// sends and receives like any other, but does not count for presence
	// (contacts see no change when it starts or ends, the user stays as
	// their other devices make them, offline with their last seen if
	// there are none, and senders are told the user is offline), and it
	// never registers connection info, so contacts never dial it (with
	// Direct it can still open channels itself; SetReach fails). It gets
	// no typing notifications relayed by natterd. For one-shot commands
	// (send a message, list contacts) that must not make the user flash
	// online. A status set with SetPresence keeps its text (shown while
	// the user is offline); the status itself shows nowhere.
	Quiet bool

	// ReconnectMin and ReconnectMax bound the back-off between reconnection
	// attempts: it starts at ReconnectMin, doubles after every failure up to
	// ReconnectMax, and each wait is drawn at random between 0 and that
	// (full jitter). Defaults 100 ms and 30 s.
	ReconnectMin, ReconnectMax time.Duration
	// DedupSize is how many message IDs the SDK remembers to drop messages
	// delivered twice. Default 100,000.
	DedupSize int

	// Direct turns on peer-to-peer conversations (docs/p2p.md): after login
	// the Client registers its candidates, and messages to a contact go over
	// a direct (or TURN-relayed) channel when one can be opened, through the
	// server otherwise.
	Direct bool
	// DirectRelayOnly makes peer-to-peer channels use natterd's TURN relay
	// only (not showing this device's addresses to peers).
	DirectRelayOnly bool
	// DirectSettings, if set, adjusts pion's SettingEngine for peer-to-peer
	// channels and candidate gathering (tests restrict interfaces with it).
	DirectSettings func(*webrtc.SettingEngine)
	// ChunkCache is the directory where this device keeps the sealed file
	// chunks that contacts send it over a peer-to-peer channel, until
	// FetchFile assembles their file (docs/files.md). Empty: files always
	// come through the server (contacts' offers to send directly are
	// refused).
	ChunkCache string
	// Chunks, if set, is used instead of ChunkCache: where the chunks
	// contacts send peer to peer are kept (a browser's storage, say).
	Chunks ChunkStore
	// ArchiveSpool is the directory where this device keeps the records of
	// its archive (server-side history, docs/history.md) that it could not
	// put before Close: the next Client with the same folder puts them
	// after its login. Empty: such records are lost when the Client closes
	// (a one-shot command on a slow link, say).
	ArchiveSpool string
	// ArchiveFlushTimeout bounds how long Close waits to put the records
	// still queued (default 3 s); what is left goes to ArchiveSpool.
	ArchiveFlushTimeout time.Duration

	// Keys is this device's end-to-end keyring (docs/security.md), made
	// with seal.New or seal.Load for the user and Device that log in, with
	// its persist function set so that it survives restarts. Nil: the
	// Client makes fresh keys at login, in memory only (a new device each
	// time, which contacts are told of).
	Keys *seal.Keyring
	// Prekeys is how many one-time prekeys the device keeps published.
	// Default 50.
	Prekeys int
	// PrefetchKeys is how many approved contacts' keys the Client fetches
	// in the background after an explicit login, opening the sessions to
	// their devices (one prekey claimed from each) so that the first send
	// to them does not wait (prefetch.go). Default 256; negative: none.
	// Quiet Clients never prefetch.
	PrefetchKeys int
}

// Defaults.
const (
	defaultEventBuffer  = 256
	defaultReconnectMin = 100 * time.Millisecond
	defaultReconnectMax = 30 * time.Second
	defaultDedupSize    = 100_000
	defaultPrekeys      = 50
	defaultPrefetchKeys = 256
	// keysTimeout bounds fetching keys in the background.
	keysTimeout = 15 * time.Second
	// defaultKeepalive is used when the server's Welcome gives none.
	defaultKeepalive = 60 * time.Second
	// dialTimeout bounds connecting (TCP, TLS, Hello/Welcome) when the
	// caller's ctx has no deadline of its own.
	dialTimeout = 15 * time.Second
	// writeTimeout bounds one flush of the send queue to the socket.
	writeTimeout = 15 * time.Second
	// drainTimeout bounds the final flush on Close.
	drainTimeout = 2 * time.Second
	// sendQueueLen bounds the frames waiting for the writer.
	sendQueueLen = 1024
	// pushQueueLen bounds the pushes waiting for the dispatcher before the
	// reader stops reading the connection.
	pushQueueLen = 8192
	// ackInterval and ackEvery coalesce inbox acknowledgements.
	ackInterval = 50 * time.Millisecond
	ackEvery    = 64
	// gapGrace is how long a gap in inbox sequence numbers may last before
	// the SDK asks the server to Sync; syncTimeout is how long it waits for
	// the answer before it may ask again.
	gapGrace     = 100 * time.Millisecond
	syncTimeout  = 10 * time.Second
	maxSyncTries = 3
	// receiptDelay coalesces automatic delivered receipts.
	receiptDelay = 100 * time.Millisecond
	// backlogTimeout releases live pushes held for the inbox if the server
	// never says the inbox is done.
	backlogTimeout = 10 * time.Second
	// historyTimeout bounds a History call that fills a conversation gap;
	// historyFillMax bounds how many messages one fill fetches.
	historyTimeout = 10 * time.Second
	historyFillMax = 1000
	// sentReceiptsSize is how many of its own receipts the SDK remembers to
	// recognise them when the server echoes them.
	sentReceiptsSize = 4096
)

func (o Options) withDefaults() Options {
	if o.EventBuffer <= 0 {
		o.EventBuffer = defaultEventBuffer
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = defaultReconnectMin
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = defaultReconnectMax
	}
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = o.ReconnectMin
	}
	if o.PrefetchKeys == 0 {
		o.PrefetchKeys = defaultPrefetchKeys
	}
	if o.Prekeys <= 0 {
		o.Prekeys = defaultPrekeys
	}
	if o.DedupSize <= 0 {
		o.DedupSize = defaultDedupSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Chunks == nil && o.ChunkCache != "" {
		o.Chunks = disk.ChunkDir{Dir: o.ChunkCache}
	}
	if o.Dialer == nil {
		var d net.Dialer
		o.Dialer = d.DialContext
	}
	return o
}
