package client

import (
	"bytes"
	"encoding/json"

	"github.com/natterim/natter/client/internal/disk"
)

// The archive spool keeps the records a Client could not put before it
// closed (Options.ArchiveSpool): a one-shot command on a slow link would
// otherwise drop them, and the archive would miss messages for good. Each
// Close that leaves records writes them to a new file (JSON lines, mode
// 0600, written to a temporary name, synced and renamed), so two processes
// of one device never overwrite each other's. The next Client loads every
// file at its first login, ahead of its own records, and deletes the files
// once its queue is empty: a crash in between puts them again, which the
// server ignores (a record is named by its message).
//
// The records hold plaintext, like the device's own history beside them.
// The files themselves are disk.Spool's.

// loadSpool queues the records earlier Clients left in the spool.
func (c *Client) loadSpool() {
	dir := c.opts.ArchiveSpool
	if dir == "" {
		return
	}
	var recs []archiveRecord
	files, errs := disk.Spool{Dir: dir}.Load(func(line []byte) {
		var r archiveRecord
		if json.Unmarshal(line, &r) != nil || r.ID == "" {
			return // a damaged line: the rest is still worth putting
		}
		recs = append(recs, r)
	})
	for _, err := range errs {
		c.log.Warn("archive spool", "err", err)
	}
	if len(files) == 0 {
		return
	}
	c.ar.mu.Lock()
	c.ar.queue = append(recs, c.ar.queue...)
	c.ar.spooled = append(c.ar.spooled, files...)
	c.ar.mu.Unlock()
	c.log.Info("archive records from an earlier run", "records", len(recs))
}

// dropSpool deletes the spool files whose records were loaded: they were
// put (or the archive is off).
func (c *Client) dropSpool() {
	c.ar.mu.Lock()
	files := c.ar.spooled
	c.ar.spooled = nil
	c.ar.mu.Unlock()
	disk.Spool{}.Remove(files)
}

// saveSpool writes the records still queued to a new spool file, and
// deletes the files loaded earlier (their records are among them).
func (c *Client) saveSpool() {
	dir := c.opts.ArchiveSpool
	c.ar.mu.Lock()
	recs := c.ar.queue
	c.ar.mu.Unlock()
	if dir == "" || len(recs) == 0 {
		return
	}
	var buf bytes.Buffer
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			continue
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if err := (disk.Spool{Dir: dir}).Save(buf.Bytes()); err != nil {
		c.log.Warn("archive records lost: cannot keep them for the next run", "records", len(recs), "err", err)
		return
	}
	c.log.Info("archive records kept for the next run", "records", len(recs))
	c.dropSpool()
}
