package client

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

const spoolExt = ".jsonl"

// loadSpool queues the records earlier Clients left in the spool.
func (c *Client) loadSpool() {
	dir := c.opts.ArchiveSpool
	if dir == "" {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("archive spool", "err", err)
		}
		return
	}
	var recs []archiveRecord
	var files []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), spoolExt) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			c.log.Warn("archive spool", "err", err)
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			var r archiveRecord
			if json.Unmarshal(sc.Bytes(), &r) != nil || r.ID == "" {
				continue // a damaged line: the rest is still worth putting
			}
			recs = append(recs, r)
		}
		files = append(files, path)
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
	for _, f := range files {
		os.Remove(f)
	}
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
	if err := writeSpool(dir, buf.Bytes()); err != nil {
		c.log.Warn("archive records lost: cannot keep them for the next run", "records", len(recs), "err", err)
		return
	}
	c.log.Info("archive records kept for the next run", "records", len(recs))
	c.dropSpool()
}

// writeSpool writes data to a new spool file, durably (writeDurable),
// under a name of its own: two processes of one device never overwrite
// each other's.
func writeSpool(dir string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeDurable(dir, "archive-"+rand.Text()+spoolExt, data)
}
