package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// t0 is a timestamp as a decoded one looks: UTC, no monotonic reading.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

var cands = []natter.Candidate{
	{Type: "host", Proto: "udp", Addr: "192.168.1.10:50000", Priority: 2130706431},
	{Type: "srflx", Proto: "udp", Addr: "[2001:db8::1]:50001"},
}

var msg = wire.Message{
	ID: "0195a1b2c3d47e8f9a0b1c2d3e4f5a6b", From: "alice", FromDevice: "laptop", To: "bob",
	Body: []byte("hello \x00\xff bob"), ConvSeq: 42, SentAt: t0,
}

// payloads holds one fully populated value of every payload type, as
// pointers (what Decode returns). TestPayloadsCoverEveryType keeps it
// complete.
var payloads = []any{
	&wire.Hello{V: wire.Version, Client: "natter-cli/0.1"},
	&wire.Signup{Ref: 1, User: "alice", Password: "correct horse", Device: "laptop", Quiet: true},
	&wire.Login{Ref: 2, User: "alice", Password: "pässwörd \"quoted\" \n", Device: "laptop", Quiet: true},
	&wire.Resume{Ref: 3, Token: "tok_abc", Quiet: true},
	&wire.Logout{Ref: 4},
	&wire.ContactOp{Ref: 5, Op: natter.OpAdd, User: "bob"},
	&wire.ListContacts{Ref: 6},
	&wire.SetPresence{Ref: 7, Status: natter.StatusBusy, Text: "in a meeting ☕"},
	&wire.SetReach{Ref: 8, Candidates: cands},
	&wire.Send{Ref: 9, ID: msg.ID, To: "bob", Body: []byte{0, 1, 2, 0xfe, 0xff}, Chunks: []string{chunkHash}},
	&wire.Receipt{Ref: 10, Peer: "bob", Upto: 41, ID: msg.ID, State: natter.ReceiptRead},
	&wire.Ack{Upto: 1 << 40},
	&wire.Sync{Ref: 11, After: 17},
	&wire.History{Ref: 12, Peer: "bob", After: 3, Limit: 100},
	&wire.Ping{Ref: 13},
	&wire.Welcome{V: wire.Version, Server: "natterd/0.1", Node: "node-1", MaxFrame: wire.DefaultMaxFrame, MaxBody: wire.MaxBody, Keepalive: 60},
	&wire.Authed{Ref: 1, User: "alice", Device: "laptop", Token: "tok_abc", Expires: t0.Add(30 * 24 * time.Hour)},
	&wire.OK{Ref: 4},
	&wire.Error{Ref: 9, Code: wire.CodeRateLimited, Message: "slow down", RetryAfter: 1500},
	&wire.Contacts{Ref: 6, Contacts: []wire.Contact{
		{User: "bob", State: natter.ContactApproved, Status: natter.StatusOnline, Text: "hi", LastSeen: t0},
		{User: "carol", State: natter.ContactPendingIn},
	}},
	&wire.SendAck{Ref: 9, ID: msg.ID, ConvSeq: 42, SentAt: t0, Online: true},
	&wire.Presence{User: "bob", Status: natter.StatusAway, Text: "brb", LastSeen: t0},
	&wire.ContactUpdate{Contact: wire.Contact{User: "dave", State: natter.ContactPendingOut}},
	&wire.Msg{Seq: 7, Message: msg, Direct: true},
	&wire.Rcpt{Seq: 8, From: "bob", To: "alice", Upto: 42, ID: msg.ID, State: natter.ReceiptDelivered, At: t0},
	&wire.Inbox{Ref: 11, Through: 9, Done: true, Groups: []wire.InboxGroup{
		{From: "bob", Messages: []wire.Msg{{Seq: 7, Message: msg}}, Receipts: []wire.Rcpt{{Seq: 9, From: "bob", To: "alice", Upto: 1, State: natter.ReceiptRead, At: t0}}},
		{From: "carol", Receipts: []wire.Rcpt{{Seq: 8, From: "carol", To: "alice", Upto: 5, State: natter.ReceiptDelivered, At: t0}}},
	}},
	&wire.Reach{User: "bob", Device: "phone", Candidates: cands},
	&wire.Messages{Ref: 12, Messages: []wire.Message{msg, msg}},
	&wire.Pong{Ref: 13},
	&wire.Bye{Code: wire.CodeShutdown, Message: "server stopping"},
	&wire.IceServers{Ref: 14},
	&wire.Copy{Ref: 16, Message: msg},
	&wire.PathReport{Peer: "bob", Path: "direct"},
	&wire.IceConfig{Ref: 14, Port: 3478, Username: "1700000000:alice", Password: "c2VjcmV0", Expires: t0},
	&wire.Signal{Ref: 15, To: "bob", Device: "phone", Session: "s1", Kind: "offer", Data: []byte(`{"sdp":"v=0"}`)},
	&wire.SignalIn{From: "alice", FromDevice: "laptop", Session: "s1", Kind: "candidate", Data: []byte("candidate:1 1 udp 2130706431 10.0.0.2 50000 typ host")},
	&wire.PublishKeys{Ref: 17, Identity: []byte{0x01, 0xff, 0x00, 0x7f}, Reset: true, Bundle: []byte("bundle \x00\xff"),
		Prekeys: [][]byte{{1, 2, 3}, {0xfe, 0xff}},
		Certs:   []wire.DeviceCert{{Device: "phone", Cert: []byte{9, 8, 7}}, {Device: "laptop", Cert: []byte{0}}}},
	&wire.FetchKeys{Ref: 18, User: "bob", Claim: []natter.DeviceID{"laptop", "phone"}},
	&wire.ChangePassword{Ref: 19, Old: "correct horse", New: "pässwörd \"new\" \n"},
	&wire.Keys{Ref: 18, User: "bob", Identity: []byte{0x01, 0x02}, Devices: []wire.DeviceKeys{
		{Device: "laptop", Bundle: []byte{3, 4}, Cert: []byte{5}, Prekey: []byte{6, 0xff}, PrekeysLeft: 41},
		{Device: "phone", Bundle: []byte{7}},
	}},
	&wire.KeysChanged{User: "bob", Device: "phone", PrekeysLow: true},
	&wire.PutChunk{Ref: 20, Hash: chunkHash, Data: []byte("sealed \x00\xff chunk")},
	&wire.HaveChunks{Ref: 21, Hashes: []string{chunkHash, strings.Repeat("0", 64)}},
	&wire.Chunks{Ref: 21, Have: []string{chunkHash}},
	&wire.ArchiveSet{Ref: 22, On: true},
	&wire.ArchivePut{Ref: 23, Records: []wire.ArchiveItem{{Key: "k1", Data: []byte{0, 0xff, 1}}}},
	&wire.ArchiveGet{Ref: 24, After: 7, Limit: 50},
	&wire.ArchiveKeyPut{Ref: 25, Device: "laptop", Wrapped: []byte("wrapped\x00key")},
	&wire.ArchiveState{Ref: 24, On: true, Key: []byte{1, 2}, KeyDevices: []natter.DeviceID{"laptop", "phone"}, Records: []wire.ArchiveRecord{{Seq: 8, At: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), Data: []byte{9, 9}}}, More: true},
	&wire.GetChunk{Ref: 22, Hash: chunkHash},
	&wire.Chunk{Ref: 22, Hash: chunkHash, Data: []byte("sealed \x00\xff chunk")},
	&wire.Typing{To: "bob"},
	&wire.TypingIn{From: "alice"},
	&wire.RemoveDevice{Ref: 26, Device: "old-phone"},
}

// chunkHash is a chunk hash as the protocol spells them: lowercase hex SHA-256.
const chunkHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func typeOf(t *testing.T, v any) wire.Type {
	t.Helper()
	typ, ok := wire.TypeOf(v)
	if !ok {
		t.Fatalf("TypeOf(%T) not found", v)
	}
	return typ
}

func encode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := wire.Encode(v)
	if err != nil {
		t.Fatalf("Encode(%T): %v", v, err)
	}
	return b
}

// TestPayloadsCoverEveryType: every known type byte has exactly one sample
// in payloads, so the round-trip tests and the fuzz corpus cover it.
func TestPayloadsCoverEveryType(t *testing.T) {
	seen := make(map[wire.Type]bool)
	for _, v := range payloads {
		typ := typeOf(t, v)
		if seen[typ] {
			t.Errorf("two samples of %s", typ)
		}
		seen[typ] = true
	}
	for b := range 256 {
		typ := wire.Type(b)
		if typ.Known() != seen[typ] {
			t.Errorf("type %s: Known() = %v but sample present = %v", typ, typ.Known(), seen[typ])
		}
	}
}

// TestRoundTrip: Encode → Reader.ReadFrame → Decode gives back an equal value
// of the same type, for every payload type; and so does the WebSocket form
// through ParseMessage.
func TestRoundTrip(t *testing.T) {
	for _, v := range payloads {
		typ := typeOf(t, v)
		t.Run(typ.String(), func(t *testing.T) {
			b := encode(t, v)
			if n := binary.BigEndian.Uint32(b); int(n) != len(b)-4 {
				t.Fatalf("length prefix %d, frame has %d bytes after it", n, len(b)-4)
			}
			if wire.Type(b[4]) != typ {
				t.Fatalf("type byte 0x%02x, want %s", b[4], typ)
			}

			r := wire.NewReader(bytes.NewReader(b), 0)
			f, err := r.ReadFrame()
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			checkDecoded(t, f, v)
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("ReadFrame after the only frame: %v, want io.EOF", err)
			}

			f, err = wire.ParseMessage(b[4:], 0)
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			checkDecoded(t, f, v)

			// A value encodes like a pointer to it.
			if bv := encode(t, reflect.ValueOf(v).Elem().Interface()); !bytes.Equal(bv, b) {
				t.Fatalf("Encode of the value differs from Encode of the pointer:\n%s\n%s", bv, b)
			}
		})
	}
}

func checkDecoded(t *testing.T, f wire.Frame, want any) {
	t.Helper()
	if wt := typeOf(t, want); f.Type != wt {
		t.Fatalf("frame type %s, want %s", f.Type, wt)
	}
	got, err := wire.Decode(f)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode gave\n%#v\nwant\n%#v", got, want)
	}
}

// TestStream: many frames back to back in one stream come out one by one,
// whatever the sizes of the underlying reads.
func TestStream(t *testing.T) {
	var stream []byte
	var want []any
	for range 20 {
		for _, v := range payloads {
			stream = append(stream, encode(t, v)...)
			want = append(want, v)
		}
	}
	readers := []struct {
		name string
		r    func() io.Reader
	}{
		{"Whole", func() io.Reader { return bytes.NewReader(stream) }},
		{"OneByte", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) }},
		{"HalfReads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) }},
		{"EOFWithData", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) }},
		{"Chunked7", func() io.Reader { return &chunkReader{data: stream, size: 7} }},
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			r := wire.NewReader(rd.r(), 0)
			for i, v := range want {
				f, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d: ReadFrame: %v", i, err)
				}
				checkDecoded(t, f, v)
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("ReadFrame at the end of the stream: %v, want io.EOF", err)
			}
		})
	}
}

// chunkReader returns data in reads of at most size bytes.
type chunkReader struct {
	data []byte
	size int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.size)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// TestReadFrameErrors: truncated, empty and oversized frames give the
// documented errors.
func TestReadFrameErrors(t *testing.T) {
	ping := encode(t, &wire.Ping{Ref: 1})
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    error
		nFrames int // good frames before the error
	}{
		{"Empty", nil, 0, io.EOF, 0},
		{"HeaderOneByte", []byte{0}, 0, io.ErrUnexpectedEOF, 0},
		{"HeaderThreeBytes", []byte{0, 0, 0}, 0, io.ErrUnexpectedEOF, 0},
		{"HeaderOnly", []byte{0, 0, 0, 5}, 0, io.ErrUnexpectedEOF, 0},
		{"BodyTruncated", ping[:len(ping)-1], 0, io.ErrUnexpectedEOF, 0},
		{"SecondFrameTruncated", append(bytes.Clone(ping), ping[:6]...), 0, io.ErrUnexpectedEOF, 1},
		{"SecondHeaderTruncated", append(bytes.Clone(ping), 0, 0), 0, io.ErrUnexpectedEOF, 1},
		{"ZeroLength", []byte{0, 0, 0, 0}, 0, wire.ErrEmptyFrame, 0},
		{"ZeroLengthAfterFrame", append(bytes.Clone(ping), 0, 0, 0, 0, 1), 0, wire.ErrEmptyFrame, 1},
		{"OverLimit", []byte{0, 0, 0, 17}, 16, wire.ErrFrameTooLarge, 0},
		{"OverDefaultLimit", binary.BigEndian.AppendUint32(nil, wire.DefaultMaxFrame+1), 0, wire.ErrFrameTooLarge, 0},
		{"MaxLength", []byte{0xff, 0xff, 0xff, 0xff}, 0, wire.ErrFrameTooLarge, 0},
		{"MaxLengthSmallLimit", []byte{0xff, 0xff, 0xff, 0xff}, 16, wire.ErrFrameTooLarge, 0},
		{"AtLimit", append([]byte{0, 0, 0, 16, byte(wire.TPing)}, make([]byte, 15)...), 16, io.EOF, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := wire.NewReader(bytes.NewReader(tt.in), tt.max)
			for i := range tt.nFrames {
				if _, err := r.ReadFrame(); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			f, err := r.ReadFrame()
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadFrame = %v, %v; want error %v", f, err, tt.want)
			}
		})
	}
}

// TestOversizedFrameNotRead: a length over the limit is refused from the
// header alone, without allocating or reading a body: a peer cannot make the
// server allocate 4 GiB, or wait for bytes that will never come.
func TestOversizedFrameNotRead(t *testing.T) {
	// 0xFFFFFFFF then an endless stream: if ReadFrame tried to read the
	// body it would allocate 4 GiB or read forever.
	src := &countingReader{r: io.MultiReader(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}), endless{})}
	r := wire.NewReader(src, 0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := r.ReadFrame()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("ReadFrame: %v, want ErrFrameTooLarge", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Errorf("ReadFrame allocated %d bytes for a refused frame", got)
	}
	// The Reader buffers up to 4 KiB ahead; anything more is reading the body.
	if src.n > 4096 {
		t.Errorf("ReadFrame read %d bytes of the stream for a refused frame", src.n)
	}

	// The same with nothing after the header: ErrFrameTooLarge, not
	// io.ErrUnexpectedEOF (which would mean it tried to read the body).
	r = wire.NewReader(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}), 0)
	if _, err := r.ReadFrame(); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("ReadFrame of a bare 0xFFFFFFFF header: %v, want ErrFrameTooLarge", err)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestReaderReusesBuffer documents that a payload is valid only until the
// next ReadFrame: callers that keep one must copy it.
func TestReaderReusesBuffer(t *testing.T) {
	stream := append(encode(t, &wire.Ping{Ref: 1}), encode(t, &wire.Ping{Ref: 2})...)
	r := wire.NewReader(bytes.NewReader(stream), 0)
	f1, _ := r.ReadFrame()
	kept := bytes.Clone(f1.Payload)
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if string(kept) != `{"ref":1}` {
		t.Fatalf("first payload %q", kept)
	}
}

func TestParseMessageErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"Empty", nil, 0, wire.ErrEmptyFrame},
		{"EmptyNonNil", []byte{}, 16, wire.ErrEmptyFrame},
		{"OverLimit", make([]byte, 17), 16, wire.ErrFrameTooLarge},
		{"OverDefaultLimit", make([]byte, wire.DefaultMaxFrame+1), 0, wire.ErrFrameTooLarge},
		{"AtLimit", make([]byte, 16), 16, nil},
		{"TypeOnly", []byte{byte(wire.TPing)}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := wire.ParseMessage(tt.in, tt.max)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseMessage: %v, want %v", err, tt.want)
			}
			if err == nil && (f.Type != wire.Type(tt.in[0]) || !bytes.Equal(f.Payload, tt.in[1:])) {
				t.Fatalf("ParseMessage = %v, want type 0x%02x and the rest as payload", f, tt.in[0])
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		typ     wire.Type
		payload string
		want    error
	}{
		{"TypeZero", 0x00, `{}`, wire.ErrUnknownType},
		{"TypeAfterClientTypes", 0x20, `{}`, wire.ErrUnknownType},
		{"LastClientType", 0x7f, `{}`, wire.ErrUnknownType},
		{"TypeAfterServerTypes", 0x97, `{}`, wire.ErrUnknownType},
		{"TypeFF", 0xff, ``, wire.ErrUnknownType},
		{"Truncated", wire.THello, `{"v":1`, wire.ErrBadPayload},
		{"NotJSON", wire.TSend, `hello`, wire.ErrBadPayload},
		{"Array", wire.TLogin, `[]`, wire.ErrBadPayload},
		{"String", wire.TPing, `"ping"`, wire.ErrBadPayload},
		{"WrongFieldType", wire.THello, `{"v":"one"}`, wire.ErrBadPayload},
		{"NegativeUnsigned", wire.TAck, `{"upto":-1}`, wire.ErrBadPayload},
		{"Overflow", wire.TAck, `{"upto":18446744073709551616}`, wire.ErrBadPayload},
		{"BadBase64", wire.TSend, `{"body":"!!"}`, wire.ErrBadPayload},
		{"BadTime", wire.TAuthed, `{"expires":"yesterday"}`, wire.ErrBadPayload},
		{"TrailingData", wire.TOK, `{"ref":1}{}`, wire.ErrBadPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := wire.Decode(wire.Frame{Type: tt.typ, Payload: []byte(tt.payload)})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, %v; want error %v", v, err, tt.want)
			}
			if errors.Is(err, wire.ErrBadPayload) && !strings.Contains(err.Error(), tt.typ.String()) {
				t.Errorf("error %q does not name the frame type %s", err, tt.typ)
			}
		})
	}
}

// TestDecodeLenient: what Decode accepts besides canonical JSON. An empty
// payload is an empty object; unknown fields are ignored (so a newer peer's
// additions do not break an older one).
func TestDecodeLenient(t *testing.T) {
	tests := []struct {
		name    string
		typ     wire.Type
		payload string
		want    any
	}{
		{"EmptyPayload", wire.TPing, ``, &wire.Ping{}},
		{"EmptyObject", wire.TListContacts, `{}`, &wire.ListContacts{}},
		{"Null", wire.THello, `null`, &wire.Hello{}},
		{"UnknownField", wire.TOK, `{"ref":3,"future":[1,2]}`, &wire.OK{Ref: 3}},
		{"Whitespace", wire.TAck, " \n{ \"upto\" : 5 }\t", &wire.Ack{Upto: 5}},
		{"EmbeddedFields", wire.TMsg, `{"seq":1,"id":"m1","from":"a","to":"b"}`, &wire.Msg{Seq: 1, Message: wire.Message{ID: "m1", From: "a", To: "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := wire.Decode(wire.Frame{Type: tt.typ, Payload: []byte(tt.payload)})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, tt.want) {
				t.Fatalf("Decode = %#v, want %#v", v, tt.want)
			}
		})
	}
}

func TestEncodeUnknown(t *testing.T) {
	for _, v := range []any{nil, 42, "hello", struct{}{}, (*int)(nil), wire.Frame{}, wire.Err{}} {
		if b, err := wire.Encode(v); err == nil {
			t.Errorf("Encode(%T) = %q, want an error", v, b)
		}
	}
}

func TestAppendFrame(t *testing.T) {
	got := wire.AppendFrame([]byte("prefix"), wire.TOK, []byte(`{"ref":1}`))
	want := append([]byte("prefix\x00\x00\x00\x0a\x82"), `{"ref":1}`...)
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendFrame = %q, want %q", got, want)
	}
	if got := wire.AppendFrame(nil, wire.TPing, nil); !bytes.Equal(got, []byte{0, 0, 0, 1, byte(wire.TPing)}) {
		t.Fatalf("AppendFrame with an empty payload = %q", got)
	}
}

func TestTypeNames(t *testing.T) {
	tests := []struct {
		typ   wire.Type
		name  string
		known bool
	}{
		{wire.THello, "hello", true},
		{wire.TContactUpdate, "contact_update", true},
		{wire.TBye, "bye", true},
		{0x00, "type(0x00)", false},
		{0x7f, "type(0x7f)", false},
		{0xff, "type(0xff)", false},
	}
	for _, tt := range tests {
		if got := tt.typ.String(); got != tt.name {
			t.Errorf("Type(0x%02x).String() = %q, want %q", byte(tt.typ), got, tt.name)
		}
		if got := tt.typ.Known(); got != tt.known {
			t.Errorf("Type(0x%02x).Known() = %v, want %v", byte(tt.typ), got, tt.known)
		}
	}
	// Directions: client types below 0x80, server types from 0x80.
	fromServer := map[wire.Type]bool{
		wire.TWelcome: true, wire.TAuthed: true, wire.TOK: true, wire.TError: true, wire.TContacts: true,
		wire.TSendAck: true, wire.TPresence: true, wire.TContactUpdate: true, wire.TMsg: true, wire.TRcpt: true,
		wire.TInbox: true, wire.TReach: true, wire.TMessages: true, wire.TPong: true, wire.TBye: true,
		wire.TIceConfig: true, wire.TSignalIn: true, wire.TKeys: true, wire.TKeysChanged: true,
		wire.TChunks: true, wire.TChunk: true, wire.TArchiveState: true, wire.TTypingIn: true,
	}
	for _, v := range payloads {
		if typ := typeOf(t, v); fromServer[typ] != (typ >= 0x80) {
			t.Errorf("%s is 0x%02x, on the wrong side of 0x80", typ, byte(typ))
		}
	}
}

// TestLargestFramesFit: the largest chunk frames (PutChunk, Chunk: a
// MaxChunk of data, base64 in JSON) fit in DefaultMaxFrame, as do a Send
// with the largest body and a HaveChunks with MaxHashes hashes. A server
// with the default --max-frame can thus always carry a chunk.
func TestLargestFramesFit(t *testing.T) {
	data := bytes.Repeat([]byte{0xff}, wire.MaxChunk)
	hashes := make([]string, wire.MaxHashes)
	for i := range hashes {
		hashes[i] = chunkHash
	}
	tests := []struct {
		name string
		v    any
	}{
		{"PutChunk", &wire.PutChunk{Ref: 1<<64 - 1, Hash: chunkHash, Data: data}},
		{"Chunk", &wire.Chunk{Ref: 1<<64 - 1, Hash: chunkHash, Data: data}},
		{"HaveChunks", &wire.HaveChunks{Ref: 1<<64 - 1, Hashes: hashes}},
		{"Chunks", &wire.Chunks{Ref: 1<<64 - 1, Have: hashes}},
		{"Send", &wire.Send{Ref: 1<<64 - 1, ID: natter.MessageID(strings.Repeat("a", 64)), To: natter.UserID(strings.Repeat("b", 32)), Body: make([]byte, wire.MaxBody)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := len(encode(t, tt.v)) - 4; n > wire.DefaultMaxFrame {
				t.Fatalf("%d bytes, over DefaultMaxFrame (%d)", n, wire.DefaultMaxFrame)
			} else {
				t.Logf("%d bytes (%.0f%% of DefaultMaxFrame)", n, 100*float64(n)/wire.DefaultMaxFrame)
			}
		})
	}
}

func TestErrorAsError(t *testing.T) {
	frame := &wire.Error{Ref: 3, Code: wire.CodeRateLimited, Message: "slow down", RetryAfter: 250}
	var err error = frame.AsError()
	var e *wire.Err
	if !errors.As(err, &e) || e.Code != wire.CodeRateLimited || e.RetryAfter != 250 {
		t.Fatalf("AsError = %#v", err)
	}
	if got, want := err.Error(), "rate_limited: slow down"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

// TestUnbufferedReader reads the same frames as the buffered one, from a
// source that hands out one byte at a time.
func TestUnbufferedReader(t *testing.T) {
	var stream []byte
	for _, v := range payloads {
		stream = append(stream, encode(t, v)...)
	}
	r := wire.NewUnbufferedReader(iotest.OneByteReader(bytes.NewReader(stream)), 0)
	for i, v := range payloads {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if want := typeOf(t, v); f.Type != want {
			t.Fatalf("frame %d: type %s, want %s", i, f.Type, want)
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}
