//go:build !js

package p2p

import (
	"net"
	"strconv"
	"time"

	"github.com/pion/webrtc/v4"
)

// selectedPath is Path: pion's selected candidate pair, read now.
func (c *Conn) selectedPath() Path {
	pair, err := c.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	c.statMu.Lock()
	defer c.statMu.Unlock()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return c.path
	}
	c.path = c.pathOf(pair.Local.Typ, pair.Remote.Typ, net.JoinHostPort(pair.Remote.Address, strconv.Itoa(int(pair.Remote.Port))))
	return c.path
}

// selectedRTT is RTT: the selected pair's round-trip time as pion's
// keepalives measured it, read now.
func (c *Conn) selectedRTT() time.Duration {
	st, ok := c.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePairStats()
	c.statMu.Lock()
	defer c.statMu.Unlock()
	if ok && st.CurrentRoundTripTime > 0 {
		c.rtt = time.Duration(st.CurrentRoundTripTime * float64(time.Second))
	}
	return c.rtt
}

// watchPath is called once the channel is open. pion answers Path and RTT
// at once, so there is nothing to watch.
func (c *Conn) watchPath() {}

// fingerprints returns this side's certificate fingerprint and the one
// the peer proved in the DTLS handshake.
func (c *Conn) fingerprints() (local, remote string) {
	return certFingerprint(c.cert), derFingerprint(c.pc.SCTP().Transport().GetRemoteCertificate())
}

// onLocalCandidate calls f with each candidate this side gathers. The
// func it returns, called once c.pc is closed, has nothing to do: pion
// drops its handlers itself.
func (c *Conn) onLocalCandidate(f func(webrtc.ICECandidateInit)) (stop func()) {
	c.pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil {
			f(cand.ToJSON())
		}
	})
	return func() {}
}

// prepareDataChannel sets what pion's defaults do not: nothing.
func prepareDataChannel(*webrtc.DataChannel) {}

// closePeerConnection closes c.pc, waiting for its goroutines.
func (c *Conn) closePeerConnection() error { return c.pc.GracefulClose() }
