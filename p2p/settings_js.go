//go:build js

package p2p

import (
	"log/slog"

	"github.com/pion/webrtc/v4"
)

// newSettingEngine prepares the SettingEngine every attempt's API starts
// from. In the browser pion drives the RTCPeerConnection, which has its
// own ICE timeouts and nomination and takes no settings: cfg's
// DisconnectedTimeout, FailedTimeout and Keepalive (except as the period
// of Path and RTT's reading of the statistics) do not apply, and only
// detached data channels are set. cfg.SettingEngine is called all the
// same.
func newSettingEngine(cfg Config) webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.DetachDataChannels()
	if cfg.SettingEngine != nil {
		cfg.SettingEngine(&se)
	}
	return se
}

// newAPI returns the webrtc.API for one attempt. The browser logs for
// itself: pion's js build has no logger, and no codecs or interceptors
// to leave out.
func (m *Manager) newAPI(*slog.Logger) *webrtc.API {
	return webrtc.NewAPI(webrtc.WithSettingEngine(m.se))
}

// certFingerprint is empty: the browser makes each RTCPeerConnection its
// own certificate (pion's js build does not pass Configuration's
// Certificates on), so no one fingerprint holds for all of m's
// connections. The caller holds m.mu.
func (m *Manager) certFingerprint() string { return "" }
