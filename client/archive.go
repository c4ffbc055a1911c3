package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// The archive is the user's optional server-side history (docs/history.md):
// off by default; once on, each device puts a record of every message it
// sends or opens, sealed under the archive key that only the user's
// devices hold (seal/archive.go), and a new device fetches them.

// ErrArchiveKeyPending: the archive is on but this device does not hold its
// key yet: a device that holds it shares it when it is online after this
// device was approved.
var ErrArchiveKeyPending = errors.New("client: the archive key has not been shared with this device yet")

// ArchiveStatus is the state of the user's archive as this device sees it.
type ArchiveStatus struct {
	On bool
	// HasKey says whether this device holds the archive key (it can put
	// and open records).
	HasKey bool
	// KeyDevices are the devices the key was wrapped for.
	KeyDevices []natter.DeviceID
}

// ArchivedMessage is one message fetched from the archive, opened.
type ArchivedMessage struct {
	Seq     int64        // its place in the archive
	Message wire.Message // the body is the plaintext
	Path    string       // how it travelled
	File    *FileInfo    // set if it carries a file
}

// archiveRecord is a record's plaintext.
type archiveRecord struct {
	V          int              `json:"v"`
	ID         natter.MessageID `json:"id"`
	From       natter.UserID    `json:"from"`
	FromDevice natter.DeviceID  `json:"from_device,omitempty"`
	To         natter.UserID    `json:"to"`
	SentAt     time.Time        `json:"sent_at"`
	Path       string           `json:"path,omitempty"`
	Body       []byte           `json:"body"`
}

// archiver queues the records this device puts.
type archiver struct {
	// syncMu orders the changes of the archive state and key (a login's
	// background sync, SetArchive, approvals).
	syncMu  sync.Mutex
	mu      sync.Mutex
	known   bool // the server said whether the archive is on, since login
	on      bool // the archive is on and this device holds the key
	started bool
	queue   []archiveRecord
	kick    chan struct{}
	// putMu makes putting a batch and taking it off the queue one step,
	// so the loop and the flush at Close never both put (and both take
	// off) the same records.
	putMu sync.Mutex
	// spooled names the spool files whose records were loaded into the
	// queue (archivespool.go): they are deleted once the queue is empty.
	spooled []string
}

const maxArchiveQueue = 10_000 // records waiting; older ones are dropped past it

// startArchive learns the archive's state after a login and starts the
// goroutine that puts records.
func (c *Client) startArchive(user natter.UserID) {
	c.ar.mu.Lock()
	first := !c.ar.started
	c.ar.started, c.ar.known = true, false
	if c.ar.kick == nil {
		c.ar.kick = make(chan struct{}, 1)
	}
	c.ar.mu.Unlock()
	if first {
		c.loadSpool()
	}
	c.wg.Go(func() {
		ctx, cancel := c.bgContext(keysTimeout)
		defer cancel()
		if _, err := c.archiveSync(ctx); err != nil && !errors.Is(err, ErrArchiveKeyPending) {
			c.log.Info("archive state", "err", err)
		}
	})
	if first {
		c.wg.Go(c.archiveLoop)
	}
}

// bgContext is a context for background work that ends with the Client.
func (c *Client) bgContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// archiveSent and archiveOpened queue a record of a message this device
// sent or opened, if the archive is on.
func (c *Client) archiveSent(id natter.MessageID, to natter.UserID, plain []byte, at time.Time, path string) {
	kr := c.Keyring()
	if kr == nil {
		return
	}
	c.archiveQueue(archiveRecord{V: 1, ID: id, From: kr.User(), FromDevice: c.opts.Device, To: to, SentAt: at, Path: path, Body: plain})
}

func (c *Client) archiveOpened(m wire.Message, path string) {
	c.archiveQueue(archiveRecord{V: 1, ID: m.ID, From: m.From, FromDevice: m.FromDevice, To: m.To, SentAt: m.SentAt, Path: path, Body: m.Body})
}

func (c *Client) archiveQueue(r archiveRecord) {
	c.ar.mu.Lock()
	if !c.ar.started || c.ar.known && !c.ar.on {
		c.ar.mu.Unlock()
		return
	}
	// While the state is not known yet (just after login) records wait:
	// they are dropped if the archive turns out to be off.
	if len(c.ar.queue) >= maxArchiveQueue {
		c.ar.queue = c.ar.queue[1:]
	}
	c.ar.queue = append(c.ar.queue, r)
	kick := c.ar.kick
	c.ar.mu.Unlock()
	select {
	case kick <- struct{}{}:
	default:
	}
}

// archiveLoop puts queued records in batches until the Client closes.
func (c *Client) archiveLoop() {
	for {
		select {
		case <-c.closing:
			return
		case <-c.ar.kick:
		}
		for {
			ctx, cancel := c.bgContext(keysTimeout)
			more, err := c.putBatch(ctx)
			cancel()
			if err != nil {
				if !errors.Is(err, ErrClosed) {
					c.log.Warn("archive put", "err", err)
				}
				select {
				case <-c.closing:
					return
				case <-time.After(5 * time.Second):
				}
				continue
			}
			if !more {
				break
			}
		}
	}
}

// putBatch puts the first records of the queue and takes them off it; it
// reports whether records are left to put.
func (c *Client) putBatch(ctx context.Context) (more bool, err error) {
	c.ar.putMu.Lock()
	defer c.ar.putMu.Unlock()
	c.ar.mu.Lock()
	var batch []archiveRecord
	if c.ar.on {
		batch = slices.Clone(c.ar.queue[:min(len(c.ar.queue), wire.MaxArchiveBatch)])
	}
	c.ar.mu.Unlock()
	if len(batch) == 0 {
		return false, nil
	}
	n, err := c.putArchive(ctx, batch)
	c.ar.mu.Lock()
	if n > 0 && n <= len(c.ar.queue) {
		c.ar.queue = c.ar.queue[n:]
	}
	var we *wire.Err
	if errors.As(err, &we) && we.Code == wire.CodeArchiveOff {
		c.ar.on, c.ar.queue = false, nil // turned off elsewhere
		err = nil
	}
	left := len(c.ar.queue)
	c.ar.mu.Unlock()
	if left == 0 {
		c.dropSpool()
	}
	return left > 0, err
}

// putArchive seals and puts the first records of batch that fit one frame
// and returns how many it put.
func (c *Client) putArchive(ctx context.Context, batch []archiveRecord) (int, error) {
	kr := c.Keyring()
	if kr == nil {
		return 0, ErrNotLoggedIn
	}
	var items []wire.ArchiveItem
	size := 0
	n := 0
	for _, r := range batch {
		item, err := sealRecord(kr, r)
		if err != nil {
			if errors.Is(err, seal.ErrNoArchiveKey) {
				return 0, err
			}
			c.log.Warn("archive record skipped", "id", r.ID, "err", err)
			n++
			continue
		}
		if len(items) > 0 && size+len(item.Data) > wire.MaxArchiveBytes {
			break
		}
		items, size, n = append(items, item), size+len(item.Data), n+1
	}
	if len(items) == 0 {
		return n, nil
	}
	_, err := retry(ctx, c, func() (*wire.OK, error) {
		return roundTrip[wire.OK](ctx, c, "archive put", func(ref uint64) any {
			return &wire.ArchivePut{Ref: ref, Records: items}
		})
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func sealRecord(kr *seal.Keyring, r archiveRecord) (wire.ArchiveItem, error) {
	key, err := kr.RecordKey(r.From, r.ID)
	if err != nil {
		return wire.ArchiveItem{}, err
	}
	plain, err := json.Marshal(r)
	if err != nil {
		return wire.ArchiveItem{}, err
	}
	data, err := kr.SealRecord(plain)
	if err != nil {
		return wire.ArchiveItem{}, err
	}
	if len(data) > wire.MaxArchiveData {
		return wire.ArchiveItem{}, fmt.Errorf("record of %d bytes, over %d", len(data), wire.MaxArchiveData)
	}
	return wire.ArchiveItem{Key: key, Data: data}, nil
}

func (c *Client) archiveGet(ctx context.Context, after int64, limit int) (*wire.ArchiveState, error) {
	return retry(ctx, c, func() (*wire.ArchiveState, error) {
		return roundTrip[wire.ArchiveState](ctx, c, "archive get", func(ref uint64) any {
			return &wire.ArchiveGet{Ref: ref, After: after, Limit: limit}
		})
	})
}

// archiveSync brings this device in line with the server's archive state:
// it drops its key if the archive is off, takes the key wrapped for it if
// it has none, and wraps the key for the user's devices that lack it.
func (c *Client) archiveSync(ctx context.Context) (*wire.ArchiveState, error) {
	c.ar.syncMu.Lock()
	defer c.ar.syncMu.Unlock()
	return c.archiveSyncLocked(ctx)
}

func (c *Client) archiveSyncLocked(ctx context.Context) (*wire.ArchiveState, error) {
	kr := c.Keyring()
	if kr == nil {
		return nil, ErrNotLoggedIn
	}
	st, err := c.archiveGet(ctx, 0, 1)
	if err != nil {
		return nil, err
	}
	if !st.On {
		c.setArchiveOn(false)
		if kr.HasArchiveKey() {
			return st, kr.DropArchiveKey()
		}
		return st, nil
	}
	if !kr.HasArchiveKey() && len(st.Key) > 0 {
		err := kr.UnwrapArchiveKey(st.Key, func(dev natter.DeviceID) (*seal.Bundle, error) {
			return c.deviceBundle(ctx, kr.User(), dev)
		})
		if err != nil {
			return st, err
		}
	}
	if !kr.HasArchiveKey() {
		c.setArchiveOn(false)
		return st, ErrArchiveKeyPending
	}
	c.setArchiveOn(true)
	return st, c.shareArchiveKey(ctx, st.KeyDevices)
}

func (c *Client) setArchiveOn(on bool) {
	c.ar.mu.Lock()
	c.ar.known, c.ar.on = true, on
	if !on {
		c.ar.queue = nil
	}
	kick := c.ar.kick
	c.ar.mu.Unlock()
	if !on {
		c.dropSpool()
	}
	if on && kick != nil {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
}

// flushArchive puts what is queued before the Client closes, waiting at
// most Options.ArchiveFlushTimeout (a one-shot command sends and exits at
// once); what it could not put goes to the spool, for the next Client.
func (c *Client) flushArchive() {
	d := c.opts.ArchiveFlushTimeout
	if d <= 0 {
		d = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := c.FlushArchive(ctx); err != nil {
		c.log.Info("archive records left for the next run", "err", err)
	}
	c.saveSpool()
}

// FlushArchive puts the archive records this device has queued and waits
// until the server holds them, or ctx ends (then the error says how many
// are left; Close keeps them for the next Client when Options.ArchiveSpool
// is set). With the archive off it returns nil at once.
func (c *Client) FlushArchive(ctx context.Context) error {
	c.ar.mu.Lock()
	pending := len(c.ar.queue)
	known := c.ar.known
	c.ar.mu.Unlock()
	if pending == 0 {
		return nil
	}
	if c.liveConn() == nil {
		return fmt.Errorf("archive: %d records to put: %w", pending, ErrConnLost)
	}
	if !known {
		if _, err := c.archiveSync(ctx); err != nil && !errors.Is(err, ErrArchiveKeyPending) {
			return fmt.Errorf("archive state: %w", err)
		}
	}
	for {
		more, err := c.putBatch(ctx)
		if err != nil {
			c.ar.mu.Lock()
			n := len(c.ar.queue)
			c.ar.mu.Unlock()
			return fmt.Errorf("archive: %d records not put: %w", n, err)
		}
		if !more {
			return nil
		}
	}
}

// shareArchiveKey wraps the archive key for each certified device of the
// user (this one included) not in have.
func (c *Client) shareArchiveKey(ctx context.Context, have []natter.DeviceID) error {
	kr := c.Keyring()
	d, err := c.directory(ctx, kr.User(), true)
	if d == nil {
		return err
	}
	for _, p := range d.Devices {
		if slices.Contains(have, p.Bundle.Device) {
			continue
		}
		wrapped, err := kr.WrapArchiveKey(p.Bundle)
		if err != nil {
			return err
		}
		_, err = retry(ctx, c, func() (*wire.OK, error) {
			return roundTrip[wire.OK](ctx, c, "archive key put", func(ref uint64) any {
				return &wire.ArchiveKeyPut{Ref: ref, Device: p.Bundle.Device, Wrapped: wrapped}
			})
		})
		if err != nil {
			return fmt.Errorf("share the archive key with %s: %w", p.Bundle.Device, err)
		}
	}
	return nil
}

// shareArchiveKeyLater shares the archive key in the background (a device
// of the user was approved).
func (c *Client) shareArchiveKeyLater() {
	c.ar.mu.Lock()
	on := c.ar.on
	c.ar.mu.Unlock()
	if !on {
		return
	}
	c.wg.Go(func() {
		ctx, cancel := c.bgContext(keysTimeout)
		defer cancel()
		if _, err := c.archiveSync(ctx); err != nil {
			c.log.Warn("share the archive key", "err", err)
		}
	})
}

// ArchiveStatus returns the state of the user's archive, taking the archive
// key if another device shared it with this one.
func (c *Client) ArchiveStatus(ctx context.Context) (ArchiveStatus, error) {
	kr := c.Keyring()
	if kr == nil {
		return ArchiveStatus{}, ErrNotLoggedIn
	}
	st, err := c.archiveSync(ctx)
	if st == nil {
		return ArchiveStatus{}, err
	}
	if errors.Is(err, ErrArchiveKeyPending) {
		err = nil
	}
	return ArchiveStatus{On: st.On, HasKey: kr.HasArchiveKey(), KeyDevices: st.KeyDevices}, err
}

// SetArchive turns the user's archive on or off. Turning it on makes a new
// archive key and shares it with the user's devices, unless it is on
// already (then this device takes the key shared with it, or gets
// ErrArchiveKeyPending). Turning it off deletes every record on the server.
// Records are put from then on; see Archive for messages from before.
func (c *Client) SetArchive(ctx context.Context, on bool) error {
	kr := c.Keyring()
	if kr == nil {
		return ErrNotLoggedIn
	}
	c.ar.syncMu.Lock()
	defer c.ar.syncMu.Unlock()
	set := func() (*wire.ArchiveState, error) {
		return retry(ctx, c, func() (*wire.ArchiveState, error) {
			return roundTrip[wire.ArchiveState](ctx, c, "archive set", func(ref uint64) any {
				return &wire.ArchiveSet{Ref: ref, On: on}
			})
		})
	}
	if !on {
		if _, err := set(); err != nil {
			return err
		}
		c.setArchiveOn(false)
		return kr.DropArchiveKey()
	}
	st, err := c.archiveSyncLocked(ctx)
	if st == nil || st.On {
		return err // on already: this device has the key now, or waits for it
	}
	if err := kr.NewArchiveKey(); err != nil {
		return err
	}
	if _, err := set(); err != nil {
		return err
	}
	c.setArchiveOn(true)
	return c.shareArchiveKey(ctx, nil)
}

// Archive puts records of msgs (opened messages of the user's, say from a
// local history) in the archive, for messages from before it was turned
// on. Messages the archive holds already are skipped by the server.
func (c *Client) Archive(ctx context.Context, msgs []ArchivedMessage) error {
	c.ar.mu.Lock()
	on := c.ar.on
	c.ar.mu.Unlock()
	if !on {
		if _, err := c.archiveSync(ctx); err != nil {
			return err
		}
	}
	var recs []archiveRecord
	for _, m := range msgs {
		recs = append(recs, archiveRecord{V: 1, ID: m.Message.ID, From: m.Message.From, FromDevice: m.Message.FromDevice,
			To: m.Message.To, SentAt: m.Message.SentAt, Path: m.Path, Body: m.Message.Body})
	}
	for len(recs) > 0 {
		n, err := c.putArchive(ctx, recs[:min(len(recs), wire.MaxArchiveBatch)])
		if err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// FetchArchive returns up to limit archived messages after position after
// (0: from the start), opened, with the position to continue from and
// whether more follow. Records this device cannot open are skipped (and
// logged).
func (c *Client) FetchArchive(ctx context.Context, after int64, limit int) ([]ArchivedMessage, int64, bool, error) {
	kr := c.Keyring()
	if kr == nil {
		return nil, after, false, ErrNotLoggedIn
	}
	if !kr.HasArchiveKey() {
		if _, err := c.archiveSync(ctx); err != nil {
			return nil, after, false, err
		}
	}
	st, err := c.archiveGet(ctx, after, limit)
	if err != nil {
		return nil, after, false, err
	}
	if !st.On {
		return nil, after, false, fmt.Errorf("fetch archive: %w", natter.ErrArchiveOff)
	}
	var out []ArchivedMessage
	next := after
	for _, rec := range st.Records {
		next = max(next, rec.Seq)
		plain, err := kr.OpenRecord(rec.Data)
		var r archiveRecord
		if err == nil {
			err = json.Unmarshal(plain, &r)
		}
		if err == nil && (r.V != 1 || natter.ValidateMessageID(string(r.ID)) != nil || (r.From != kr.User() && r.To != kr.User())) {
			err = errors.New("malformed record")
		}
		if err != nil {
			c.log.Warn("archive record cannot be opened", "seq", rec.Seq, "err", err)
			continue
		}
		m := ArchivedMessage{Seq: rec.Seq, Path: r.Path, Message: wire.Message{ID: r.ID, From: r.From, FromDevice: r.FromDevice,
			To: r.To, Body: r.Body, SentAt: r.SentAt}}
		m.File, _ = parseFile(r.Body)
		out = append(out, m)
	}
	return out, next, st.More, nil
}
