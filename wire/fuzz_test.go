package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/iotest"
	"time"

	"github.com/natterim/natter/wire"
)

// The fuzz targets check round-trip properties, in the manner of age and
// nats-server: whatever the decoders accept, the encoders give back.
// Their seed corpus is under testdata/fuzz; TestFuzzCorpus keeps it in step
// with the payload samples:
//
//	go test ./wire -run TestFuzzCorpus -update    # rewrite the seeds
//	go test ./wire -fuzz FuzzReadFrame -fuzztime 30s
//	go test ./wire -fuzz FuzzDecode -fuzztime 30s

var update = flag.Bool("update", false, "rewrite the seed corpus in testdata/fuzz")

// fuzzMaxFrame is FuzzReadFrame's frame limit: small, so that the fuzzer
// reaches the over-limit path with short inputs.
const fuzzMaxFrame = 512

// readResult is everything a Reader gave for one input.
type readResult struct {
	frames []wire.Frame // payloads copied
	err    error        // the error that ended the stream
}

func readAll(r io.Reader, max int) readResult {
	fr := wire.NewReader(r, max)
	var res readResult
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			res.err = err
			return res
		}
		res.frames = append(res.frames, wire.Frame{Type: f.Type, Payload: bytes.Clone(f.Payload)})
	}
}

// FuzzReadFrame feeds arbitrary bytes to a Reader. It must never panic; the
// frames it returns, re-encoded with AppendFrame, must be exactly the bytes
// it consumed; the error that ends the stream must be the one the remaining
// bytes call for; and reading one byte at a time must give the same result.
func FuzzReadFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		res := readAll(bytes.NewReader(data), fuzzMaxFrame)

		var consumed []byte
		for _, fr := range res.frames {
			if len(fr.Payload)+1 > fuzzMaxFrame {
				t.Fatalf("frame of %d bytes passed the %d-byte limit", len(fr.Payload)+1, fuzzMaxFrame)
			}
			consumed = wire.AppendFrame(consumed, fr.Type, fr.Payload)
		}
		if !bytes.HasPrefix(data, consumed) {
			t.Fatalf("re-encoded frames are not the input they came from:\nframes %q\ninput  %q", consumed, data)
		}
		checkEndError(t, data[len(consumed):], res.err)

		byByte := readAll(iotest.OneByteReader(bytes.NewReader(data)), fuzzMaxFrame)
		if !reflect.DeepEqual(byByte.frames, res.frames) || errKind(byByte.err) != errKind(res.err) {
			t.Fatalf("reading one byte at a time gave %d frames and %v, reading at once %d frames and %v",
				len(byByte.frames), byByte.err, len(res.frames), res.err)
		}

		// The WebSocket form of each frame parses to the same frame.
		for _, fr := range res.frames {
			msg := append([]byte{byte(fr.Type)}, fr.Payload...)
			got, err := wire.ParseMessage(msg, fuzzMaxFrame)
			if err != nil || got.Type != fr.Type || !bytes.Equal(got.Payload, fr.Payload) {
				t.Fatalf("ParseMessage of a frame ReadFrame accepted: %v, %v", got, err)
			}
		}
	})
}

// checkEndError checks that err is what ReadFrame must return when rest is
// what remains of the stream.
func checkEndError(t *testing.T, rest []byte, err error) {
	t.Helper()
	var want error
	switch {
	case len(rest) == 0:
		want = io.EOF
	case len(rest) < 4:
		want = io.ErrUnexpectedEOF
	default:
		switch n := binary.BigEndian.Uint32(rest); {
		case n == 0:
			want = wire.ErrEmptyFrame
		case n > fuzzMaxFrame:
			want = wire.ErrFrameTooLarge
		case uint64(len(rest)-4) < uint64(n):
			want = io.ErrUnexpectedEOF
		default:
			t.Fatalf("stream ended with %v although a whole frame remained: %q", err, rest)
		}
	}
	if !errors.Is(err, want) || (want == io.EOF && err != io.EOF) {
		t.Fatalf("stream ended with %v, want %v; remaining input %q", err, want, rest)
	}
}

// errKind names the sentinel an error wraps, to compare errors whose
// messages may differ.
func errKind(err error) string {
	for _, s := range []error{io.ErrUnexpectedEOF, io.EOF, wire.ErrEmptyFrame, wire.ErrFrameTooLarge} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return fmt.Sprint(err)
}

// FuzzDecode feeds an arbitrary type byte and payload to Decode. It must
// never panic; it must fail with ErrUnknownType exactly for unknown types
// and otherwise only with ErrBadPayload; and whatever it decodes must
// encode, and decode again to an equal value that encodes to the same
// bytes (canonical JSON is a fixed point).
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, typ byte, payload []byte) {
		in := wire.Frame{Type: wire.Type(typ), Payload: payload}
		v, err := wire.Decode(in)
		if !in.Type.Known() {
			if !errors.Is(err, wire.ErrUnknownType) {
				t.Fatalf("Decode of unknown %s: %v, %v; want ErrUnknownType", in.Type, v, err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, wire.ErrBadPayload) {
				t.Fatalf("Decode of %s failed with %v, want only ErrBadPayload", in.Type, err)
			}
			return
		}
		if got, ok := wire.TypeOf(v); !ok || got != in.Type {
			t.Fatalf("Decode of %s returned a %T", in.Type, v)
		}

		enc, err := wire.Encode(v)
		if err != nil {
			t.Fatalf("Decode accepted %q as %s but Encode refuses the result: %v", payload, in.Type, err)
		}
		again, err := wire.Decode(wire.Frame{Type: wire.Type(enc[4]), Payload: enc[5:]})
		if err != nil {
			t.Fatalf("Decode of Encode's output %q: %v", enc, err)
		}
		if !reflect.DeepEqual(normalize(v), normalize(again)) {
			t.Fatalf("decode → encode → decode changed the value:\nfirst  %#v\nsecond %#v\nvia %q", v, again, enc)
		}
		if enc2, err := wire.Encode(again); err != nil || !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding is not a fixed point:\n%q\n%q (%v)", enc, enc2, err)
		}
	})
}

// normalize returns a copy of the payload v (a pointer to a struct) in which
// the differences JSON need not keep are erased: an empty slice becomes nil
// (omitempty drops it) and a time keeps only its instant and UTC offset (the
// *time.Location it carries depends on how it was parsed).
func normalize(v any) any {
	rv := reflect.ValueOf(v)
	out := reflect.New(rv.Elem().Type())
	out.Elem().Set(rv.Elem())
	normalizeValue(out.Elem())
	return out.Interface()
}

var timeType = reflect.TypeFor[time.Time]()

func normalizeValue(v reflect.Value) {
	switch {
	case v.Type() == timeType:
		t := v.Interface().(time.Time)
		_, off := t.Zone()
		v.Set(reflect.ValueOf(t.In(time.FixedZone("", off))))
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			normalizeValue(v.Field(i))
		}
	case v.Kind() == reflect.Slice:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(c, v)
		for i := range c.Len() {
			normalizeValue(c.Index(i))
		}
		v.Set(c)
	}
}

// corpus returns the seed corpus: file name → the values of one fuzz input.
func corpus() map[string]map[string][]any {
	readFrame := map[string][]any{}
	decode := map[string][]any{}
	var all []byte
	for _, v := range payloads {
		typ, _ := wire.TypeOf(v)
		b, err := wire.Encode(v)
		if err != nil {
			panic(err)
		}
		all = append(all, b...)
		readFrame["frame_"+typ.String()] = []any{b}
		decode["payload_"+typ.String()] = []any{byte(typ), b[5:]}
	}
	ping, _ := wire.Encode(&wire.Ping{Ref: 1})
	send, _ := wire.Encode(&wire.Send{Ref: 2, ID: "m1", To: "bob", Body: bytes.Repeat([]byte("x"), 300)})
	for name, b := range map[string][]byte{
		"stream_every_type":     all,
		"stream_then_truncated": append(bytes.Clone(ping), send[:40]...),
		"truncated_header":      {0, 0, 1},
		"truncated_body":        send[:len(send)/2],
		"zero_length":           append([]byte{0, 0, 0, 0}, ping...),
		"over_limit":            append(binary.BigEndian.AppendUint32(nil, fuzzMaxFrame+1), bytes.Repeat([]byte{0x0a}, fuzzMaxFrame+1)...),
		"at_limit":              append(binary.BigEndian.AppendUint32(nil, fuzzMaxFrame), bytes.Repeat([]byte{0x0f}, fuzzMaxFrame)...),
		"length_ffffffff":       {0xff, 0xff, 0xff, 0xff},
		"type_only":             {0, 0, 0, 1, byte(wire.TPing)},
		"http_request":          []byte("GET / HTTP/1.1\r\nHost: natter\r\n\r\n"),
		"tls_client_hello":      {0x16, 0x03, 0x01, 0x00, 0xf4, 0x01, 0x00, 0x00, 0xf0, 0x03, 0x03},
		"garbage":               []byte("\x00\x00\x00\x05\x83\xff\xfe{\x00\x00\x00\x02\x00"),
	} {
		readFrame[name] = []any{b}
	}
	for name, in := range map[string]struct {
		typ     wire.Type
		payload string
	}{
		"unknown_type":        {0x42, `{"v":1}`},
		"unknown_type_ff":     {0xff, ``},
		"malformed_json":      {wire.THello, `{"v":1,`},
		"wrong_field_type":    {wire.TSend, `{"ref":"1","body":7}`},
		"empty_payload":       {wire.TPing, ``},
		"null":                {wire.TContacts, `null`},
		"unknown_field":       {wire.TOK, `{"ref":1,"later":{"a":[1,2,3]}}`},
		"bad_base64":          {wire.TSend, `{"body":"%%%"}`},
		"time_offset":         {wire.TAuthed, `{"expires":"2030-01-02T03:04:05.123+05:30"}`},
		"time_zero_offset":    {wire.TRcpt, `{"at":"2030-01-02T03:04:05+00:00"}`},
		"omitempty_empty":     {wire.TInbox, `{"groups":[{"from":"bob","messages":[],"receipts":[]}]}`},
		"invalid_utf8":        {wire.TSetPresence, "{\"text\":\"\xff\xfe\"}"},
		"escapes":             {wire.TError, `{"message":"\u2028\ud83d\ude00\"<>&"}`},
		"case_insensitive":    {wire.TMsg, `{"SEQ":1,"Id":"m","FROM":"a"}`},
		"duplicate_keys":      {wire.TAck, `{"upto":1,"upto":2}`},
		"embedded_collision":  {wire.TContactUpdate, `{"user":"a","User":"b","state":"approved"}`},
		"large_number":        {wire.TAck, `{"upto":1e3}`},
		"negative_int":        {wire.THistory, `{"limit":-1}`},
		"nested_nulls":        {wire.TMessages, `{"messages":[null,{"body":null}]}`},
		"candidates_priority": {wire.TSetReach, `{"candidates":[{"type":"host","prio":4294967295}]}`},
	} {
		decode[name] = []any{byte(in.typ), []byte(in.payload)}
	}
	return map[string]map[string][]any{"FuzzReadFrame": readFrame, "FuzzDecode": decode}
}

// marshalCorpusFile writes values in the "go test fuzz v1" format, as
// the go command does.
func marshalCorpusFile(vals ...any) []byte {
	b := []byte("go test fuzz v1\n")
	for _, v := range vals {
		switch v := v.(type) {
		case byte:
			b = fmt.Appendf(b, "byte(%q)\n", v)
		case []byte:
			b = fmt.Appendf(b, "[]byte(%q)\n", v)
		default:
			panic(fmt.Sprintf("corpus value of type %T", v))
		}
	}
	return b
}

// TestFuzzCorpus checks that the committed seed corpus holds every seed
// corpus() makes, byte for byte; with -update it writes them. (Inputs the
// fuzzer adds on a failure sit beside them and are left alone.)
func TestFuzzCorpus(t *testing.T) {
	for target, files := range corpus() {
		dir := filepath.Join("testdata", "fuzz", target)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for name, vals := range files {
			path := filepath.Join(dir, name)
			want := marshalCorpusFile(vals...)
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s is missing or out of date (the payload samples changed?): run go test ./wire -run TestFuzzCorpus -update", path)
			}
		}
	}
}
