package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/p2p"
	"github.com/natterim/natter/wire"
)

// Files over a peer-to-peer channel (docs/files.md). The sending device
// offers the file's sealed chunks by hash ("fo"); the receiving device,
// if it keeps a chunk cache (Options.ChunkCache) and has room, answers
// with those it holds already ("fh"); the sender then pushes the others,
// each a binary frame (chunkFrame and the sealed chunk), and the receiver
// acknowledges each ("ca") once it is durable in its cache. A drop of the
// channel loses at most the chunks in flight: the sender offers again on
// the next channel and sends only what was not acknowledged. If no
// channel comes back in time the rest goes through natterd's store. The
// file's message follows, as any other message; FetchFile takes the
// chunks from the cache and asks natterd only for the others.

const (
	// chunkFrame starts a peer-to-peer frame carrying a sealed chunk (a
	// JSON frame starts with '{').
	chunkFrame = 0x00
	// directWindow is how many chunks may be pushed and not yet
	// acknowledged: at most these are sent again after a drop.
	directWindow = 8
	// directResumeWait is how long a transfer waits for a new channel
	// after a drop before the rest goes through the server.
	directResumeWait = 15 * time.Second
	// directStall ends a transfer on a channel whose peer acknowledges
	// nothing for this long.
	directStall = 15 * time.Second
	// maxDirectFile bounds a file a device takes over a channel (as
	// natterd's default largest file).
	maxDirectFile = 2 << 30
)

// fileFrame is a control frame of a transfer on a channel.
type fileFrame struct {
	T      string   `json:"t"`                // "fo" offer, "fh" answer, "ca" chunk acknowledged
	X      string   `json:"x"`                // the transfer, chosen by the sender
	Chunks []string `json:"chunks,omitempty"` // fo: the chunks offered; fh: those the receiver holds
	Size   int64    `json:"size,omitempty"`   // fo: their total size
	Hash   string   `json:"hash,omitempty"`   // ca: the chunk
	Err    string   `json:"err,omitempty"`    // fh: why the offer is refused
}

// xfer is a transfer this device is sending: the frames its peer answers.
type xfer struct {
	answer chan fileFrame // fh
	acks   chan string    // ca
}

// incoming is what a device takes on one channel: the chunks offered and
// not yet received.
type incoming struct {
	mu      sync.Mutex
	offered map[string]string // chunk hash → transfer
}

// fileStats counts chunks sent, for tests and measurements.
type fileStats struct {
	mu       sync.Mutex
	pushed   int // chunks sent over peer-to-peer channels
	uploaded int // chunks uploaded to natterd (not counting those it had)
	received int // chunks received over channels
	dups     int // of those, chunks the cache held already
}

func (s *fileStats) add(f func(*fileStats)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

// handleFileFrame handles a transfer's control frame from conn.
func (d *direct) handleFileFrame(conn *p2p.Conn, in *incoming, f fileFrame) {
	switch f.T {
	case "fo":
		d.answerOffer(conn, in, f)
	case "fh", "ca":
		d.mu.Lock()
		x := d.xfers[f.X]
		d.mu.Unlock()
		if x == nil {
			return
		}
		if f.T == "fh" {
			select {
			case x.answer <- f:
			default:
			}
			return
		}
		select {
		case x.acks <- f.Hash:
		default: // more acknowledgements than chunks pushed: ignore
		}
	}
}

// answerOffer takes or refuses a contact's offer of chunks.
func (d *direct) answerOffer(conn *p2p.Conn, in *incoming, f fileFrame) {
	cache := d.c.chunks
	reply := fileFrame{T: "fh", X: f.X}
	err := func() error {
		switch {
		case cache == nil:
			return errors.New("this device takes files through the server only")
		case len(f.Chunks) > wire.MaxHashes || f.Size < 0 || f.Size > maxDirectFile:
			return fmt.Errorf("over %d bytes", maxDirectFile)
		}
		for _, h := range f.Chunks {
			if !isHash(h) {
				return errors.New("malformed chunk hash")
			}
		}
		return cache.Room(f.Size)
	}()
	if err != nil {
		reply.Err = err.Error()
		d.sendFrame(conn, reply)
		return
	}
	in.mu.Lock()
	if len(in.offered)+len(f.Chunks) > 4*wire.MaxHashes {
		in.mu.Unlock()
		reply.Err = "too many chunks offered at once"
		d.sendFrame(conn, reply)
		return
	}
	for _, h := range f.Chunks {
		if cache.Has(h) {
			reply.Chunks = append(reply.Chunks, h)
			continue
		}
		in.offered[h] = f.X
	}
	in.mu.Unlock()
	d.sendFrame(conn, reply)
}

// takeChunk stores a chunk a contact pushed, if it was offered, and
// acknowledges it once durable.
func (d *direct) takeChunk(conn *p2p.Conn, in *incoming, data []byte) {
	h := chunkHash(data)
	peer, _ := conn.Peer()
	in.mu.Lock()
	xid, ok := in.offered[h]
	in.mu.Unlock()
	if !ok || len(data) > wire.MaxChunk {
		d.c.log.Warn("peer-to-peer chunk not offered", "peer", peer, "hash", h)
		return
	}
	dup := false
	err := func() error {
		if d.c.chunks.Has(h) {
			dup = true
			return nil
		}
		return d.c.chunks.Put(h, data)
	}()
	d.c.fstats.add(func(s *fileStats) {
		s.received++
		if dup {
			s.dups++
		}
	})
	if err != nil {
		// Not acknowledged: the sender sends it through the server.
		d.c.log.Warn("keeping a peer-to-peer chunk", "peer", peer, "err", err)
		return
	}
	in.mu.Lock()
	delete(in.offered, h)
	in.mu.Unlock()
	d.sendFrame(conn, fileFrame{T: "ca", Hash: h, X: xid})
}

func (d *direct) sendFrame(conn *p2p.Conn, f fileFrame) {
	b, err := json.Marshal(f)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(d.ctx, directStall)
	defer cancel()
	_ = conn.SendContext(ctx, b) // a failed send is a dropped channel: the sender resumes
}

// pushFile sends the chunks of a file (hashes, in order) to peer over
// peer-to-peer channels, resuming on the next channel after a drop. It
// calls delivered(i) once chunk i is durable on the peer's device, and
// returns the indexes that did not get there (all of them if peer takes no
// files directly or no channel could be opened), to send through the
// server.
func (d *direct) pushFile(ctx context.Context, peer natter.UserID, hashes []string, size int64,
	sealed func(int) ([]byte, error), delivered func(int)) ([]int, error) {
	todo := make([]int, len(hashes))
	for i := range todo {
		todo[i] = i
	}
	x := &xfer{answer: make(chan fileFrame, 1), acks: make(chan string, len(hashes)+directWindow)}
	var id [8]byte
	rand.Read(id[:])
	xid := hex.EncodeToString(id[:])
	d.mu.Lock()
	d.xfers[xid] = x
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.xfers, xid)
		d.mu.Unlock()
	}()
	var last *p2p.Conn
	for len(todo) > 0 {
		conn := d.waitConn(ctx, peer, last)
		if conn == nil {
			return todo, ctx.Err()
		}
		last = conn
		rest, err := d.pushOn(ctx, conn, xid, x, hashes, todo, size, sealed, delivered)
		todo = rest
		switch {
		case ctx.Err() != nil:
			return todo, ctx.Err()
		case errors.Is(err, errRefused):
			d.c.log.Info("peer takes no file over the channel; sending through the server", "peer", peer, "err", err)
			return todo, nil
		case err != nil && len(todo) > 0:
			d.c.log.Info("peer-to-peer transfer interrupted; resuming", "peer", peer, "left", len(todo), "err", err)
		}
	}
	return nil, nil
}

var errRefused = errors.New("offer refused")

// mayReach reports whether a channel to peer is up or can be tried: one of
// its devices registered how it can be reached.
func (d *direct) mayReach(peer natter.UserID) bool {
	d.mu.Lock()
	up := d.conns[peer] != nil
	d.mu.Unlock()
	_, known := d.device(peer)
	return up || known
}

// waitConn returns the channel to peer other than last, waiting up to
// directResumeWait for one (opening it if none is up), or nil.
func (d *direct) waitConn(ctx context.Context, peer natter.UserID, last *p2p.Conn) *p2p.Conn {
	deadline := time.Now().Add(directResumeWait)
	if last == nil {
		octx, cancel := context.WithTimeout(ctx, directResumeWait)
		conn, err := d.open(octx, peer)
		cancel()
		if err != nil {
			return nil
		}
		return conn
	}
	for time.Now().Before(deadline) {
		d.mu.Lock()
		conn := d.conns[peer]
		d.wanted[peer] = true
		d.mu.Unlock()
		if conn != nil && conn != last && conn.Err() == nil {
			return conn
		}
		if conn == nil {
			d.openBackground(peer)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.stop:
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// pushOn offers todo on conn and pushes what the peer lacks, directWindow
// at a time. It returns the indexes not acknowledged.
func (d *direct) pushOn(ctx context.Context, conn *p2p.Conn, xid string, x *xfer, hashes []string, todo []int,
	size int64, sealed func(int) ([]byte, error), delivered func(int)) ([]int, error) {
	offer := fileFrame{T: "fo", X: xid, Size: size}
	for _, i := range todo {
		offer.Chunks = append(offer.Chunks, hashes[i])
	}
	// Drain what an earlier channel left.
	for len(x.acks) > 0 {
		<-x.acks
	}
	select {
	case <-x.answer:
	default:
	}
	b, _ := json.Marshal(offer)
	if err := conn.SendContext(ctx, b); err != nil {
		return todo, err
	}
	var ans fileFrame
	select {
	case ans = <-x.answer:
	case <-conn.Done():
		return todo, conn.Err()
	case <-ctx.Done():
		return todo, ctx.Err()
	case <-time.After(directStall):
		conn.Close()
		return todo, errors.New("no answer to the offer")
	}
	if ans.Err != "" {
		return todo, fmt.Errorf("%w: %s", errRefused, ans.Err)
	}
	have := map[string]bool{}
	for _, h := range ans.Chunks {
		have[h] = true
	}
	index := map[string][]int{} // a chunk may appear more than once in a file
	var send []int
	for _, i := range todo {
		if have[hashes[i]] {
			delivered(i)
			continue
		}
		if len(index[hashes[i]]) == 0 {
			send = append(send, i)
		}
		index[hashes[i]] = append(index[hashes[i]], i)
	}
	acked := map[string]bool{}
	left := func() []int {
		var out []int
		for _, i := range send {
			if !acked[hashes[i]] {
				out = append(out, index[hashes[i]]...)
			}
		}
		return out
	}
	ack := func(h string) {
		if is, ok := index[h]; ok && !acked[h] {
			acked[h] = true
			for _, i := range is {
				delivered(i)
			}
		}
	}
	inflight := 0
	wait := func() error {
		select {
		case h := <-x.acks:
			ack(h)
			inflight--
			return nil
		case <-conn.Done():
			return conn.Err()
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(directStall):
			conn.Close()
			return errors.New("the peer acknowledged nothing")
		}
	}
	for _, i := range send {
		for inflight >= directWindow {
			if err := wait(); err != nil {
				return left(), err
			}
		}
		sc, err := sealed(i)
		if err != nil {
			return left(), err
		}
		if err := conn.SendContext(ctx, append([]byte{chunkFrame}, sc...)); err != nil {
			return left(), err
		}
		d.c.fstats.add(func(s *fileStats) { s.pushed++ })
		inflight++
	}
	for inflight > 0 {
		if err := wait(); err != nil {
			return left(), err
		}
	}
	return left(), nil
}

// cachedChunk returns a chunk from the chunk cache, if it holds it whole.
func (c *Client) cachedChunk(hash string) ([]byte, bool) {
	if c.chunks == nil {
		return nil, false
	}
	b, ok := c.chunks.Get(hash)
	if !ok || chunkHash(b) != hash {
		return nil, false
	}
	return b, true
}

// dropCached removes chunks a fetched file no longer needs from the cache.
func (c *Client) dropCached(hashes []string) {
	if c.chunks == nil {
		return
	}
	for _, h := range hashes {
		c.chunks.Delete(h)
	}
}
