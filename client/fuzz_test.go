package client

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// Fuzz targets for what a contact's device sends that the SDK decodes: a
// file's manifest (the opened body of a file message) and the frames of a
// peer-to-peer channel. Seeds are made with the SDK's own encoders, so they
// follow the formats; run one with
//
//	go test ./client -run '^$' -fuzz '^FuzzParseFile$' -fuzztime 1m

// FuzzParseFile: a manifest is accepted only if it is whole (a 32-byte
// key, a lowercase SHA-256, one chunk hash per wire.ChunkSize bytes), it
// encodes back to the same, and the name it carries becomes a file name
// that stays in the folder it is fetched into.
func FuzzParseFile(f *testing.F) {
	hash := strings.Repeat("ab", 32)
	for _, fi := range []FileInfo{
		{Name: "empty.txt", Size: 0, SHA256: hash, Key: make([]byte, 32), Chunks: []string{}},
		{Name: "photo.jpg", Size: 3, Type: "image/jpeg", SHA256: hash, Key: make([]byte, 32), Chunks: []string{hash}},
		{Name: "../../.ssh/authorized_keys", Size: wire.ChunkSize + 1, SHA256: hash, Key: make([]byte, 32), Chunks: []string{hash, hash}},
	} {
		b, err := fileBody(&fi)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(fileMagic + `{"name":"x","size":-1}`))
	f.Add([]byte("not a file"))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkSafeName(t, string(body))
		fi, ok := parseFile(body)
		if fo, fok := FileOf(body); fok != ok || !reflect.DeepEqual(fo, fi) {
			t.Fatal("FileOf and parseFile disagree")
		}
		if !ok {
			return
		}
		if fi.Size < 0 || int64(len(fi.Chunks)) != chunksFor(fi.Size) || len(fi.Key) != 32 || !isHash(fi.SHA256) {
			t.Fatalf("accepted a manifest that is not whole: %+v", fi)
		}
		for _, h := range fi.Chunks {
			if !isHash(h) {
				t.Fatalf("accepted chunk hash %q", h)
			}
		}
		again, err := fileBody(fi)
		if err != nil {
			t.Fatal(err)
		}
		fi2, ok := parseFile(again)
		if !ok || !reflect.DeepEqual(fi, fi2) {
			t.Fatalf("re-encoded manifest: %+v, %v; was %+v", fi2, ok, fi)
		}
		checkSafeName(t, fi.Name)
	})
}

// checkSafeName checks that SafeName makes of name a plain, visible file
// name that FetchFile's paths keep inside their folder.
func checkSafeName(t *testing.T, name string) {
	t.Helper()
	s := SafeName(name)
	switch {
	case s == "" || len(s) > 200:
		t.Fatalf("SafeName(%q) = %q: empty or over 200 bytes", name, s)
	case strings.ContainsAny(s, "/\\\x00"):
		t.Fatalf("SafeName(%q) = %q: a path", name, s)
	case strings.HasPrefix(s, "."):
		t.Fatalf("SafeName(%q) = %q: hidden", name, s)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		t.Fatalf("SafeName(%q) = %q: a control character", name, s)
	case utf8.ValidString(name) && !utf8.ValidString(s):
		t.Fatalf("SafeName(%q) = %q: cut inside a character", name, s)
	}
	dir := filepath.Join("home", "files")
	for _, p := range []string{filepath.Join(dir, s), filepath.Join(dir, "."+s+".0123456789abcdef.part")} {
		if filepath.Dir(p) != dir {
			t.Fatalf("SafeName(%q) = %q: %s is not in %s", name, s, p, dir)
		}
	}
}

// FuzzChannelFrame feeds a frame from a contact's device on a peer-to-peer
// channel through the decoding direct.read does: a chunk frame, or JSON as
// a directFrame and, for a file transfer's control frames, as a fileFrame.
// What decodes encodes back to the same, and the answers and
// acknowledgements of this device's transfers are handled without
// blocking, however many come. read, answerOffer and takeChunk themselves
// answer on a live p2p.Conn, so they are not called here: the checks they
// make on a frame are not fuzzed until they move into a function of the
// frame alone.
func FuzzChannelFrame(f *testing.F) {
	hash := strings.Repeat("0f", 32)
	id := natter.NewMessageID(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, v := range []any{
		directFrame{T: "m", ID: id, From: "alice", To: "bob", Body: []byte("sealed"), SentAt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)},
		directFrame{T: "a", ID: id},
		directFrame{T: "t", From: "alice", To: "bob"},
		fileFrame{T: "fo", X: "x1", Chunks: []string{hash, hash}, Size: 300 << 10},
		fileFrame{T: "fh", X: "x1", Chunks: []string{hash}},
		fileFrame{T: "fh", X: "x1", Err: "not enough disk space"},
		fileFrame{T: "ca", X: "x1", Hash: hash},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(append([]byte{chunkFrame}, "sealed chunk"...))
	f.Add([]byte(`{"t":"m","id":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 0 && b[0] == chunkFrame {
			if h := chunkHash(b[1:]); !isHash(h) {
				t.Fatalf("chunk named %q", h)
			}
			return
		}
		var df directFrame
		if err := json.Unmarshal(b, &df); err != nil {
			return
		}
		frameRoundTrip(t, &df, &directFrame{})
		switch df.T {
		case "fo", "fh", "ca":
			var ff fileFrame
			if err := json.Unmarshal(b, &ff); err != nil {
				return
			}
			frameRoundTrip(t, &ff, &fileFrame{})
			if ff.T == "fo" {
				return // answerOffer answers on the channel
			}
			d := &direct{xfers: map[string]*xfer{"x1": {answer: make(chan fileFrame, 1), acks: make(chan string, 1)}}}
			d.handleFileFrame(nil, &incoming{}, ff)
			d.handleFileFrame(nil, &incoming{}, ff) // a repeat must not block either
		}
	})
}

// frameRoundTrip checks that v, decoded from JSON, encodes to JSON that
// decodes (into fresh) to the same.
func frameRoundTrip[T any](t *testing.T, v, fresh *T) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("re-encode %+v: %v", *v, err)
	}
	if err := json.Unmarshal(b, fresh); err != nil {
		t.Fatalf("re-encoded %s does not decode: %v", b, err)
	}
	if !reflect.DeepEqual(normal(*v), normal(*fresh)) {
		t.Fatalf("round trip changed %+v into %+v", *v, *fresh)
	}
}

// normal makes decoded frames comparable: times by instant, empty and nil
// slices alike (omitempty drops both).
func normal(v any) any {
	switch f := v.(type) {
	case directFrame:
		f.SentAt = f.SentAt.UTC()
		if len(f.Body) == 0 {
			f.Body = nil
		}
		return f
	case fileFrame:
		if len(f.Chunks) == 0 {
			f.Chunks = nil
		}
		return f
	}
	return v
}
