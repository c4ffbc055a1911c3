package server

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/turnsrv"
)

// TURNSecretEnv names the environment variable that holds the secret TURN
// credentials are signed with (turnsrv.Config.Secret): the same on every
// node of a cluster, so that a relay accepts what any node gave. Without
// it each process makes a random one.
const TURNSecretEnv = "NATTER_TURN_SECRET"

// startTURN starts the STUN/TURN service. Relay credentials are good only
// while their user has a live session (the registry is memory: the check
// is cheap enough for the TURN server's read loop).
func (s *Server) startTURN(reg natter.Registry) (*turnsrv.Server, error) {
	relay, err := s.pickRelayIP()
	if err != nil {
		return nil, err
	}
	s.relayIP = relay
	secret := []byte(os.Getenv(TURNSecretEnv))
	if len(secret) > 0 && len(secret) < 16 {
		return nil, fmt.Errorf("%s is %d bytes: use at least 16 random bytes (e.g. openssl rand -hex 32)", TURNSecretEnv, len(secret))
	}
	if len(secret) == 0 && s.cfg.Bus != "" {
		s.log.Warn("no "+TURNSecretEnv+": this node's TURN relay refuses credentials that other nodes gave, and theirs this node's; give every node the same secret",
			"component", "turn")
	}
	t, err := turnsrv.New(turnsrv.Config{
		Secret:  secret,
		Addr:    s.cfg.UDP,
		RelayIP: relay,
		Authorize: func(u natter.UserID) bool {
			ss, err := reg.Sessions(context.Background(), u)
			return err == nil && len(ss) > 0
		},
		Logger:     s.log, // turnsrv tags its lines with component=turn itself
		Registerer: s.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("stun/turn: %w", err) // err names the address
	}
	return t, nil
}

// pickRelayIP returns --relay-ip, else the IP of --udp if it names one,
// else this host's first global unicast IPv4 address, else 127.0.0.1. The
// relay address is what peers send relayed packets to, so behind a NAT or
// with several addresses, set --relay-ip.
func (s *Server) pickRelayIP() (net.IP, error) {
	if s.cfg.RelayIP != "" {
		ip := net.ParseIP(s.cfg.RelayIP)
		if ip == nil || ip.To4() == nil {
			return nil, fmt.Errorf("--relay-ip %q: need an IPv4 address", s.cfg.RelayIP)
		}
		return ip, nil
	}
	host, _, err := net.SplitHostPort(s.cfg.UDP)
	if err != nil {
		return nil, fmt.Errorf("--udp %q: %w", s.cfg.UDP, err)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && ip.To4() != nil {
		return ip, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP, nil
			}
		}
	}
	return net.IPv4(127, 0, 0, 1), nil
}
