package wire

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Type is a frame's type byte. Client-to-server types are below 0x80,
// server-to-client types 0x80 and above.
type Type byte

// Frame types. The payload of each is the struct of the same name.
const (
	THello          Type = 0x01
	TSignup         Type = 0x02
	TLogin          Type = 0x03
	TResume         Type = 0x04
	TLogout         Type = 0x05
	TContactOp      Type = 0x06
	TListContacts   Type = 0x07
	TSetPresence    Type = 0x08
	TSetReach       Type = 0x09
	TSend           Type = 0x0A
	TReceipt        Type = 0x0B
	TAck            Type = 0x0C
	TSync           Type = 0x0D
	THistory        Type = 0x0E
	TPing           Type = 0x0F
	TIceServers     Type = 0x10
	TSignal         Type = 0x11
	TCopy           Type = 0x12
	TPathReport     Type = 0x13
	TPublishKeys    Type = 0x14
	TFetchKeys      Type = 0x15
	TChangePassword Type = 0x16
	TPutChunk       Type = 0x17
	THaveChunks     Type = 0x18
	TGetChunk       Type = 0x19
	TArchiveSet     Type = 0x1A
	TArchivePut     Type = 0x1B
	TArchiveGet     Type = 0x1C
	TArchiveKeyPut  Type = 0x1D
	TTyping         Type = 0x1E
	TRemoveDevice   Type = 0x1F
	TWelcome        Type = 0x80
	TAuthed         Type = 0x81
	TOK             Type = 0x82
	TError          Type = 0x83
	TContacts       Type = 0x84
	TSendAck        Type = 0x85
	TPresence       Type = 0x86
	TContactUpdate  Type = 0x87
	TMsg            Type = 0x88
	TRcpt           Type = 0x89
	TInbox          Type = 0x8A
	TReach          Type = 0x8B
	TMessages       Type = 0x8C
	TPong           Type = 0x8D
	TBye            Type = 0x8E
	TIceConfig      Type = 0x8F
	TSignalIn       Type = 0x90
	TKeys           Type = 0x91
	TKeysChanged    Type = 0x92
	TChunks         Type = 0x93
	TChunk          Type = 0x94
	TArchiveState   Type = 0x95
	TTypingIn       Type = 0x96
)

var typeNames = map[Type]string{
	THello: "hello", TSignup: "signup", TLogin: "login", TResume: "resume", TLogout: "logout",
	TContactOp: "contact_op", TListContacts: "list_contacts", TSetPresence: "set_presence",
	TSetReach: "set_reach", TSend: "send", TReceipt: "receipt", TAck: "ack", TSync: "sync",
	THistory: "history", TPing: "ping", TWelcome: "welcome", TAuthed: "authed", TOK: "ok",
	TError: "error", TContacts: "contacts", TSendAck: "send_ack", TPresence: "presence",
	TContactUpdate: "contact_update", TMsg: "msg", TRcpt: "rcpt", TInbox: "inbox",
	TReach: "reach", TMessages: "messages", TPong: "pong", TBye: "bye",
	TIceServers: "ice_servers", TSignal: "signal", TCopy: "copy", TPathReport: "path_report", TIceConfig: "ice_config", TSignalIn: "signal_in",
	TPublishKeys: "publish_keys", TFetchKeys: "fetch_keys", TChangePassword: "change_password",
	TKeys: "keys", TKeysChanged: "keys_changed",
	TPutChunk: "put_chunk", THaveChunks: "have_chunks", TGetChunk: "get_chunk", TChunks: "chunks", TChunk: "chunk",
	TArchiveSet: "archive_set", TArchivePut: "archive_put", TArchiveGet: "archive_get", TArchiveKeyPut: "archive_key_put", TArchiveState: "archive_state",
	TTyping: "typing", TTypingIn: "typing_in",
	TRemoveDevice: "remove_device",
}

// String returns the type's name, or its number if unknown.
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(0x%02x)", byte(t))
}

// Known reports whether t is a frame type of this protocol version.
func (t Type) Known() bool { _, ok := typeNames[t]; return ok }

// Frame is one decoded frame: its type and raw payload.
type Frame struct {
	Type    Type
	Payload []byte
}

// Errors from reading frames.
var (
	ErrFrameTooLarge = errors.New("frame too large")
	ErrEmptyFrame    = errors.New("empty frame")
	ErrUnknownType   = errors.New("unknown frame type")
	ErrBadPayload    = errors.New("malformed payload")
)

// Reader reads length-prefixed frames from a byte stream.
type Reader struct {
	r   io.Reader
	max int
	buf []byte
}

// NewReader returns a Reader that refuses frames over max bytes (type byte
// and payload). max <= 0 means DefaultMaxFrame. It buffers r; see
// NewUnbufferedReader for a source that buffers already.
func NewReader(r io.Reader, max int) *Reader {
	return newReader(bufio.NewReaderSize(r, 4096), max)
}

// NewUnbufferedReader is NewReader for a source that keeps its own buffer,
// such as a *tls.Conn (which decrypts whole records into one): a second
// buffer would cost memory on every idle connection and buy nothing.
func NewUnbufferedReader(r io.Reader, max int) *Reader {
	return newReader(r, max)
}

func newReader(r io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &Reader{r: r, max: max}
}

// ReadFrame reads the next frame. The payload is valid until the next call.
// It returns io.EOF only at a clean frame boundary, io.ErrUnexpectedEOF for a
// truncated frame, and ErrFrameTooLarge or ErrEmptyFrame for a bad length
// (without reading the oversized body).
func (r *Reader) ReadFrame() (Frame, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return Frame{}, ErrEmptyFrame
	}
	if uint64(n) > uint64(r.max) {
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, r.max)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	if _, err := io.ReadFull(r.r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return Frame{Type: Type(b[0]), Payload: b[1:]}, nil
}

// ParseMessage parses one WebSocket message (a frame without its length).
func ParseMessage(b []byte, max int) (Frame, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	if len(b) == 0 {
		return Frame{}, ErrEmptyFrame
	}
	if len(b) > max {
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(b), max)
	}
	return Frame{Type: Type(b[0]), Payload: b[1:]}, nil
}

// AppendFrame appends the length-prefixed encoding of a frame to dst.
func AppendFrame(dst []byte, t Type, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(1+len(payload)))
	dst = append(dst, byte(t))
	return append(dst, payload...)
}

// Encode returns the length-prefixed frame for v, whose type is found with
// TypeOf. The first 4 bytes are the length; Encode(v)[4:] is the WebSocket
// form of the same frame.
func Encode(v any) ([]byte, error) {
	t, ok := TypeOf(v)
	if !ok {
		return nil, fmt.Errorf("wire: no frame type for %T", v)
	}
	p, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %s: %w", t, err)
	}
	b := make([]byte, 0, 5+len(p))
	return AppendFrame(b, t, p), nil
}

// Decode decodes a frame's payload into a new value of the type's struct,
// returned as a pointer (*Hello for THello, ...).
func Decode(f Frame) (any, error) {
	v := newPayload(f.Type)
	if v == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownType, f.Type)
	}
	if len(f.Payload) == 0 {
		return v, nil
	}
	if err := json.Unmarshal(f.Payload, v); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadPayload, f.Type, err)
	}
	return v, nil
}
