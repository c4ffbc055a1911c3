package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// The archive: each user's optional server-side history (wire's ArchiveSet,
// ArchivePut, ArchiveGet, ArchiveKeyPut). The server stores sealed records
// and wrapped keys as the user's devices put them and hands them back to the
// same user's devices; it never looks inside them.

// DefaultArchiveQuota is the bytes of archive records a user may keep when
// Config.ArchiveQuota is zero.
const DefaultArchiveQuota = 1 << 30

// defaultArchiveLimit is how many records an ArchiveGet without a Limit
// asks for (before the cap of wire.MaxArchiveBatch).
const defaultArchiveLimit = 100

// errArchiveDisabled answers requests that would turn an archive on or add
// to it on a hub whose operator turned archives off (Config.NoArchive).
var errArchiveDisabled = fmt.Errorf("%w: disabled on this server", natter.ErrArchiveOff)

// archiveState reads the state of the user's archive as this device sees
// it: on or off, the archive key wrapped for this device, and which devices
// have one.
func (c *client) archiveState(ctx context.Context, ref uint64) (wire.ArchiveState, error) {
	st := wire.ArchiveState{Ref: ref}
	on, err := c.h.cfg.Store.ArchiveOn(ctx, c.user)
	if err != nil || !on {
		return st, err
	}
	st.On = true
	keys, err := c.h.cfg.Store.ArchiveKeys(ctx, c.user)
	if err != nil {
		return st, err
	}
	st.Key = keys[c.device]
	for d := range keys {
		st.KeyDevices = append(st.KeyDevices, d)
	}
	slices.Sort(st.KeyDevices)
	return st, nil
}

// archiveSet turns the user's archive on or off and answers with its state.
// Off deletes every record and wrapped key of the user.
func (c *client) archiveSet(ctx context.Context, m *wire.ArchiveSet) {
	h := c.h
	if m.On && h.cfg.NoArchive {
		c.fail(m.Ref, errArchiveDisabled)
		return
	}
	if err := h.cfg.Store.SetArchive(ctx, c.user, m.On); err != nil {
		h.met.storeErrors.Inc()
		c.fail(m.Ref, err)
		return
	}
	h.met.archiveSwitches.WithLabelValues(map[bool]string{true: "on", false: "off"}[m.On]).Inc()
	c.log.Info("archive set", "on", m.On)
	st, err := c.archiveState(ctx, m.Ref)
	if err != nil {
		c.fail(m.Ref, err)
		return
	}
	c.push(st)
}

// archiveGet answers with the archive's state and the records after
// m.After: at most m.Limit (default defaultArchiveLimit, capped at
// wire.MaxArchiveBatch) and wire.MaxArchiveBytes of data.
func (c *client) archiveGet(ctx context.Context, m *wire.ArchiveGet) {
	st, err := c.archiveState(ctx, m.Ref)
	if err != nil {
		c.fail(m.Ref, err)
		return
	}
	if st.On {
		limit := m.Limit
		if limit <= 0 {
			limit = defaultArchiveLimit
		}
		limit = min(limit, wire.MaxArchiveBatch)
		recs, more, err := c.h.cfg.Store.ArchiveRecords(ctx, c.user, m.After, limit, wire.MaxArchiveBytes)
		if err != nil {
			c.fail(m.Ref, err)
			return
		}
		st.More = more
		for _, r := range recs {
			st.Records = append(st.Records, wire.ArchiveRecord{Seq: r.Seq, At: r.At, Data: r.Data})
		}
		c.h.met.archiveServed.Add(float64(len(recs)))
	}
	// Paced: a new device reads the whole archive page after page, each
	// up to wire.MaxArchiveBytes; it waits for its queue to drain rather
	// than being dropped as a slow consumer.
	c.pushPaced(st)
}

// checkArchivePut checks an ArchivePut against the limits before anything
// is stored. Over a limit is too_large; an empty key or record, bad_request.
func checkArchivePut(m *wire.ArchivePut) error {
	tooLarge := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{natter.ErrLimit}, args...)...)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{natter.ErrBadRequest}, args...)...)
	}
	if len(m.Records) > wire.MaxArchiveBatch {
		return tooLarge("%d records in one ArchivePut; at most %d", len(m.Records), wire.MaxArchiveBatch)
	}
	total := 0
	for i, r := range m.Records {
		switch {
		case r.Key == "":
			return bad("record %d has no key", i)
		case len(r.Key) > wire.MaxArchiveKey:
			return tooLarge("the key of record %d is %d bytes; at most %d", i, len(r.Key), wire.MaxArchiveKey)
		case len(r.Data) == 0:
			return bad("record %d has no data", i)
		case len(r.Data) > wire.MaxArchiveData:
			return tooLarge("record %d is %d bytes; at most %d", i, len(r.Data), wire.MaxArchiveData)
		}
		total += len(r.Data)
	}
	if total > wire.MaxArchiveBytes {
		return tooLarge("the records add up to %d bytes; at most %d in one ArchivePut", total, wire.MaxArchiveBytes)
	}
	return nil
}

// archivePut adds records to the user's archive, answering OK once they
// are durable. Records whose key the archive holds already are skipped.
func (c *client) archivePut(ctx context.Context, m *wire.ArchivePut) {
	h := c.h
	if h.cfg.NoArchive {
		c.fail(m.Ref, errArchiveDisabled)
		return
	}
	if err := checkArchivePut(m); err != nil {
		c.fail(m.Ref, err)
		return
	}
	items := make([]natter.ArchiveItem, len(m.Records))
	for i, r := range m.Records {
		items[i] = natter.ArchiveItem{Key: r.Key, Data: r.Data}
	}
	err := h.cfg.Store.PutArchive(ctx, c.user, items, h.now(), h.cfg.ArchiveQuota)
	switch {
	case errors.Is(err, natter.ErrQuota):
		c.fail(m.Ref, fmt.Errorf("%w: these records would take your server-side history over its quota of %d bytes; nothing was stored",
			natter.ErrQuota, h.cfg.ArchiveQuota))
		return
	case errors.Is(err, natter.ErrArchiveOff):
		c.fail(m.Ref, err)
		return
	case err != nil:
		h.met.storeErrors.Inc()
		c.fail(m.Ref, err)
		return
	}
	h.met.archiveRecords.Add(float64(len(items)))
	c.push(wire.OK{Ref: m.Ref})
}

// archiveKeyPut stores the archive key wrapped for one of the user's
// devices (one that published keys), replacing its previous one.
func (c *client) archiveKeyPut(ctx context.Context, m *wire.ArchiveKeyPut) {
	h := c.h
	if h.cfg.NoArchive {
		c.fail(m.Ref, errArchiveDisabled)
		return
	}
	if err := natter.ValidateDeviceID(string(m.Device)); err != nil {
		c.fail(m.Ref, err)
		return
	}
	switch {
	case len(m.Wrapped) == 0:
		c.fail(m.Ref, fmt.Errorf("%w: no wrapped key", natter.ErrBadRequest))
		return
	case len(m.Wrapped) > wire.MaxWrappedKey:
		c.fail(m.Ref, fmt.Errorf("%w: the wrapped key is %d bytes; at most %d", natter.ErrLimit, len(m.Wrapped), wire.MaxWrappedKey))
		return
	}
	err := h.cfg.Store.PutArchiveKey(ctx, c.user, m.Device, m.Wrapped)
	switch {
	case errors.Is(err, natter.ErrNoSuchDevice):
		c.fail(m.Ref, fmt.Errorf("%w: device %s is not one of your devices with published keys", natter.ErrBadRequest, m.Device))
		return
	case errors.Is(err, natter.ErrArchiveOff):
		c.fail(m.Ref, err)
		return
	case err != nil:
		h.met.storeErrors.Inc()
		c.fail(m.Ref, err)
		return
	}
	c.push(wire.OK{Ref: m.Ref})
}
