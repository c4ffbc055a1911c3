// Package client is natter's Go SDK: the one client implementation that the
// natter command, the load generator and the tests are built on. It speaks
// the protocol of package wire over TLS/TCP.
//
// # Use
//
//	c, err := client.Dial(ctx, client.Options{Addr: "chat.example:7443", Device: dev})
//	sess, err := c.Login(ctx, "alice", password)   // or Signup, or Resume(token)
//	for ev := range c.Events() { ... }              // closed by Close
//	res, err := c.Send(ctx, "bob", []byte("hi"))    // returns once durable on the server
//	c.Logout(ctx); c.Close()
//
// # Connection
//
// One goroutine reads and decodes frames: answers (matched by Ref) go to the
// calls waiting for them, pushes go to an internal queue drained by a second
// goroutine (the dispatcher) that de-duplicates and orders them and hands
// them to the Events channel. A third goroutine owns the socket's writes: it
// drains a bounded queue into a bufio.Writer and flushes when the queue is
// momentarily empty, so bursts become one write. It also sends a Ping every
// third of the server's keepalive (Welcome.Keepalive); silence from the server
// for a whole keepalive is treated as a dead connection.
//
// # Reconnection
//
// Once logged in, a connection that drops without Logout or Close is
// re-established with exponential back-off and full jitter (each wait drawn
// between 0 and a bound that starts at Options.ReconnectMin and doubles to
// Options.ReconnectMax), and the session is resumed with its token: no
// password is needed. Given several addresses of natterd nodes that share
// one store (Options.Addrs, or a name that resolves to several), the
// Client reconnects to the next address, so that the clients of a node
// that died come back on the others, spread in time. The app sees ConnEvent{Up: false} when the
// connection drops and ConnEvent{Up: true} when it is back. The last
// SetPresence and SetReach are applied again on the new connection.
//
// The session ends for good (ConnEvent with Final set, and a non-nil Err)
// when the server refuses the resume (wire.CodeSessionExpired), or says Bye
// with wire.CodeReplaced (the same device logged in elsewhere) or
// wire.CodeLoggedOut. A Bye with any other code (wire.CodeSlowConsumer,
// wire.CodeShutdown, ...) leads to a reconnect.
//
// Calls other than Send fail with an error wrapping ErrConnLost if the
// connection drops while they wait, or if they are made while the SDK is
// reconnecting: they are not retried, since the app may prefer to show the
// failure.
//
// # Sending: exactly once
//
// Send picks a new time-ordered message ID (natter.NewMessageID); SendID lets
// the app choose it. A send waiting for its SendAck when the connection drops
// stays pending and is sent again, with the same ID, as soon as the session is
// resumed; the server stores a message once per (sender, ID). So a Send that
// returns a nil error means the message is durable on the server, exactly
// once. A Send that returns an error (its ctx ended, the session ended) may or
// may not have been stored: retry it with SendID and the returned
// SendResult.ID, which is always set, to keep exactly-once.
//
// # Receiving: events
//
// Events carries, in order:
//
//   - InboxEvent: the stored inbox (what arrived while this device was away),
//     grouped by sender, delivered right after an explicit Signup, Login or
//     Resume. Large inboxes come as several InboxEvents; the last has Done
//     set (an empty inbox gives one InboxEvent with Done and no groups). The
//     messages and receipts in an InboxEvent are never also emitted as
//     MessageEvent or ReceiptEvent.
//   - MessageEvent: a message that arrived live. After an automatic reconnect,
//     or when the SDK fills a gap, messages that were stored on the server
//     meanwhile are emitted one by one as MessageEvents with Offline set, in
//     inbox order (not as an InboxEvent: for the app the session never ended).
//   - ReceiptEvent, ContactsEvent, ContactEvent, PresenceEvent, ReachEvent:
//     the server's pushes.
//   - TypingEvent: a contact is typing (ephemeral: over a peer-to-peer
//     channel or relayed by the server, never stored; see SendTyping).
//   - ConnEvent: the connection went down or came back.
//
// Messages sent from this device (Options.Device) are never emitted: the
// app has them from Send. (The server echoes a message to every device of
// its sender, and keeps it in the sender's inbox too; that echo only moves
// the SDK's inbox bookkeeping on.) Messages the user sent from another
// device are emitted, with From set to the user. Likewise receipts this
// Client sent are not emitted back; but since a receipt does not say which
// device sent it, a later Client on the same device may see them in the
// inbox after its login.
//
// While live pushes arrive during the inbox that follows a login or resume,
// they are held until the inbox is complete, so that the app sees the stored
// messages first.
//
// The app must keep reading Events. If it does not, the SDK buffers a few
// thousand events and then stops reading the connection; the server will in
// time disconnect it as a slow consumer, and the SDK will reconnect and
// resume once the app reads again. Nothing is lost: see below.
//
// # Delivery bookkeeping
//
// Every Msg and Rcpt carries its sequence number in the user's inbox. The SDK
// tells the server how far it got with wire.Ack, but only for entries already
// handed to the Events channel (so delivery is at least once), only up to the
// highest contiguous sequence number it has handled, and coalesced: at most
// every 50 ms or every 64 entries, and once more before a clean Logout or
// Close. If it sees a gap (say 7 arrives after 5) that lasts
// longer than a short grace period, it sends wire.Sync to have the server
// send the missing entries again.
//
// De-duplication: message IDs already emitted (and IDs this Client sent) are
// kept in a bounded set (the last Options.DedupSize IDs), so a message
// delivered again after a reconnect or a Sync never reaches Events twice.
// Receipts are de-duplicated by inbox sequence number.
//
// Per conversation the SDK remembers the last conversation sequence number
// it has seen (from messages and from this Client's SendAcks). If a live
// message skips ahead, the missing messages are fetched with History and
// emitted first (with Offline set), so that each conversation is seen in
// order. The first message of a conversation seen by a Client sets the
// starting point; earlier history is the app's to ask for.
//
// With Options.AutoDeliveredReceipts the SDK sends a "delivered" receipt for
// every message of someone else's it hands to the app, coalesced per peer
// (one receipt per peer, naming the newest message handed over and the
// highest conversation sequence number).
//
// # Receipts on every path
//
// A message that went peer to peer has no conversation sequence number, so
// a receipt up to a number (MarkRead, MarkDelivered) cannot cover it. The
// app marks what it has shown by message instead: MarkReadID and
// MarkDeliveredID name the newest message shown, whatever path each took,
// and the SDK adds the highest sequence number up to it. On the sender's
// side ReceiptEvent.Covers(id, convSeq) says whether a receipt covers one
// of the user's messages (ReceiptEvent.Direct lists those without a number
// that it covers, as this Client saw the conversation). The server relays
// the message ID live but stores only the number: a receipt replayed from
// the inbox (an InboxEvent's, or after a reconnect) names no message.
//
// # Quiet sessions
//
// Options.Quiet makes the Client's sessions quiet (wire.Login): they work
// like any other but do not count for presence and register no connection
// info, for one-shot commands run beside the user's real session.
package client
