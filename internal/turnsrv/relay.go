package turnsrv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/pion/turn/v5"
)

// relayGen is the pion RelayAddressGenerator: it opens each allocation's
// relay socket (in the port range, if one is set) and wraps it in a
// relayConn, which counts what is relayed to peers and which Close and
// Revoke can close.
type relayGen struct {
	s         *Server
	bindIP    net.IP // the relay sockets' local IP
	advertise net.IP // the relayed address's IP told to clients
	min, max  uint16 // port range; 0, 0: any
}

// Validate is called by pion on start.
func (g *relayGen) Validate() error { return nil }

// AllocatePacketConn opens a UDP relay socket. conf.RequestedPort is
// non-zero for the second port of an EVEN-PORT reservation. Relays are
// IPv4 only: an Allocate asking for IPv6 is refused (pion answers 508).
func (g *relayGen) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	if conf.Network != "udp4" {
		return nil, nil, fmt.Errorf("turnsrv: %s relays are not offered, only udp4", conf.Network)
	}
	var (
		pc  net.PacketConn
		err error
	)
	switch {
	case conf.RequestedPort != 0 || g.min == 0:
		pc, err = g.listen(conf.Network, conf.RequestedPort)
	default:
		size := int(g.max) - int(g.min) + 1
		for range min(size, 64) {
			if pc, err = g.listen(conf.Network, int(g.min)+rand.IntN(size)); err == nil {
				break
			}
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open relay socket: %w", err)
	}
	addr := &net.UDPAddr{IP: g.advertise, Port: pc.LocalAddr().(*net.UDPAddr).Port}
	return g.s.newRelayConn(pc, addr), addr, nil
}

func (g *relayGen) listen(network string, port int) (net.PacketConn, error) {
	return net.ListenPacket(network, net.JoinHostPort(g.bindIP.String(), fmt.Sprint(port)))
}

// AllocateListener refuses TCP allocations.
func (g *relayGen) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errNoTCPRelay
}

// AllocateConn refuses TCP relay connections (RFC 6062 Connect).
func (g *relayGen) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errNoTCPRelay
}

// relayConn is one allocation's relay socket. It counts the payload bytes
// written to peers, and its Close may be called more than once (by pion,
// by Revoke, by Server.Close).
type relayConn struct {
	net.PacketConn
	s    *Server
	key  string // advertised address
	once sync.Once
	err  error
}

func (s *Server) newRelayConn(pc net.PacketConn, addr *net.UDPAddr) *relayConn {
	r := &relayConn{PacketConn: pc, s: s, key: addr.String()}
	s.mu.Lock()
	s.relays[r.key] = r
	s.mu.Unlock()
	return r
}

// WriteTo sends a relayed payload to a peer.
func (r *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	n, err := r.PacketConn.WriteTo(p, addr)
	if n > 0 {
		r.s.m.toPeer.Add(float64(n))
	}
	return n, err
}

// Close closes the socket once; later calls return the first one's result.
func (r *relayConn) Close() error {
	r.once.Do(func() {
		r.err = r.PacketConn.Close()
		r.s.mu.Lock()
		delete(r.s.relays, r.key)
		r.s.mu.Unlock()
	})
	return r.err
}

// listenConn is the service's UDP socket as pion sees it. It watches what
// pion writes to clients, to count STUN Binding answers and the payload
// bytes relayed to clients (pion's server counts neither); it keeps pion's
// read loop alive across transient read errors (pion ends the loop, and so
// the whole service, on any error); and it tells Close when the read loop
// has seen the socket closed.
type listenConn struct {
	net.PacketConn
	m    *metrics
	log  *slog.Logger
	lim  *limiter
	done chan struct{} // closed once ReadFrom has returned net.ErrClosed
	once sync.Once
}

func newListenConn(pc net.PacketConn, m *metrics, log *slog.Logger) *listenConn {
	return &listenConn{PacketConn: pc, m: m, log: log, lim: newLimiter(time.Now), done: make(chan struct{})}
}

// ReadFrom reads the next datagram, retrying after errors other than a
// closed socket.
func (c *listenConn) ReadFrom(p []byte) (int, net.Addr, error) {
	var delay time.Duration
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err == nil {
			return n, addr, nil
		}
		if errors.Is(err, net.ErrClosed) {
			c.once.Do(func() { close(c.done) })
			return n, addr, err
		}
		delay = min(max(2*delay, time.Millisecond), 100*time.Millisecond)
		if ok, dropped := c.lim.allow(); ok {
			c.log.Warn("udp read", "err", err, "retry_in", delay, "suppressed", dropped)
		}
		time.Sleep(delay)
	}
}

// WriteTo sends a datagram to a client and counts it.
func (c *listenConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(p, addr)
	if err == nil {
		c.count(p)
	}
	return n, err
}

// STUN and TURN message details (RFC 8489, RFC 8656) that count needs.
const (
	stunHeaderSize     = 20
	stunMagicCookie    = 0x2112A442
	typeBindingSuccess = 0x0101 // Binding success response
	typeDataIndication = 0x0017 // Data indication: a peer's datagram for the client
	attrData           = 0x0013 // DATA
	channelDataHeader  = 4
)

// count counts a datagram sent to a client: a Binding success response,
// or a peer's payload in a ChannelData message or a Data indication.
func (c *listenConn) count(p []byte) {
	if len(p) >= channelDataHeader && p[0]&0xC0 == 0x40 { // channel numbers are 0x4000-0x7FFF
		c.m.toClient.Add(float64(binary.BigEndian.Uint16(p[2:4])))
		return
	}
	if len(p) < stunHeaderSize || p[0]&0xC0 != 0 || binary.BigEndian.Uint32(p[4:8]) != stunMagicCookie {
		return
	}
	switch binary.BigEndian.Uint16(p[0:2]) {
	case typeBindingSuccess:
		c.m.bindings.Inc()
	case typeDataIndication:
		if n, ok := dataAttrLen(p); ok {
			c.m.toClient.Add(float64(n))
		}
	}
}

// dataAttrLen returns the length of the DATA attribute of the STUN message
// msg.
func dataAttrLen(msg []byte) (int, bool) {
	end := min(len(msg), stunHeaderSize+int(binary.BigEndian.Uint16(msg[2:4])))
	for i := stunHeaderSize; i+4 <= end; {
		typ, n := binary.BigEndian.Uint16(msg[i:]), int(binary.BigEndian.Uint16(msg[i+2:]))
		if typ == attrData {
			return n, true
		}
		i += 4 + (n+3)&^3
	}
	return 0, false
}
