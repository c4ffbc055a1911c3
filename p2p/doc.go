// Package p2p makes direct, encrypted connections between two devices of
// contacts: WebRTC data channels (pion/webrtc), so that the browser client
// can take part with its native RTCPeerConnection, with the offer, answer
// and candidates signalled through natterd (wire.Signal and wire.SignalIn).
//
// The connection goes the most direct way ICE finds: host candidates on the
// same LAN, server-reflexive ones (natterd's STUN) for UDP hole punching
// through NATs, else natterd's TURN relay. Where none works, Dial fails and
// the SDK carries on over its server connection: that fallback is not this
// package's business.
//
// # Use
//
//	m, err := p2p.New(p2p.Config{
//		Self: "alice", SelfDevice: dev,
//		Signaler:   sig,                          // sends wire.Signal
//		ICEServers: p2p.ICEServers(iceCfg, host), // from wire.IceConfig
//	})
//	// for every wire.SignalIn, in order:
//	m.HandleSignal(in.From, in.FromDevice, in.Session, in.Kind, in.Data)
//
//	c, err := m.Dial(ctx, "bob", bobsDevice)   // we offer
//	for c := range m.Incoming() { ... }       // they offered
//
//	c.Send(msg)                    // reliable, ordered, up to MaxMessageSize
//	for msg := range c.Messages() { ... }
//	<-c.Done()                     // path broke or closed: c.Err() says why
//	m.Close()
//
// # Signalling
//
// A connection attempt is a session, named by a random ID the offerer
// picks. The offerer makes a PeerConnection with one data channel
// (negotiated out of band: label "natter", ID 0, reliable and ordered),
// and sends "offer" (a JSON webrtc.SessionDescription) and then its
// candidates as they are gathered, one "candidate" each (a JSON
// webrtc.ICECandidateInit: trickle ICE). The answerer applies the offer
// and sends "answer" and its own candidates. ICE checks the candidate
// pairs, DTLS 1.2 authenticates both ends against the certificate
// fingerprints in the SDP and encrypts, SCTP runs the data channel on
// top; once it is open the Conn is handed out. "bye" (no data) ends the
// session, before or after it connected. Candidates that arrive before the
// offer or answer are held until it is applied.
//
// Signals for unknown sessions are ignored, as are offers for the last few
// hundred sessions that have ended, so a late or replayed signal never
// opens a connection; so are signals that do not decode (bad JSON, an SDP
// or candidate that does not parse: see decodeSignal, which is fuzzed).
// Sessions are keyed by the sending device as well as the ID, so one
// contact cannot touch another's sessions.
//
// # Glare
//
// When two devices dial each other at once, each gets the other's offer
// while its own is pending. The device whose (user, device) is smaller
// (user names compared first, then device IDs, as strings) keeps the
// offerer role and ignores the other offer; the larger abandons its own
// attempt (with a bye) and answers. Both Dials return the one connection
// that results. Likewise a Dial to a device whose offer we are already
// answering takes that attempt over instead of starting a second one.
//
// # Paths and timeouts
//
// Conn.Path says whether the selected candidate pair is direct or goes
// through a TURN relay on either side. ICE keepalives run every
// Config.Keepalive (1 s) on an idle path and measure Conn.RTT; after
// Config.DisconnectedTimeout (2 s) of silence ICE calls the path
// disconnected (it may recover), after Config.FailedTimeout (5 s) it has
// failed and the Conn ends, so that the SDK can fall back to the server
// within seconds, not pion's default 30. A Close on either side, a bye, a
// DTLS close or an SCTP failure end it at once. An attempt that does not
// connect within Config.ConnectTimeout (10 s) fails.
//
// # Messages
//
// The data channel carries fragments of at most 16 KiB (the largest
// message every browser takes): a flag byte (0: last fragment of a
// message, 1: more follow) and up to 16383 bytes of the message. Send
// applies back-pressure: it waits while more than 1 MiB is queued for the
// peer. A Conn does not acknowledge messages: what was queued or in flight
// when it ended may be lost, and the SDK must send it again another way.
//
// # Threading
//
// Manager and Conn are safe for concurrent use. HandleSignal only decodes
// and queues, so it can be called from the SDK's read loop. Each attempt
// has one goroutine that applies its signals and owns its PeerConnection,
// one that calls the Signaler (in order, each call bounded by
// Config.SignalTimeout), and once connected one that reads the channel.
// Close waits for all of them.
//
// # In the browser
//
// Built for GOOS=js, the package runs on pion's js build, which drives the
// browser's own RTCPeerConnection; signalling, glare, framing and the API
// are the same, and a browser and a native device connect to each other.
// What differs is behind small build-tagged seams (the *_native.go and
// *_js.go files):
//
//   - Path and RTT come from the RTCPeerConnection's getStats(): the
//     selected candidate pair (the transport's selectedCandidatePairId,
//     else the pair marked selected or nominated and succeeded), its
//     currentRoundTripTime, and its candidates' candidateType ("relay" on
//     either side makes it relayed). The statistics are read when the
//     channel opens and then every Config.Keepalive; Path and RTT return
//     the last reading and never wait. Promises are awaited from
//     goroutines, their then and catch callbacks feeding a channel, so the
//     JS event loop never blocks.
//   - ICE timeouts and nomination are the browser's own: Config's
//     DisconnectedTimeout, FailedTimeout and Keepalive do not apply (a
//     broken path may take the browser longer than FailedTimeout to call
//     failed), nor do pion's waits before nominating a reflexive pair.
//   - The ICE servers, TURN credentials included, are given to each
//     RTCPeerConnection when it is made (the browser does not take new
//     ones later): SetICEServers applies to attempts started after it.
//   - Candidates are signalled as the browser gives them (pion's js build
//     would drop their sdpMid), and the data channel's binaryType is
//     "arraybuffer", so that binary messages arrive in order as bytes.
//   - Closing does not wait for a graceful DTLS and SCTP shutdown: the
//     browser has none to wait for, so Close just closes.
//   - The DTLS certificate is the browser's: pion's js build does not pass
//     Config.Certificate on, so each RTCPeerConnection makes its own.
//     Conn.LocalFingerprint is read from the local description, and
//     RemoteFingerprint from the certificate the peer proved (Chromium's
//     getRemoteCertificates) or else from the remote description's one
//     fingerprint, which the browser checked the handshake against.
//     Manager.LocalFingerprint is empty, since no one certificate holds
//     for every connection.
//   - pion logs nothing: the browser keeps its own logs.
//
// # Security
//
// The channel is encrypted and authenticated by DTLS, but the fingerprints
// it checks travel in SDP through natterd. Conn.LocalFingerprint and
// RemoteFingerprint expose them so that the SDK can bind them to the
// devices' end-to-end keys (client: a device's signed bundle names its
// certificate's Fingerprint, and a channel whose peer proved another is
// closed). Every connection of one Manager uses the same certificate
// (Config.Certificate), except in the browser (see above).
package p2p
