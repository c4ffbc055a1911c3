package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/blobs"
	"github.com/natterim/natter/wire"
)

// File defaults (docs/files.md).
const (
	DefaultMaxFileSize   = 2 << 30             // bytes of chunks one message may carry
	DefaultUserQuota     = 5 << 30             // bytes of distinct chunks a user may keep
	DefaultFileRetention = 30 * 24 * time.Hour // chunks are kept this long after their last use
)

// errNoFiles answers file requests on a hub without a blob store.
var errNoFiles = fmt.Errorf("%w: this server takes no files", natter.ErrStoreUnavailable)

// putChunk stores one chunk: checked against its hash, recorded for the
// user (the quota), written to the blob store unless it holds it already,
// then OK. The answer comes only once both are durable.
func (c *client) putChunk(ctx context.Context, m *wire.PutChunk) {
	h := c.h
	switch {
	case h.cfg.Blobs == nil:
		c.fail(m.Ref, errNoFiles)
		return
	case len(m.Data) > wire.MaxChunk:
		c.push(wire.Error{Ref: m.Ref, Code: wire.CodeTooLarge, Message: fmt.Sprintf("chunk over %d bytes", wire.MaxChunk)})
		return
	case !blobs.ValidHash(m.Hash):
		c.fail(m.Ref, fmt.Errorf("%w: hash must be the lowercase hex SHA-256 of the data", natter.ErrBadRequest))
		return
	case blobs.Sum(m.Data) != m.Hash:
		c.fail(m.Ref, fmt.Errorf("%w: the data's SHA-256 is not the hash given; nothing was stored", natter.ErrBadRequest))
		return
	}
	h.chunkMu.RLock()
	defer h.chunkMu.RUnlock()
	_, err := h.cfg.Store.AddChunk(ctx, c.user, m.Hash, int64(len(m.Data)), h.cfg.UserQuota, h.now())
	if errors.Is(err, natter.ErrQuota) {
		c.fail(m.Ref, fmt.Errorf("%w: this chunk would take your files over your quota of %d bytes; nothing was stored (files are forgotten %s after they were last sent)",
			natter.ErrQuota, h.cfg.UserQuota, h.cfg.FileRetention))
		return
	}
	if err != nil {
		h.met.storeErrors.Inc()
		c.fail(m.Ref, err)
		return
	}
	// The record comes first: a chunk recorded whose bytes never made it
	// (a crash, a full disk) is not reported by HaveChunks or accepted in
	// a Send, and the client's retry writes it.
	has, err := h.cfg.Blobs.Has(m.Hash)
	if err == nil && !has {
		err = h.cfg.Blobs.Put(ctx, m.Hash, m.Data)
		if err == nil {
			h.met.chunksStored.Inc()
			h.met.chunkBytes.Add(float64(len(m.Data)))
		}
	} else if err == nil {
		h.met.chunkDedup.Inc()
	}
	if err != nil {
		h.met.storeErrors.Inc()
		c.fail(m.Ref, err)
		return
	}
	c.push(wire.OK{Ref: m.Ref})
}

// checkChunkList checks a list of chunk hashes (HaveChunks, Send.Chunks)
// before any lookup, answering ref if it is refused.
func (c *client) checkChunkList(ref uint64, hashes []string) bool {
	switch {
	case c.h.cfg.Blobs == nil:
		c.fail(ref, errNoFiles)
		return false
	case len(hashes) > wire.MaxHashes:
		c.push(wire.Error{Ref: ref, Code: wire.CodeTooLarge, Message: fmt.Sprintf("over %d chunks", wire.MaxHashes)})
		return false
	}
	for _, h := range hashes {
		if !blobs.ValidHash(h) {
			c.fail(ref, fmt.Errorf("%w: chunk hash %.80q is not a lowercase hex SHA-256", natter.ErrBadRequest, h))
			return false
		}
	}
	return true
}

// haveChunks answers which of the hashes the user uploaded or may fetch and
// the server holds.
func (c *client) haveChunks(ctx context.Context, m *wire.HaveChunks) {
	if !c.checkChunkList(m.Ref, m.Hashes) {
		return
	}
	have, err := c.h.cfg.Store.UserHasChunks(ctx, c.user, m.Hashes)
	if err != nil {
		c.fail(m.Ref, err)
		return
	}
	out := make([]string, 0, len(have))
	for _, hash := range have {
		ok, err := c.h.cfg.Blobs.Has(hash)
		if err != nil {
			c.fail(m.Ref, err)
			return
		}
		if ok {
			out = append(out, hash)
		}
	}
	c.push(wire.Chunks{Ref: m.Ref, Have: out})
}

// getChunk sends one chunk the user may fetch. A chunk that does not exist
// and one the user may not fetch get the same answer.
func (c *client) getChunk(ctx context.Context, m *wire.GetChunk) {
	h := c.h
	if h.cfg.Blobs == nil {
		c.fail(m.Ref, errNoFiles)
		return
	}
	if !blobs.ValidHash(m.Hash) {
		c.fail(m.Ref, fmt.Errorf("%w: hash must be a lowercase hex SHA-256", natter.ErrBadRequest))
		return
	}
	ok, err := h.cfg.Store.MayFetchChunk(ctx, c.user, m.Hash)
	if err != nil {
		c.fail(m.Ref, err)
		return
	}
	if !ok {
		c.fail(m.Ref, natter.ErrNoSuchChunk)
		return
	}
	data, err := h.cfg.Blobs.Get(ctx, m.Hash)
	if err != nil {
		c.fail(m.Ref, err)
		return
	}
	h.met.chunksServed.Inc()
	// Paced: a client fetching many chunks in a row waits for its queue
	// to drain instead of being dropped as a slow consumer.
	c.pushPaced(wire.Chunk{Ref: m.Ref, Hash: m.Hash, Data: data})
}

// checkFile checks the chunks of a Send (already well formed): each uploaded
// by the user and held by the blob store, and together within the largest
// file. AppendMessage checks the uploads again in its own transaction (a
// sweep may come between).
func (c *client) checkFile(ctx context.Context, hashes []string) error {
	h := c.h
	total, err := h.cfg.Store.ChunkTotal(ctx, c.user, hashes)
	if err != nil {
		return err
	}
	if total > h.cfg.MaxFileSize {
		return fmt.Errorf("%w: the message's chunks add up to %d bytes, over the largest file this server takes (%d bytes)",
			natter.ErrQuota, total, h.cfg.MaxFileSize)
	}
	for _, hash := range hashes {
		ok, err := h.cfg.Blobs.Has(hash)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s", natter.ErrNoSuchChunk, hash)
		}
	}
	return nil
}

// SweepFiles forgets the chunks not used (uploaded or sent) within the file
// retention and deletes their bytes. It returns how many it deleted. The
// server runs it at start and then periodically.
func (h *Hub) SweepFiles(ctx context.Context) (int, error) {
	if h.cfg.Blobs == nil {
		return 0, nil
	}
	h.chunkMu.Lock()
	defer h.chunkMu.Unlock()
	hashes, err := h.cfg.Store.ExpireChunks(ctx, h.now().Add(-h.cfg.FileRetention))
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	n := 0
	for _, hash := range hashes {
		if err := h.cfg.Blobs.Delete(hash); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	h.met.chunksExpired.Add(float64(n))
	if len(errs) > 0 {
		return n, fmt.Errorf("sweep files: %w", errors.Join(errs...))
	}
	return n, nil
}
