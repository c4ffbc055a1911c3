package hub

import (
	"context"
	"fmt"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// Limits on signalling.
const (
	maxSignalData    = 64 << 10
	maxSignalSession = 64
)

// iceServers answers with STUN/TURN credentials for this user.
func (c *client) iceServers(m *wire.IceServers) {
	h := c.h
	if h.cfg.ICE == nil {
		c.push(wire.Error{Ref: m.Ref, Code: wire.CodeUnavailable, Message: "this server offers no STUN/TURN service"})
		return
	}
	user, pass, exp := h.cfg.ICE.Credentials(c.user, h.now())
	c.push(wire.IceConfig{Ref: m.Ref, Host: h.cfg.ICEHost, Port: h.cfg.ICEPort, Username: user, Password: pass, Expires: exp})
}

// signal passes peer-to-peer signalling to one online device of an
// approved contact, or a session ack (kind "ack", see the client's
// sessionack.go) to one online device of an approved contact or of the
// user. The server does not look inside Data.
func (c *client) signal(ctx context.Context, m *wire.Signal) {
	h := c.h
	switch m.Kind {
	case "offer", "answer", "candidate", "bye", "ack":
	default:
		c.fail(m.Ref, fmt.Errorf("%w: signal kind must be offer, answer, candidate, bye or ack", natter.ErrBadRequest))
		return
	}
	if len(m.Data) > maxSignalData || len(m.Session) == 0 || len(m.Session) > maxSignalSession {
		c.fail(m.Ref, fmt.Errorf("%w: signal session must be 1 to %d bytes and data at most %d", natter.ErrBadRequest, maxSignalSession, maxSignalData))
		return
	}
	if (m.Kind != "ack" || m.To != c.user) && !c.requireContact(ctx, m.Ref, m.To) {
		return
	}
	ss, err := h.cfg.Registry.Sessions(ctx, m.To)
	if err != nil {
		c.fail(m.Ref, err)
		return
	}
	online := false
	for _, s := range ss {
		online = online || s.Device == m.Device
	}
	if !online {
		c.push(wire.Error{Ref: m.Ref, Code: wire.CodeOffline, Message: fmt.Sprintf("%s's device %s is not online", m.To, m.Device)})
		return
	}
	b, _ := wire.Encode(wire.SignalIn{From: c.user, FromDevice: c.device, Session: m.Session, Kind: m.Kind, Data: m.Data})
	h.publish(ctx, m.To, event{kind: evFrame, device: m.Device, frame: b})
	h.met.signals.Inc()
	c.push(wire.OK{Ref: m.Ref})
}
