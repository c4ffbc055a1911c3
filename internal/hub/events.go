package hub

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/natterim/natter"
)

// Bus events are a small binary envelope around an encoded wire frame, so a
// frame is encoded once per user, not once per device:
//
//	kind(1) seq(8) len(1) device len(1) skipConn frame…
//
// seq is the entry's inbox sequence number (0 for frames that are not inbox
// entries); device, if set, limits delivery to that device; skipConn, if set,
// excludes that connection.
type eventKind byte

const (
	evFrame  eventKind = 1 // push the frame
	evKick   eventKind = 2 // push the frame (a Bye), then close: the device logged in elsewhere
	evLogout eventKind = 3 // push the frame (a Bye), then close: the user's password changed
	evLive   eventKind = 4 // push the frame, but not to quiet connections: an ephemeral (typing)
)

type event struct {
	kind     eventKind
	seq      uint64
	device   natter.DeviceID
	skipConn string
	frame    []byte
}

var errBadEvent = errors.New("malformed bus event")

func (e event) marshal() []byte {
	b := make([]byte, 0, 11+len(e.device)+len(e.skipConn)+len(e.frame))
	b = append(b, byte(e.kind))
	b = binary.BigEndian.AppendUint64(b, e.seq)
	b = append(b, byte(len(e.device)))
	b = append(b, e.device...)
	b = append(b, byte(len(e.skipConn)))
	b = append(b, e.skipConn...)
	return append(b, e.frame...)
}

func parseEvent(b []byte) (event, error) {
	var e event
	if len(b) < 11 {
		return e, errBadEvent
	}
	e.kind = eventKind(b[0])
	e.seq = binary.BigEndian.Uint64(b[1:9])
	n := int(b[9])
	b = b[10:]
	if len(b) < n+1 {
		return e, errBadEvent
	}
	e.device = natter.DeviceID(b[:n])
	b = b[n:]
	n = int(b[0])
	b = b[1:]
	if len(b) < n {
		return e, errBadEvent
	}
	e.skipConn = string(b[:n])
	e.frame = b[n:]
	return e, nil
}

// publish sends a frame to every device of user.
func (h *Hub) publish(ctx context.Context, user natter.UserID, e event) {
	if err := h.cfg.Bus.Publish(ctx, user, e.marshal()); err != nil {
		h.met.busErrors.Inc()
		h.log.Warn("bus publish", "user", user, "err", err)
	}
}
