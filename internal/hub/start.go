package hub

import "github.com/natterim/natter/internal/session"

// Start serves conn as Serve does, but returns at once: the connection is
// read by goroutines of its own, and none at all while it waits for input
// if conn can wait without reading (session.StreamConn over TLS, which
// has the methods Idle and WaitInput). ended, if not nil, is called once
// the connection has ended (also when the hub is shutting down and
// refuses it). Shutdown waits for connections started so as for served
// ones.
func (h *Hub) Start(conn session.Conn, ended func()) {
	c := h.newClient(conn)
	h.mu.Lock()
	if h.down {
		h.mu.Unlock()
		conn.Close()
		if ended != nil {
			ended()
		}
		return
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	c.ended = func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		h.wg.Done()
		if ended != nil {
			ended()
		}
	}
	p, _ := conn.(parker)
	c.begin()
	if p != nil && p.Idle() {
		go c.wait(p) // for the Hello
	} else {
		go c.serve(p)
	}
}
