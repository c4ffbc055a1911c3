package hub

import (
	"sync"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// serverConversationWindow is how recently two users must have exchanged a
// message through the server for their conversation to count as one on the
// server path.
const serverConversationWindow = 5 * time.Minute

// maxTrackedPairs bounds the memory spent on counting server conversations.
const maxTrackedPairs = 200_000

// paths counts conversations by path for natter_conversations: server
// conversations from the messages the hub relays, peer-to-peer channels from
// the clients' PathReports.
type paths struct {
	mu     sync.Mutex
	active map[[2]natter.UserID]time.Time // pair → last message through the server
	p2p    map[string]int                 // "direct"/"relayed" → channels reported open
}

func newPaths() *paths {
	return &paths{active: map[[2]natter.UserID]time.Time{}, p2p: map[string]int{}}
}

// relayed records a message between a and b through the server.
func (p *paths) relayed(a, b natter.UserID, now time.Time) {
	if b < a {
		a, b = b, a
	}
	p.mu.Lock()
	if len(p.active) >= maxTrackedPairs {
		p.pruneLocked(now)
	}
	if len(p.active) < maxTrackedPairs {
		p.active[[2]natter.UserID{a, b}] = now
	}
	p.mu.Unlock()
}

// serverCount returns the number of pairs active within the window.
func (p *paths) serverCount(now time.Time) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked(now)
	return float64(len(p.active))
}

func (p *paths) pruneLocked(now time.Time) {
	for k, t := range p.active {
		if now.Sub(t) > serverConversationWindow {
			delete(p.active, k)
		}
	}
}

// change moves one reported channel from path old to path new ("" = none).
func (p *paths) change(old, new string) {
	p.mu.Lock()
	if old != "" {
		p.p2p[old]--
	}
	if new != "" {
		p.p2p[new]++
	}
	p.mu.Unlock()
}

func (p *paths) p2pCount(path string) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return float64(p.p2p[path])
}

// pathReport records a client's report of its channel to a peer.
func (c *client) pathReport(m *wire.PathReport) {
	path := m.Path
	if path != "direct" && path != "relayed" {
		path = ""
	}
	if c.p2p == nil {
		c.p2p = map[natter.UserID]string{}
	}
	old := c.p2p[m.Peer]
	if old == path {
		return
	}
	if path == "" {
		delete(c.p2p, m.Peer)
	} else {
		if len(c.p2p) >= maxReportedChannels && old == "" {
			return // a client reporting absurdly many channels is not counted
		}
		c.p2p[m.Peer] = path
	}
	c.h.paths.change(old, path)
}

// maxReportedChannels bounds the channels one connection may report.
const maxReportedChannels = 256

// dropPathReports forgets the channels a closing connection reported.
func (c *client) dropPathReports() {
	for _, path := range c.p2p {
		c.h.paths.change(path, "")
	}
	c.p2p = nil
}
