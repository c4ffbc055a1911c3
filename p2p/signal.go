package p2p

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Signaler sends a signal to one device of a contact. The SDK implements it
// with wire.Signal through natterd. Signal may block until the server has
// taken the signal; the Manager calls it from one goroutine per connection
// attempt, in order, never from HandleSignal.
type Signaler interface {
	Signal(ctx context.Context, to natter.UserID, device natter.DeviceID, session, kind string, data []byte) error
}

// The signal kinds (wire.Signal's Kind). The data of an offer or answer is a
// JSON webrtc.SessionDescription, of a candidate a JSON
// webrtc.ICECandidateInit (trickle ICE); a bye has no data.
const (
	KindOffer     = "offer"
	KindAnswer    = "answer"
	KindCandidate = "candidate"
	KindBye       = "bye"
)

// maxSignalData bounds the data of one incoming signal: an SDP offer for one
// data channel is about 1 KiB, a candidate about 100 bytes.
const maxSignalData = 32 << 10

// maxSessionID bounds the length of a session ID; IDs are [A-Za-z0-9_-].
const maxSessionID = 64

// signal is a decoded incoming signal.
type signal struct {
	kind string
	desc webrtc.SessionDescription // offer, answer
	cand webrtc.ICECandidateInit   // candidate
}

// decodeSignal decodes and checks the data of an incoming signal. It parses
// an offer's or answer's SDP and a candidate's attribute, so that garbage is
// dropped before it reaches a PeerConnection. It never panics (fuzzed).
func decodeSignal(kind string, data []byte) (signal, error) {
	if len(data) > maxSignalData {
		return signal{}, fmt.Errorf("%w: %s of %d bytes", ErrBadSignal, kind, len(data))
	}
	switch kind {
	case KindOffer, KindAnswer:
		var d webrtc.SessionDescription
		if err := json.Unmarshal(data, &d); err != nil {
			return signal{}, fmt.Errorf("%w: %s: %w", ErrBadSignal, kind, err)
		}
		if d.Type.String() != kind {
			return signal{}, fmt.Errorf("%w: %s carries an SDP of type %q", ErrBadSignal, kind, d.Type)
		}
		if _, err := d.Unmarshal(); err != nil {
			return signal{}, fmt.Errorf("%w: %s: %w", ErrBadSignal, kind, err)
		}
		return signal{kind: kind, desc: d}, nil
	case KindCandidate:
		var c webrtc.ICECandidateInit
		if err := json.Unmarshal(data, &c); err != nil {
			return signal{}, fmt.Errorf("%w: candidate: %w", ErrBadSignal, err)
		}
		if v := strings.TrimPrefix(c.Candidate, "candidate:"); v != "" {
			if _, err := ice.UnmarshalCandidate(v); err != nil {
				return signal{}, fmt.Errorf("%w: candidate: %w", ErrBadSignal, err)
			}
		}
		return signal{kind: kind, cand: c}, nil
	case KindBye:
		return signal{kind: kind}, nil
	}
	return signal{}, fmt.Errorf("%w: unknown kind %q", ErrBadSignal, kind)
}

// encodeSignal is decodeSignal's inverse, for outgoing signals.
func encodeSignal(s signal) ([]byte, error) {
	switch s.kind {
	case KindOffer, KindAnswer:
		return json.Marshal(s.desc)
	case KindCandidate:
		return json.Marshal(s.cand)
	}
	return nil, nil
}

func validSessionID(id string) bool {
	if len(id) == 0 || len(id) > maxSessionID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ICEServers turns natterd's IceConfig into the STUN and TURN servers for
// Config.ICEServers or Manager.SetICEServers. host is the host name or
// address of the natterd the client is connected to; cfg.Host overrides it.
// natterd serves STUN and TURN on the same UDP port.
func ICEServers(cfg wire.IceConfig, host string) []webrtc.ICEServer {
	if cfg.Host != "" {
		host = cfg.Host
	}
	if host == "" || cfg.Port <= 0 {
		return nil
	}
	hp := net.JoinHostPort(host, strconv.Itoa(cfg.Port))
	servers := []webrtc.ICEServer{{URLs: []string{"stun:" + hp}}}
	if cfg.Username != "" {
		servers = append(servers, webrtc.ICEServer{
			URLs:       []string{"turn:" + hp + "?transport=udp"},
			Username:   cfg.Username,
			Credential: cfg.Password,
		})
	}
	return servers
}
