// Package wire is natter's client–server protocol: frame types, the payload of
// each, error codes and the two framings. It does no networking.
//
// # Framing
//
// Over TLS/TCP every frame is a 4-byte big-endian length N, then N bytes: one
// type byte and a payload. Over WebSocket every binary message is one frame
// without the length: the type byte and the payload. N is at least 1 and at
// most the receiver's frame limit (DefaultMaxFrame unless configured; the
// server says its limit in Welcome). Payloads are JSON objects (the structs in
// this package); an empty payload means an empty object.
//
// # Flow
//
//	client                                 server
//	Hello{v}                      ──▶
//	                              ◀──      Welcome{v, limits}   (or Error, close)
//	Signup | Login | Resume       ──▶
//	                              ◀──      Authed{token} | Error
//	                              ◀──      Contacts (every contact, with presence)
//	                              ◀──      Reach (connection info of online contacts' devices)
//	                              ◀──      Inbox … Inbox{done}  (what arrived while offline, grouped by sender)
//	Send{id,to,body}              ──▶
//	                              ◀──      SendAck{id, conv_seq, recipient_online}
//	                              ◀──      Msg / Rcpt / Presence / ContactUpdate / Reach  (pushed as they happen)
//	Ack{upto}                     ──▶      (device's inbox cursor; no answer)
//	Typing{to}                    ──▶      (no answer; the contact's online devices get TypingIn{from})
//	IceServers                    ──▶
//	                              ◀──      IceConfig{stun/turn port, short-lived credentials}
//	Signal{to, device, data}      ──▶      (offer, answer, candidates for a direct connection)
//	                              ◀──      OK; the peer device gets Signal{from, from_device, data}
//	Ping                          ──▶
//	                              ◀──      Pong
//	Logout                        ──▶
//	                              ◀──      OK, then the server closes
//
// Requests carry a client-chosen Ref that the answer (OK, Error or the
// request's own answer type) echoes. Pushed frames have no Ref.
//
// # Versions
//
// Version is the protocol version this package speaks. Changes:
//
//	1  first version.
//	2  IceServers (STUN/TURN credentials), Signal (peer-to-peer
//	   signalling between two devices of approved contacts), Copy and
//	   Msg.Direct (a message that went peer to peer, copied to the user's
//	   own other devices), PathReport (peer-to-peer channels, for metrics).
//	3  the end-to-end key directory (PublishKeys, FetchKeys, Keys,
//	   KeysChanged) and ChangePassword; message bodies are sealed
//	   envelopes (docs/security.md), so a version 2 client could not read
//	   what a version 3 client sends; file chunks (PutChunk, HaveChunks,
//	   GetChunk, Send.Chunks).
//	4  the archive, server-side history (ArchiveSet, ArchivePut,
//	   ArchiveGet, ArchiveKeyPut, ArchiveState).
//	5  quiet sessions (Signup, Login and Resume take quiet: a session
//	   that does not count for presence and takes no connection info);
//	   typing notifications (Typing, and TypingIn pushed, never stored);
//	   receipts that name a message by ID (Receipt.ID and Rcpt.ID), so
//	   that a message that went peer to peer can be marked delivered or
//	   read.
//	6  (in progress; each change adds its line here)
//	   RemoveDevice (a user removes one of their devices; Bye
//	   device_removed), error code too_many_devices (a new device over
//	   the server's cap per user).
//	   Signal kind "ack": a session acknowledgement (session: the
//	   sealed session's ID in hex, data: its MAC) from the device that
//	   opened a message carrying the session's init, to the device that
//	   sealed it, which then stops attaching the init; also between two
//	   devices of one user.
package wire

// Version is the protocol version spoken by this package.
const Version = 6

// DefaultMaxFrame is the default limit on a frame's size (type byte and
// payload), in bytes.
const DefaultMaxFrame = 1 << 20

// MaxBody bounds a message body in bytes. A Send frame with its JSON
// overhead must fit in DefaultMaxFrame.
const MaxBody = 512 << 10
