package client

import "github.com/natterim/natter"

// Test hooks for the external tests (package client_test).

// FileStatsOf returns the chunks c pushed over peer-to-peer channels,
// uploaded to natterd, received over channels, and received again.
func FileStatsOf(c *Client) (pushed, uploaded, received, dups int) {
	c.fstats.mu.Lock()
	defer c.fstats.mu.Unlock()
	s := &c.fstats
	return s.pushed, s.uploaded, s.received, s.dups
}

// CutDirect closes c's peer-to-peer channel to peer, as a drop would, and
// reports whether there was one.
func CutDirect(c *Client, peer natter.UserID) bool {
	d := c.dr.Load()
	if d == nil {
		return false
	}
	d.mu.Lock()
	conn := d.conns[peer]
	d.mu.Unlock()
	if conn == nil {
		return false
	}
	conn.Close()
	return true
}
