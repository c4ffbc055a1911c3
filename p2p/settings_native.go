//go:build !js

package p2p

import (
	"log/slog"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// newSettingEngine prepares the SettingEngine every attempt's API starts
// from: detached data channels, the ICE timeouts of cfg, pion's waits
// before it nominates a pair, and cfg.SettingEngine last.
func newSettingEngine(cfg Config) webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.DetachDataChannels()
	se.SetICETimeouts(cfg.DisconnectedTimeout, cfg.FailedTimeout-cfg.DisconnectedTimeout, cfg.Keepalive)
	// pion waits before it nominates a pair that is not host to host, in
	// case a better one answers: 500 ms for server-reflexive, 1 s for
	// peer-reflexive, 2 s for relayed. A reflexive pair that answered is
	// a punched hole, as good as paths get across NATs: 200 ms is enough to
	// let a host pair on the same LAN win. The relay keeps its 2 s, so that
	// a direct path still wins where one exists. (In the NAT lab this took
	// two home routers from 1.0 s to direct to about 0.2 s.)
	se.SetSrflxAcceptanceMinWait(200 * time.Millisecond)
	se.SetPrflxAcceptanceMinWait(200 * time.Millisecond)
	if cfg.RelayOnly {
		// Every pair is relayed: no better pair is worth waiting for (pion
		// waits 2 s by default before it nominates a relayed pair).
		se.SetRelayAcceptanceMinWait(0)
	}
	if cfg.SettingEngine != nil {
		cfg.SettingEngine(&se)
	}
	return se
}

// newAPI returns the webrtc.API for one attempt: the Manager's settings
// with pion's logs tagged with the attempt, and no codecs or interceptors
// (data channels need none).
func (m *Manager) newAPI(log *slog.Logger) *webrtc.API {
	se := m.se
	se.LoggerFactory = pionLogs{log: log}
	return webrtc.NewAPI(
		webrtc.WithSettingEngine(se),
		webrtc.WithMediaEngine(&webrtc.MediaEngine{}),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}),
	)
}

// certFingerprint is the fingerprint of the certificate every connection
// of m uses. The caller holds m.mu.
func (m *Manager) certFingerprint() string { return certFingerprint(m.cert) }
