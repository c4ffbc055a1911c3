package natsbus

import (
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"sync/atomic"
)

// What the first byte of a bus message says: the rest is the whole event,
// or one part of an event larger than the NATS server's max_payload:
//
//	kindWhole event…
//	kindPart  id(16) index(4) count(4) bytes…
//
// id names the event (this node's random 8 bytes and a counter), so that
// the parts of events published at once by goroutines sharing a connection
// can interleave.
const (
	kindWhole  byte = 0
	kindPart   byte = 1
	partHeader      = 1 + 16 + 4 + 4
)

// Bounds on what a receiving node keeps while it joins parts.
const (
	maxEventBytes = 64 << 20 // larger events are dropped
	maxJoining    = 16       // events being joined per user; the oldest is dropped
)

// partIDs issues the ids of events sent in parts.
type partIDs struct {
	node [8]byte
	next atomic.Uint64
}

func (p *partIDs) init() { rand.Read(p.node[:]) }

func (p *partIDs) id() (id [16]byte) {
	copy(id[:8], p.node[:])
	binary.BigEndian.PutUint64(id[8:], p.next.Add(1))
	return id
}

// publishParts publishes event in parts of at most max bytes. The parts go
// out on one connection to one subject, one after another, so they arrive
// in order and before anything this goroutine publishes next.
func (b *Bus) publishParts(subj string, event []byte, max int) error {
	id := b.parts.id()
	count := (len(event) + max - 1) / max
	buf := make([]byte, partHeader+max)
	buf[0] = kindPart
	copy(buf[1:17], id[:])
	binary.BigEndian.PutUint32(buf[21:25], uint32(count))
	for i := range count {
		chunk := event[i*max : min(len(event), (i+1)*max)]
		binary.BigEndian.PutUint32(buf[17:21], uint32(i))
		n := copy(buf[partHeader:], chunk)
		if err := b.nc.Publish(subj, buf[:partHeader+n]); err != nil {
			return err
		}
	}
	return nil
}

// joiner puts events sent in parts together again, for one user's
// subscription on one node; only that user's delivery goroutine uses it.
type joiner struct {
	joining []*partial
}

type partial struct {
	id    [16]byte
	next  uint32
	count uint32
	buf   []byte
}

// add takes one bus message and returns the event it completes, if any.
// A malformed message, or a part out of order, is logged and dropped with
// the event it belongs to.
func (j *joiner) add(msg []byte, log *slog.Logger) ([]byte, bool) {
	if len(msg) == 0 {
		log.Warn("empty bus message dropped")
		return nil, false
	}
	switch msg[0] {
	case kindWhole:
		return msg[1:], true
	case kindPart:
	default:
		log.Warn("bus message of unknown kind dropped", "kind", msg[0])
		return nil, false
	}
	if len(msg) < partHeader {
		log.Warn("short bus message part dropped", "bytes", len(msg))
		return nil, false
	}
	var id [16]byte
	copy(id[:], msg[1:17])
	index, count := binary.BigEndian.Uint32(msg[17:21]), binary.BigEndian.Uint32(msg[21:25])
	data := msg[partHeader:]
	i := j.find(id)
	if index == 0 {
		if i >= 0 || count < 2 || uint64(count)*uint64(len(data)) > maxEventBytes {
			log.Warn("bus event part dropped", "index", index, "count", count)
			j.drop(i)
			return nil, false
		}
		if len(j.joining) == maxJoining {
			log.Warn("bus event dropped: too many events arriving in parts at once")
			j.drop(0)
		}
		buf := make([]byte, 0, int(count)*len(data))
		j.joining = append(j.joining, &partial{id: id, next: 1, count: count, buf: append(buf, data...)})
		return nil, false
	}
	if i < 0 || j.joining[i].next != index || j.joining[i].count != count || len(j.joining[i].buf)+len(data) > maxEventBytes {
		log.Warn("bus event part out of order dropped", "index", index, "count", count)
		j.drop(i)
		return nil, false
	}
	p := j.joining[i]
	p.buf = append(p.buf, data...)
	p.next++
	if p.next < p.count {
		return nil, false
	}
	j.drop(i)
	return p.buf, true
}

func (j *joiner) find(id [16]byte) int {
	for i, p := range j.joining {
		if p.id == id {
			return i
		}
	}
	return -1
}

func (j *joiner) drop(i int) {
	if i >= 0 {
		j.joining = append(j.joining[:i], j.joining[i+1:]...)
	}
}
