package session

import (
	"encoding/binary"
	"net"
	"syscall"
)

// tlsRecordHeader is the length of a TLS record's header: type, version,
// length.
const tlsRecordHeader = 5

// RecordConn is the socket under a server's tls.Conn. It hands TLS at most
// the rest of the record being read, never the start of the next one, so
// that crypto/tls holds no input that it has not decrypted: once a Read of
// the tls.Conn has returned all the plaintext it had, the next input is in
// the socket, and a connection can wait for it with WaitInput (a shallow
// wait on the socket's readiness) instead of in a blocking Read of the
// tls.Conn (a goroutine with the whole TLS read path on its stack). That
// is what lets an idle connection wait without a goroutine of its own
// (StreamConn.Idle). It costs a read system call per record header.
type RecordConn struct {
	net.Conn
	sc   syscall.Conn // nil: WaitInput does not wait
	hdr  [tlsRecordHeader]byte
	nhdr int // bytes of the current record's header read
	left int // bytes of the current record's body not yet read
}

// NewRecordConn wraps c, the socket that a tls.Conn is to read; sc (c's
// own, or the connection c wraps) lets WaitInput wait for input, and may
// be nil.
func NewRecordConn(c net.Conn, sc syscall.Conn) *RecordConn {
	return &RecordConn{Conn: c, sc: sc}
}

// Read implements net.Conn, stopping at the end of the current record's
// header or body.
func (r *RecordConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return r.Conn.Read(p)
	}
	if r.nhdr == tlsRecordHeader && r.left == 0 {
		r.nhdr = 0 // the record is read; the next one starts
	}
	if r.nhdr < tlsRecordHeader {
		p = p[:min(len(p), tlsRecordHeader-r.nhdr)]
		n, err := r.Conn.Read(p)
		r.nhdr += copy(r.hdr[r.nhdr:], p[:n])
		if r.nhdr == tlsRecordHeader {
			r.left = int(binary.BigEndian.Uint16(r.hdr[3:]))
		}
		return n, err
	}
	n, err := r.Conn.Read(p[:min(len(p), r.left)])
	r.left -= n
	return n, err
}

// WaitInput waits until the socket has input to read (or its end, an
// error, or the read deadline set on it); it reads nothing. Its errors are
// not reported: the Read that follows meets them.
func (r *RecordConn) WaitInput() {
	if r.sc != nil {
		waitReadable(r.sc)
	}
}
