package client

import (
	"encoding/hex"
	"errors"
	"time"

	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// Session acknowledgements (seal.SessionAck).
//
// A device that opens a message carrying the init of a session with it
// (the message started the session, or an earlier ack was lost) tells the
// sending device at once, so that its next messages carry no init
// (~1.2 KB less each). The ack goes as a Signal of kind "ack" to that one
// device: relayed live by the server, never stored, so it costs no disk
// write and never shows in any inbox, history or archive; Session is the
// session ID in hex and Data the ack's MAC, which only the two devices can
// compute. If the sending device is offline the ack is lost, and the init
// keeps going until a later message's ack (or a message sealed back, whose
// wrap names the session) reaches it.

// ackKind is the Signal kind of a session ack.
const ackKind = "ack"

// ackAgain is how long a device waits before acknowledging the same session
// again, when its sender still attaches the init: a burst of queued
// messages of one session gets one ack, and a lost ack is repeated.
const ackAgain = 5 * time.Second

// maxAckMemory bounds the sessions whose last ack time is kept.
const maxAckMemory = 4096

// sendAck sends a to its device in the background, unless the same session
// was acknowledged within ackAgain.
func (c *Client) sendAck(a *seal.SessionAck) {
	sid := hex.EncodeToString(a.SID)
	now := time.Now()
	e := &c.e2e
	e.mu.Lock()
	if at, ok := e.acked[sid]; ok && now.Sub(at) < ackAgain {
		e.mu.Unlock()
		return
	}
	if e.acked == nil || len(e.acked) >= maxAckMemory {
		e.acked = make(map[string]time.Time) // forgetting only means acking again
	}
	e.acked[sid] = now
	e.mu.Unlock()
	c.wg.Go(func() {
		ctx, cancel := c.bgContext(keysTimeout)
		defer cancel()
		if err := c.Signal(ctx, a.User, a.Device, sid, ackKind, a.MAC); err != nil {
			c.log.Debug("session ack not sent (the init keeps going until one arrives)", "to", a.User, "device", a.Device, "err", err)
			c.e2e.mu.Lock()
			delete(c.e2e.acked, sid) // the next message with the init asks again
			c.e2e.mu.Unlock()
		}
	})
}

// takeAck handles a session ack from a device this device seals for.
func (c *Client) takeAck(f *wire.SignalIn) {
	kr := c.Keyring()
	if kr == nil {
		return
	}
	sid, err := hex.DecodeString(f.Session)
	if err == nil {
		_, err = kr.Acknowledged(f.From, f.FromDevice, sid, f.Data)
	}
	if err != nil {
		if !errors.Is(err, seal.ErrBadAck) {
			err = errors.Join(seal.ErrBadAck, err)
		}
		c.log.Warn("session ack refused", "from", f.From, "device", f.FromDevice, "err", err)
	}
}

// isAck reports whether a Signal is a session ack.
func isAck(f *wire.SignalIn) bool { return f.Kind == ackKind }
