//go:build js

package p2p

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall/js"
	"time"

	"github.com/pion/webrtc/v4"
)

// statsTimeout bounds one getStats call.
const statsTimeout = 2 * time.Second

// selectedPath is Path: the path getStats last showed (watchPath reads it
// when the channel opens and then every Config.Keepalive), so that Path
// never waits for a promise, even when called from a JS callback.
func (c *Conn) selectedPath() Path {
	c.statMu.Lock()
	defer c.statMu.Unlock()
	return c.path
}

// selectedRTT is RTT: the selected candidate pair's currentRoundTripTime
// as getStats last showed it (see selectedPath).
func (c *Conn) selectedRTT() time.Duration {
	c.statMu.Lock()
	defer c.statMu.Unlock()
	return c.rtt
}

// watchPath reads the statistics once, before the Conn is handed out, and
// then every Config.Keepalive until the connection ends. It is called by
// run, once, when the channel is open.
func (c *Conn) watchPath() {
	ctx, cancel := context.WithCancel(context.Background())
	c.m.wg.Add(2)
	go func() {
		defer c.m.wg.Done()
		<-c.done
		cancel()
	}()
	c.readStats(ctx)
	go func() {
		defer c.m.wg.Done()
		t := time.NewTicker(c.m.cfg.Keepalive)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.readStats(ctx)
			}
		}
	}()
}

// readStats asks the RTCPeerConnection for its statistics and records the
// selected candidate pair's path and round-trip time.
func (c *Conn) readStats(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	stats, err := c.getStats(ctx)
	if err != nil {
		c.log.Debug("p2p: stats", "err", err)
		return
	}
	pair, local, remote, ok := selectedPair(stats)
	if !ok {
		return
	}
	lt, _ := webrtc.NewICECandidateType(local.candidateType) // unknown: not a relay
	rt, _ := webrtc.NewICECandidateType(remote.candidateType)
	c.statMu.Lock()
	defer c.statMu.Unlock()
	c.path = c.pathOf(lt, rt, net.JoinHostPort(remote.address, strconv.Itoa(remote.port)))
	if rtt := pair.roundTrip(); rtt > 0 {
		c.rtt = rtt
	}
}

// getStats calls the RTCPeerConnection's getStats and reads the entries
// Path and RTT need.
func (c *Conn) getStats(ctx context.Context) (stats []iceStat, err error) {
	defer func() {
		if r := recover(); r != nil { // a JS exception, e.g. once closed
			err = fmt.Errorf("p2p: getStats: %v", r)
		}
	}()
	report, err := await(ctx, c.pc.JSValue().Call("getStats"))
	if err != nil {
		return nil, fmt.Errorf("p2p: getStats: %w", err)
	}
	return readStats(report), nil
}

// fingerprints returns this side's certificate fingerprint and the
// peer's. The browser made this side's certificate: its fingerprint is
// the one in the local description. The peer's is the certificate it
// proved in the DTLS handshake where the browser tells it
// (getRemoteCertificates; Firefox does not), else the one fingerprint in
// the remote description, which the browser checked the handshake
// against.
func (c *Conn) fingerprints() (local, remote string) {
	if d := c.pc.LocalDescription(); d != nil {
		local = sdpFingerprint(d.SDP)
	}
	if der := c.remoteCertificate(); len(der) > 0 {
		return local, derFingerprint(der)
	}
	if d := c.pc.RemoteDescription(); d != nil {
		remote = sdpFingerprint(d.SDP)
	}
	return local, remote
}

func (c *Conn) remoteCertificate() (der []byte) {
	defer func() {
		if recover() != nil {
			der = nil
		}
	}()
	sctp := c.pc.SCTP()
	if sctp == nil {
		return nil
	}
	dtls := sctp.Transport()
	if dtls == nil {
		return nil
	}
	return dtls.GetRemoteCertificate()
}

// sdpFingerprint returns the SHA-256 fingerprint in an SDP, as
// Conn.LocalFingerprint gives it, or "" if it has none or more than one
// fingerprint (then which one the browser checked is unclear).
func sdpFingerprint(sdp string) string {
	fp := ""
	for line := range strings.Lines(sdp) {
		v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a=fingerprint:")
		if !ok {
			continue
		}
		alg, hex, _ := strings.Cut(strings.TrimSpace(v), " ")
		f := strings.ToLower(alg) + " " + strings.ToLower(strings.TrimSpace(hex))
		if fp != "" && f != fp {
			return ""
		}
		fp = f
	}
	if !strings.HasPrefix(fp, "sha-256 ") {
		return ""
	}
	return fp
}

// onLocalCandidate calls f with each candidate this side gathers, as the
// browser gives it (pion's js build rebuilds the candidate from its
// fields and loses sdpMid, sdpMLineIndex and tcptype, so that a browser
// peer cannot add it). The func it returns, called once c.pc is closed,
// removes the listener and releases it.
func (c *Conn) onLocalCandidate(f func(webrtc.ICECandidateInit)) (stop func()) {
	listener := js.FuncOf(func(_ js.Value, args []js.Value) any {
		if init, ok := candidateInit(arg0(args)); ok {
			go f(init) // never block a JS callback
		}
		return nil
	})
	c.pc.JSValue().Call("addEventListener", "icecandidate", listener)
	return func() {
		c.pc.JSValue().Call("removeEventListener", "icecandidate", listener)
		listener.Release()
	}
}

// candidateInit reads an RTCPeerConnectionIceEvent's candidate; false at
// the end of gathering (a null or empty candidate).
func candidateInit(event js.Value) (webrtc.ICECandidateInit, bool) {
	if event.Type() != js.TypeObject {
		return webrtc.ICECandidateInit{}, false
	}
	cand := event.Get("candidate")
	if cand.Type() != js.TypeObject {
		return webrtc.ICECandidateInit{}, false
	}
	s := jsString(cand, "candidate")
	if s == "" {
		return webrtc.ICECandidateInit{}, false
	}
	init := webrtc.ICECandidateInit{Candidate: s}
	if v := cand.Get("sdpMid"); v.Type() == js.TypeString {
		mid := v.String()
		init.SDPMid = &mid
	}
	if v := cand.Get("sdpMLineIndex"); v.Type() == js.TypeNumber {
		idx := uint16(v.Int())
		init.SDPMLineIndex = &idx
	}
	if v := cand.Get("usernameFragment"); v.Type() == js.TypeString {
		ufrag := v.String()
		init.UsernameFragment = &ufrag
	}
	return init, true
}

// prepareDataChannel makes the channel deliver binary messages as
// ArrayBuffers: pion's js build leaves the browser's default, which is
// Blob in some browsers, read back asynchronously and so possibly out of
// order.
func prepareDataChannel(dc *webrtc.DataChannel) {
	dc.JSValue().Set("binaryType", "arraybuffer")
}

// closePeerConnection closes c.pc. The browser has no graceful close to
// wait for: Close it is.
func (c *Conn) closePeerConnection() error { return c.pc.Close() }
