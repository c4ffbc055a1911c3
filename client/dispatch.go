package client

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client/internal/ringset"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// pushQueue carries pushes (and the Client's own marks) from the readers
// to the dispatcher, in order. push waits while it is full, which stops the
// reader from reading: back-pressure when the app does not read Events.
type pushQueue struct {
	mu      sync.Mutex
	items   []any
	wake    chan struct{} // (cap 1) items were added
	space   chan struct{} // (cap 1) items were taken
	closing <-chan struct{}
}

func (q *pushQueue) init(closing <-chan struct{}) {
	q.wake = make(chan struct{}, 1)
	q.space = make(chan struct{}, 1)
	q.closing = closing
}

// push adds v, waiting while the queue is full. It returns false if the
// Client is closing.
func (q *pushQueue) push(v any) bool {
	for {
		q.mu.Lock()
		if len(q.items) < pushQueueLen {
			q.items = append(q.items, v)
			q.mu.Unlock()
			signal(q.wake)
			return true
		}
		q.mu.Unlock()
		select {
		case <-q.space:
		case <-q.closing:
			return false
		}
	}
}

// pushForce adds v even if the queue is full; for the Client's own marks.
func (q *pushQueue) pushForce(v any) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	signal(q.wake)
}

// take removes and returns everything queued.
func (q *pushQueue) take() []any {
	q.mu.Lock()
	items := q.items
	q.items = nil
	q.mu.Unlock()
	if len(items) > 0 {
		signal(q.space)
	}
	return items
}

// rcptKey identifies a receipt this Client sent.
type rcptKey struct {
	peer  natter.UserID
	upto  uint64
	id    natter.MessageID
	state natter.ReceiptState
}

// tracker is the delivery bookkeeping: which inbox entries were handed to
// the app, which message IDs were seen, and how far each conversation got.
// It is shared by the dispatcher and the goroutines that send.
type tracker struct {
	mu    sync.Mutex
	user  natter.UserID
	size  int
	ids   *ringset.Set[natter.MessageID] // emitted, or sent by this Client
	rcpts *ringset.Set[rcptKey]          // receipts this Client sent
	conv  map[natter.UserID]uint64       // last conversation seq seen, by peer
	book  map[natter.UserID]*convBook    // messages seen, to resolve receipts (receipts.go)

	// Inbox sequence numbers: every entry up to contig was handled (handed
	// to the app or dropped as a duplicate); above holds handled entries
	// past a gap. base says whether contig is known: a new Client learns it
	// from the first inbox entry or Inbox.Through it sees.
	contig    uint64
	base      bool
	above     map[uint64]struct{}
	ackedUpto uint64 // the last Ack queued on the current connection
	// own is set when this Client sends a message or a receipt: the
	// server stores an inbox entry for it that it does not push back to
	// this device, so Close syncs to learn (and acknowledge) it.
	own bool
}

func (t *tracker) init(size int) {
	t.size = size
	t.reset("")
}

func (t *tracker) reset(user natter.UserID) {
	t.user = user
	t.ids = ringset.New[natter.MessageID](t.size)
	t.rcpts = ringset.New[rcptKey](sentReceiptsSize)
	t.conv = make(map[natter.UserID]uint64)
	t.book = make(map[natter.UserID]*convBook)
	t.contig, t.base, t.ackedUpto = 0, false, 0
	t.above = make(map[uint64]struct{})
}

// noteOwnID records a message ID this Client sends, so that the server's
// copy of it is never emitted.
func (t *tracker) noteOwnID(id natter.MessageID) {
	t.mu.Lock()
	t.ids.Add(id)
	t.own = true
	t.mu.Unlock()
}

// noteOwnReceipt records a receipt this Client sends: as the server
// echoes it live (with its ID) and as it keeps it (without).
func (t *tracker) noteOwnReceipt(peer natter.UserID, upto uint64, id natter.MessageID, state natter.ReceiptState) {
	t.mu.Lock()
	t.rcpts.Add(rcptKey{peer, upto, id, state})
	t.rcpts.Add(rcptKey{peer, upto, "", state})
	t.own = true
	t.mu.Unlock()
}

// noteConv records that the conversation with peer reached seq.
func (t *tracker) noteConv(peer natter.UserID, seq uint64) {
	t.mu.Lock()
	t.noteConvLocked(peer, seq)
	t.mu.Unlock()
}

func (t *tracker) noteConvLocked(peer natter.UserID, seq uint64) {
	if seq > t.conv[peer] {
		t.conv[peer] = seq
	}
}

// handledLocked records that inbox entry seq was handled.
func (t *tracker) handledLocked(seq uint64) {
	if seq == 0 {
		return
	}
	if !t.base {
		t.contig, t.base = seq-1, true
	}
	if seq <= t.contig {
		return
	}
	t.above[seq] = struct{}{}
	t.absorbLocked()
}

// throughLocked records that every inbox entry up to seq was handled (an
// Inbox frame covers them all).
func (t *tracker) throughLocked(seq uint64) {
	if seq == 0 || t.base && seq <= t.contig {
		return
	}
	t.contig, t.base = seq, true
	for s := range t.above {
		if s <= seq {
			delete(t.above, s)
		}
	}
	t.absorbLocked()
}

func (t *tracker) absorbLocked() {
	for {
		if _, ok := t.above[t.contig+1]; !ok {
			return
		}
		delete(t.above, t.contig+1)
		t.contig++
	}
}

// seenLocked reports whether inbox entry seq was already handled.
func (t *tracker) seenLocked(seq uint64) bool {
	if seq == 0 || !t.base {
		return false
	}
	if seq <= t.contig {
		return true
	}
	_, ok := t.above[seq]
	return ok
}

// toAck returns how far the server may be told this device got, if that
// moved since the last Ack.
func (t *tracker) toAck() (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.contig, t.base && t.contig > t.ackedUpto
}

// acked records an Ack queued for upto.
func (t *tracker) acked(upto uint64) {
	t.mu.Lock()
	t.ackedUpto = max(t.ackedUpto, upto)
	t.mu.Unlock()
}

// state returns what the dispatcher needs to schedule Acks and Syncs.
func (t *tracker) state() (unacked uint64, gap bool, contig uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.base && t.contig > t.ackedUpto {
		unacked = t.contig - t.ackedUpto
	}
	return unacked, len(t.above) > 0, t.contig
}

// timer is a time.Timer that is either armed or not; C is nil when not, so
// that a select on it blocks.
type timer struct {
	t     *time.Timer
	armed bool
}

// arm starts the timer unless it is already running.
func (t *timer) arm(d time.Duration) {
	if t.armed {
		return
	}
	if t.t == nil {
		t.t = time.NewTimer(d)
	} else {
		t.t.Reset(d)
	}
	t.armed = true
}

// rearm restarts the timer for d.
func (t *timer) rearm(d time.Duration) {
	t.stop()
	t.arm(d)
}

func (t *timer) stop() {
	if t.armed {
		t.t.Stop()
		t.armed = false
	}
}

// C returns the channel to select on, nil when not armed. The receiver
// must call fired after receiving.
func (t *timer) C() <-chan time.Time {
	if !t.armed {
		return nil
	}
	return t.t.C
}

func (t *timer) fired() { t.armed = false }

// syncDone tells the dispatcher that its Sync was answered or failed.
type syncDone struct{}

// closeSync asks the dispatcher, as Close begins, to send the receipts
// waiting for their timer and then Sync, so that the inbox entries of what
// this Client sent (which the server does not push back to it) are known
// and acknowledged before it closes. done is closed once the answer has
// been handled, or at once if there is nothing to learn.
type closeSync struct{ done chan struct{} }

// closeSyncDone says that the Sync of a closeSync was answered or failed.
type closeSyncDone struct{ done chan struct{} }

// dispatcher is the state of the dispatcher goroutine.
type dispatcher struct {
	c  *Client
	tr *tracker

	backlog   bool  // an inbox follows a login or resume: hold live pushes
	initial   bool  // that inbox follows an explicit login: InboxEvents
	held      []any // live Msg and Rcpt held during the inbox
	syncing   bool  // a Sync is outstanding
	syncAt    time.Time
	syncAfter uint64 // the After of the last Sync
	syncTries int    // Syncs sent with that After

	delivered map[natter.UserID]autoRcpt // delivered receipts to send, by peer
	rcptSent  map[natter.UserID]autoRcpt // delivered receipts sent, by peer

	ackT, gapT, rcptT, backlogT timer
}

// dispatchLoop is the dispatcher goroutine: it hands pushes to the app in
// order, de-duplicated, and schedules Acks, Syncs and receipts.
func (c *Client) dispatchLoop() {
	defer c.wg.Done()
	defer close(c.dispatchDone)
	d := &dispatcher{
		c:         c,
		tr:        &c.tr,
		delivered: make(map[natter.UserID]autoRcpt),
		rcptSent:  make(map[natter.UserID]autoRcpt),
	}
	defer d.ackT.stop()
	defer d.gapT.stop()
	defer d.rcptT.stop()
	defer d.backlogT.stop()
	for {
		for _, it := range c.dq.take() {
			if !d.handle(it) {
				return
			}
		}
		select {
		case <-c.dq.wake:
		case <-d.ackT.C():
			d.ackT.fired()
			d.flushAck()
		case <-d.gapT.C():
			d.gapT.fired()
			d.checkGap()
		case <-d.rcptT.C():
			d.rcptT.fired()
			d.sendDelivered()
		case <-d.backlogT.C():
			d.backlogT.fired()
			c.log.Warn("server did not finish the inbox; releasing live messages", "held", len(d.held))
			if !d.endBacklog() {
				return
			}
		case req := <-c.ackReq:
			d.flushAck()
			close(req)
		case <-c.stopDispatch:
			// Receipts still waiting for their coalescing timer go out
			// now; Close drains the connection's queue before closing.
			d.sendDelivered()
			return
		}
	}
}

// emit hands ev to the app. It returns false if the Client is closing.
// While it waits for a slow app, it keeps acknowledging the events handed
// over so far, on schedule and on request.
func (d *dispatcher) emit(ev Event) bool {
	for {
		select {
		case d.c.events <- ev:
			return true
		case <-d.ackT.C():
			d.ackT.fired()
			d.flushAck()
		case req := <-d.c.ackReq:
			d.flushAck()
			close(req)
		case <-d.c.stopDispatch:
			return false
		}
	}
}

// handle processes one queued item. It returns false if the Client is
// closing.
func (d *dispatcher) handle(it any) bool {
	switch v := it.(type) {
	case authMark:
		d.tr.mu.Lock()
		if d.tr.user != v.user {
			d.tr.reset(v.user)
			d.held = nil
			clear(d.delivered)
			clear(d.rcptSent)
		}
		d.tr.ackedUpto = 0 // a new connection: tell the server again
		d.tr.mu.Unlock()
		d.syncing = false
		d.backlog, d.initial = true, !v.reconnect
		d.backlogT.rearm(backlogTimeout)
		if v.reconnect && !d.emit(ConnEvent{Up: true}) {
			return false
		}
		d.ackT.arm(ackInterval)
		return true
	case ConnEvent:
		d.syncing = false
		return d.emit(v)
	case syncDone:
		d.syncing = false
		d.schedule()
		return true
	case closeSync:
		d.sendDelivered()
		d.tr.mu.Lock()
		own := d.tr.own
		d.tr.own = false
		d.tr.mu.Unlock()
		_, _, after := d.tr.state()
		if !own || d.backlog || d.c.liveConn() == nil ||
			!d.c.fireAndForget("sync at close", func(ref uint64) any { return &wire.Sync{Ref: ref, After: after} },
				func() { d.c.dq.pushForce(closeSyncDone(v)) }) {
			close(v.done)
		}
		return true
	case closeSyncDone:
		d.schedule()
		close(v.done)
		return true
	case *wire.Contacts:
		return d.emit(ContactsEvent{Contacts: v.Contacts})
	case *wire.ContactUpdate:
		return d.emit(ContactEvent{Contact: v.Contact})
	case *wire.Presence:
		return d.emit(PresenceEvent{Presence: *v})
	case *wire.Reach:
		return d.emit(ReachEvent{Reach: *v})
	case PathEvent:
		return d.emit(v)
	case KeysEvent:
		return d.emit(v)
	case *wire.TypingIn:
		return d.emit(TypingEvent{From: v.From})
	case TypingEvent: // over a peer-to-peer channel
		return d.emit(v)
	case directMsg:
		return d.direct(v)
	case *wire.Inbox:
		return d.inbox(v)
	case *wire.Msg, *wire.Rcpt:
		if d.backlog {
			d.held = append(d.held, it)
			return true
		}
		ok := d.entry(it, false)
		d.schedule()
		return ok
	}
	d.c.log.Error("dispatcher: unexpected item", "item", it)
	return true
}

// isOwn reports whether m was sent from this device.
func (d *dispatcher) isOwn(m *wire.Message) bool {
	return m.From == d.tr.user && m.FromDevice == d.c.opts.Device
}

// peerOf returns the other party of a message of the user's.
func (d *dispatcher) peerOf(m *wire.Message) natter.UserID {
	if m.From == d.tr.user {
		return m.To
	}
	return m.From
}

// inbox processes an Inbox frame: the inbox after a login or resume, or an
// answer to Sync.
func (d *dispatcher) inbox(in *wire.Inbox) bool {
	sync := in.Ref != 0 || !d.backlog
	if !sync && d.initial {
		if !d.inboxEvent(in) {
			return false
		}
	} else {
		var entries []any
		for i := range in.Groups {
			g := &in.Groups[i]
			for j := range g.Messages {
				entries = append(entries, &g.Messages[j])
			}
			for j := range g.Receipts {
				entries = append(entries, &g.Receipts[j])
			}
		}
		slices.SortStableFunc(entries, func(a, b any) int { return cmp.Compare(seqOf(a), seqOf(b)) })
		for _, e := range entries {
			if !d.entry(e, true) {
				return false
			}
		}
	}
	d.tr.mu.Lock()
	d.tr.throughLocked(in.Through)
	d.tr.mu.Unlock()
	if in.Done {
		if sync {
			d.syncing = false
		} else if !d.endBacklog() {
			return false
		}
	}
	d.schedule()
	return true
}

func seqOf(e any) uint64 {
	switch e := e.(type) {
	case *wire.Msg:
		return e.Seq
	case *wire.Rcpt:
		return e.Seq
	}
	return 0
}

// inboxEvent emits the inbox after an explicit login as an InboxEvent,
// without what the app has already seen.
func (d *dispatcher) inboxEvent(in *wire.Inbox) bool {
	t := d.tr
	var groups []wire.InboxGroup
	var opening []*wire.InboxGroup
	t.mu.Lock()
	for _, g := range in.Groups {
		var out wire.InboxGroup
		out.From = g.From
		for _, m := range g.Messages {
			if !t.ids.Has(m.ID) && !d.isOwn(&m.Message) {
				out.Messages = append(out.Messages, m)
			}
		}
		opening = append(opening, &out)
		for _, r := range g.Receipts {
			if !t.seenLocked(r.Seq) && !d.isOwnReceiptLocked(&r) {
				out.Receipts = append(out.Receipts, r)
			}
		}
	}
	t.mu.Unlock()
	var openErrs map[natter.MessageID]error
	for _, g := range opening { // outside the tracker's lock: opening may fetch keys
		kept := g.Messages[:0]
		for _, m := range g.Messages {
			err := d.open(&m.Message)
			switch {
			case errors.Is(err, seal.ErrReplay):
				continue // this device opened it before: a duplicate
			case err != nil:
				if openErrs == nil {
					openErrs = make(map[natter.MessageID]error)
				}
				openErrs[m.ID] = err
			default:
				d.c.noteOpened(m.Seq, m.ID)
				path := PathServer
				if m.Direct {
					path = PathDirect
				}
				d.c.archiveOpened(m.Message, path)
			}
			kept = append(kept, m)
		}
		g.Messages = kept
		if len(g.Messages) > 0 || len(g.Receipts) > 0 {
			groups = append(groups, *g)
		}
	}
	if len(groups) > 0 || in.Done {
		if !d.emit(InboxEvent{Groups: groups, Done: in.Done, OpenErrs: openErrs}) {
			return false
		}
	}
	t.mu.Lock()
	for _, g := range in.Groups {
		for _, m := range g.Messages {
			t.ids.Add(m.ID)
			t.noteConvLocked(d.peerOf(&m.Message), m.ConvSeq)
			t.handledLocked(m.Seq)
		}
		for _, r := range g.Receipts {
			t.handledLocked(r.Seq)
		}
	}
	for _, g := range groups {
		for _, m := range g.Messages {
			t.noteSeenLocked(&m.Message)
		}
	}
	t.mu.Unlock()
	for _, g := range groups {
		for _, m := range g.Messages {
			d.noteDelivered(&m.Message)
		}
	}
	return true
}

// isOwnReceiptLocked reports whether r is a receipt this Client sent.
func (d *dispatcher) isOwnReceiptLocked(r *wire.Rcpt) bool {
	return r.From == d.tr.user && d.tr.rcpts.Has(rcptKey{r.To, r.Upto, r.ID, r.State})
}

// entry processes one inbox entry (a *wire.Msg or *wire.Rcpt), live or from
// the store (offline): it drops duplicates, fills conversation gaps and
// hands the rest to the app.
func (d *dispatcher) entry(e any, offline bool) bool {
	t := d.tr
	switch e := e.(type) {
	case *wire.Msg:
		t.mu.Lock()
		dup := t.ids.Has(e.ID) || d.isOwn(&e.Message)
		peer := d.peerOf(&e.Message)
		last, known := t.conv[peer]
		if dup {
			t.ids.Add(e.ID)
			t.noteConvLocked(peer, e.ConvSeq)
			t.handledLocked(e.Seq)
			t.learnSeqLocked(&e.Message)
		}
		t.mu.Unlock()
		if dup {
			return true
		}
		if known && e.ConvSeq > last+1 {
			if !d.fill(peer, last, e.ConvSeq) {
				return false
			}
		}
		path := PathServer
		if e.Direct {
			path = PathDirect
		}
		ev := MessageEvent{Message: e.Message, Seq: e.Seq, Offline: offline, Path: path}
		ev.OpenErr = d.open(&ev.Message)
		ev.File, _ = parseFile(ev.Message.Body)
		if errors.Is(ev.OpenErr, seal.ErrReplay) {
			// This device opened it before (say, peer to peer, and now the
			// copy comes back), or it is replayed: nothing new for the app.
			t.mu.Lock()
			t.ids.Add(e.ID)
			t.handledLocked(e.Seq)
			t.mu.Unlock()
			return true
		}
		if !d.emit(ev) {
			return false
		}
		if ev.OpenErr == nil {
			d.c.noteOpened(e.Seq, e.ID)
			d.c.archiveOpened(ev.Message, path)
		}
		t.mu.Lock()
		t.ids.Add(e.ID)
		t.noteConvLocked(peer, e.ConvSeq)
		t.handledLocked(e.Seq)
		t.noteSeenLocked(&e.Message)
		t.mu.Unlock()
		d.noteDelivered(&e.Message)
	case *wire.Rcpt:
		t.mu.Lock()
		dup := t.seenLocked(e.Seq) || d.isOwnReceiptLocked(e)
		var direct []natter.MessageID
		if !dup {
			direct = t.resolveLocked(e)
		}
		t.mu.Unlock()
		if !dup && !d.emit(ReceiptEvent{Rcpt: *e, Direct: direct}) {
			return false
		}
		t.mu.Lock()
		t.handledLocked(e.Seq)
		t.mu.Unlock()
	}
	return true
}

// fill fetches and emits the messages of the conversation with peer between
// last and upto (exclusive) that the app has not seen, so that it sees the
// conversation in order. A failure is logged: the message that revealed the
// gap is emitted anyway.
func (d *dispatcher) fill(peer natter.UserID, last, upto uint64) bool {
	n := upto - last - 1
	if n > historyFillMax {
		last, n = upto-1-historyFillMax, historyFillMax
	}
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	stop := make(chan struct{})
	go func() { // Close must not wait for the fill
		select {
		case <-d.c.stopDispatch:
			cancel()
		case <-stop:
		}
	}()
	msgs, err := d.c.History(ctx, peer, last, int(n))
	close(stop)
	cancel()
	if err != nil {
		d.c.log.Warn("could not fill conversation gap", "peer", peer, "after", last, "before", upto, "err", err)
		return true
	}
	for i := range msgs {
		m := &msgs[i].Message
		if m.ConvSeq >= upto {
			break
		}
		t := d.tr
		t.mu.Lock()
		dup := t.ids.Has(m.ID) || d.isOwn(m)
		t.mu.Unlock()
		if dup {
			continue
		}
		if errors.Is(msgs[i].OpenErr, seal.ErrReplay) {
			continue
		}
		if !d.emit(msgs[i]) {
			return false
		}
		if msgs[i].OpenErr == nil {
			d.c.noteOpened(0, m.ID)
		}
		t.mu.Lock()
		t.ids.Add(m.ID)
		t.noteConvLocked(peer, m.ConvSeq)
		t.noteSeenLocked(m)
		t.mu.Unlock()
		d.noteDelivered(m)
	}
	return true
}

// endBacklog ends the holding of live pushes after an inbox and processes
// those held.
func (d *dispatcher) endBacklog() bool {
	d.backlog, d.initial = false, false
	d.backlogT.stop()
	held := d.held
	d.held = nil
	for _, e := range held {
		if !d.entry(e, false) {
			return false
		}
	}
	d.schedule()
	return true
}

// schedule arms the Ack and gap timers as the bookkeeping requires.
func (d *dispatcher) schedule() {
	unacked, gap, _ := d.tr.state()
	switch {
	case unacked >= ackEvery:
		d.flushAck()
	case unacked > 0:
		d.ackT.arm(ackInterval)
	}
	if gap && !d.backlog {
		d.gapT.arm(gapGrace)
	} else if !gap {
		d.gapT.stop()
	}
}

// flushAck sends an Ack if there is something to acknowledge, and tries
// again later if it could not.
func (d *dispatcher) flushAck() {
	cn := d.c.liveConn()
	if cn == nil {
		return // the next login or resume schedules it
	}
	if !d.c.flushAck(cn) {
		d.ackT.arm(ackInterval)
	}
}

// checkGap asks the server to Sync if a gap in inbox sequence numbers has
// lasted the grace period.
func (d *dispatcher) checkGap() {
	_, gap, after := d.tr.state()
	if !gap || d.backlog {
		return
	}
	if d.syncing && time.Since(d.syncAt) < syncTimeout {
		d.gapT.arm(syncTimeout)
		return
	}
	if d.c.liveConn() == nil {
		return // the inbox after the resume fills it
	}
	if after != d.syncAfter {
		d.syncAfter, d.syncTries = after, 0
	}
	if d.syncTries >= maxSyncTries {
		// The server answered but did not fill the gap: these entries are
		// not for this device. Skip them rather than stop acknowledging.
		d.tr.mu.Lock()
		next := uint64(0)
		for s := range d.tr.above {
			if next == 0 || s < next {
				next = s
			}
		}
		d.tr.throughLocked(next - 1)
		d.tr.mu.Unlock()
		d.c.log.Warn("inbox gap not filled by sync; skipping it", "after", after, "next", next)
		d.schedule()
		return
	}
	d.syncTries++
	d.c.log.Debug("gap in inbox; syncing", "after", after)
	if d.c.fireAndForget("sync", func(ref uint64) any { return &wire.Sync{Ref: ref, After: after} },
		func() { d.c.dq.pushForce(syncDone{}) }) {
		d.syncing, d.syncAt = true, time.Now()
		d.gapT.arm(syncTimeout)
	} else {
		d.gapT.arm(gapGrace)
	}
}

// autoRcpt is an automatic delivered receipt: up to a conversation
// sequence number and a message (the newest handed to the app, whatever
// its path).
type autoRcpt struct {
	upto uint64
	id   natter.MessageID
}

// noteDelivered schedules a delivered receipt for m if the app wants them.
// m was handed to the app after every message of its sender's it was
// handed before: the receipt names it, and the highest sequence number.
func (d *dispatcher) noteDelivered(m *wire.Message) {
	if !d.c.opts.AutoDeliveredReceipts || m.From == d.tr.user {
		return
	}
	p := d.delivered[m.From]
	p.upto = max(p.upto, m.ConvSeq, d.rcptSent[m.From].upto)
	p.id = m.ID
	d.delivered[m.From] = p
	d.rcptT.arm(receiptDelay)
}

// sendDelivered sends the delivered receipts scheduled, one per peer.
func (d *dispatcher) sendDelivered() {
	if d.c.liveConn() == nil {
		if len(d.delivered) > 0 {
			d.rcptT.arm(receiptDelay)
		}
		return
	}
	for peer, p := range d.delivered {
		delete(d.delivered, peer)
		if p == d.rcptSent[peer] {
			continue
		}
		d.rcptSent[peer] = p
		d.tr.noteOwnReceipt(peer, p.upto, p.id, natter.ReceiptDelivered)
		d.c.fireAndForget("delivered receipt", func(ref uint64) any {
			return &wire.Receipt{Ref: ref, Peer: peer, Upto: p.upto, ID: p.id, State: natter.ReceiptDelivered}
		}, nil)
	}
}

// directMsg is a message that arrived over a peer-to-peer channel.
type directMsg struct {
	m    wire.Message
	path string
}

// direct hands a peer-to-peer message to the app unless its ID was seen
// (it may also come through the server after a fallback).
func (d *dispatcher) direct(v directMsg) bool {
	t := d.tr
	t.mu.Lock()
	dup := t.ids.Has(v.m.ID)
	t.mu.Unlock()
	if dup {
		return true
	}
	ev := MessageEvent{Message: v.m, Path: v.path}
	ev.OpenErr = d.open(&ev.Message)
	ev.File, _ = parseFile(ev.Message.Body)
	if errors.Is(ev.OpenErr, seal.ErrReplay) {
		return true // opened before
	}
	if !d.emit(ev) {
		return false
	}
	if ev.OpenErr == nil {
		d.c.noteOpened(0, v.m.ID)
		d.c.archiveOpened(ev.Message, v.path)
	}
	t.mu.Lock()
	t.ids.Add(v.m.ID)
	t.noteSeenLocked(&v.m)
	t.mu.Unlock()
	d.noteDelivered(&v.m)
	return true
}

// open opens a message's sealed body in place, for the app.
func (d *dispatcher) open(m *wire.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), keysTimeout)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // Close must not wait for a key fetch
		select {
		case <-d.c.stopDispatch:
			cancel()
		case <-stop:
		}
	}()
	err := d.c.open(ctx, m)
	if err != nil {
		d.c.log.Warn("cannot open message", "id", m.ID, "from", m.From, "err", err)
	}
	return err
}
