//go:build !js

// Native only: these tests make pion's own PeerConnections.

package p2p

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/natterim/natter/wire"
	"github.com/pion/webrtc/v4"
)

var update = flag.Bool("update", false, "rewrite the seed corpus in testdata/fuzz")

// realOffer returns an offer and an answer as pion makes them for our data
// channel, with one trickled candidate of the answerer.
func realSignals(t testing.TB) (offer, answer, cand []byte) {
	t.Helper()
	api := webrtc.NewAPI()
	newPC := func() *webrtc.PeerConnection {
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		negotiated, id := true, uint16(0)
		if _, err := pc.CreateDataChannel(dataChannelLabel, &webrtc.DataChannelInit{Negotiated: &negotiated, ID: &id}); err != nil {
			t.Fatal(err)
		}
		return pc
	}
	a, b := newPC(), newPC()
	o, err := a.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetRemoteDescription(o); err != nil {
		t.Fatal(err)
	}
	ans, err := b.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	offer, _ = encodeSignal(signal{kind: KindOffer, desc: o})
	answer, _ = encodeSignal(signal{kind: KindAnswer, desc: ans})
	mid, idx := "0", uint16(0)
	cand, _ = encodeSignal(signal{kind: KindCandidate, cand: webrtc.ICECandidateInit{
		Candidate:     "candidate:2786641038 1 udp 2130706431 192.168.1.7 50000 typ host generation 0",
		SDPMid:        &mid,
		SDPMLineIndex: &idx,
	}})
	return offer, answer, cand
}

// seeds are the decoder's test cases and fuzz seeds: kind, data, valid.
func seeds(t testing.TB) []struct {
	name, kind string
	data       []byte
	ok         bool
} {
	offer, answer, cand := realSignals(t)
	return []struct {
		name, kind string
		data       []byte
		ok         bool
	}{
		{"offer", KindOffer, offer, true},
		{"answer", KindAnswer, answer, true},
		{"host candidate", KindCandidate, cand, true},
		{"srflx candidate", KindCandidate, []byte(`{"candidate":"candidate:1 1 udp 1694498815 203.0.113.9 61000 typ srflx raddr 192.168.1.7 rport 50000","sdpMid":"0","sdpMLineIndex":0}`), true},
		{"relay candidate", KindCandidate, []byte(`{"candidate":"candidate:3 1 udp 16777215 198.51.100.4 49152 typ relay raddr 203.0.113.9 rport 61000","sdpMid":"0"}`), true},
		{"mdns candidate", KindCandidate, []byte(`{"candidate":"candidate:4 1 udp 2113937151 5d3b1f0c-8a2e-4c3c-9a3b-0c1d2e3f4a5b.local 54321 typ host","sdpMid":"0","usernameFragment":"abcd"}`), true},
		{"end of candidates", KindCandidate, []byte(`{"candidate":""}`), true},
		{"bye", KindBye, nil, true},
		{"bye with data", KindBye, []byte("whatever"), true},
		{"unknown kind", "hello", []byte("{}"), false},
		{"empty kind", "", nil, false},
		{"offer not json", KindOffer, []byte("{"), false},
		{"offer null", KindOffer, []byte("null"), false},
		{"offer typed answer", KindOffer, answer, false},
		{"answer typed offer", KindAnswer, offer, false},
		{"offer typed rollback", KindOffer, []byte(`{"type":"rollback","sdp":""}`), false},
		{"offer bad type", KindOffer, []byte(`{"type":"x","sdp":""}`), false},
		{"offer garbage sdp", KindOffer, []byte(`{"type":"offer","sdp":"garbage"}`), false},
		{"offer truncated sdp", KindOffer, []byte(`{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4"}`), false},
		{"candidate not json", KindCandidate, []byte("candidate"), false},
		{"candidate garbage", KindCandidate, []byte(`{"candidate":"candidate:x y z"}`), false},
		{"candidate bad port", KindCandidate, []byte(`{"candidate":"candidate:1 1 udp 1 127.0.0.1 99999 typ host"}`), false},
		{"candidate unknown type", KindCandidate, []byte(`{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ wormhole"}`), false},
		{"candidate wrong field types", KindCandidate, []byte(`{"candidate":1,"sdpMLineIndex":"x"}`), false},
		{"too large", KindOffer, []byte(`{"type":"offer","sdp":"` + strings.Repeat("a", maxSignalData) + `"}`), false},
	}
}

func TestDecodeSignal(t *testing.T) {
	for _, tc := range seeds(t) {
		t.Run(tc.name, func(t *testing.T) {
			s, err := decodeSignal(tc.kind, tc.data)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrBadSignal) {
					t.Errorf("%v does not wrap ErrBadSignal", err)
				}
				return
			}
			checkRoundTrip(t, tc.kind, s)
		})
	}
}

// checkRoundTrip: what decodes encodes to something that decodes to the
// same signal.
func checkRoundTrip(t testing.TB, kind string, s signal) {
	t.Helper()
	b, err := encodeSignal(s)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	s2, err := decodeSignal(kind, b)
	if err != nil {
		t.Fatalf("decode(encode(%+v)) = %v", s, err)
	}
	if s.kind != s2.kind || s.desc.Type != s2.desc.Type || s.desc.SDP != s2.desc.SDP || !reflect.DeepEqual(s.cand, s2.cand) {
		t.Fatalf("round trip: %+v != %+v", s, s2)
	}
}

func FuzzDecodeSignal(f *testing.F) {
	for _, tc := range seeds(f) {
		f.Add(tc.kind, tc.data)
	}
	f.Fuzz(func(t *testing.T, kind string, data []byte) {
		s, err := decodeSignal(kind, data)
		if err != nil {
			return
		}
		checkRoundTrip(t, kind, s)
	})
}

// TestFuzzCorpus keeps testdata/fuzz/FuzzDecodeSignal in step with seeds:
// go test -run TestFuzzCorpus -update rewrites it.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeSignal")
	for _, tc := range seeds(t) {
		name := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
		want := fmt.Sprintf("go test fuzz v1\nstring(%s)\n[]byte(%s)\n", strconv.Quote(tc.kind), strconv.Quote(string(tc.data)))
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := os.Stat(name); err != nil {
			t.Errorf("seed %q missing from the corpus (go test -run TestFuzzCorpus -update): %v", tc.name, err)
		}
	}
}

func TestICEServers(t *testing.T) {
	cfg := wire.IceConfig{Port: 3478, Username: "1700000000:alice", Password: "pw"}
	got := ICEServers(cfg, "chat.example")
	want := []webrtc.ICEServer{
		{URLs: []string{"stun:chat.example:3478"}},
		{URLs: []string{"turn:chat.example:3478?transport=udp"}, Username: "1700000000:alice", Credential: "pw"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	cfg.Host = "2001:db8::1"
	if got := ICEServers(cfg, "chat.example"); got[0].URLs[0] != "stun:[2001:db8::1]:3478" {
		t.Errorf("IPv6 host: %v", got[0].URLs)
	}
	if got := ICEServers(wire.IceConfig{Port: 3478}, "h"); len(got) != 1 {
		t.Errorf("no credentials: %+v", got)
	}
	if got := ICEServers(wire.IceConfig{}, "h"); got != nil {
		t.Errorf("no port: %+v", got)
	}
	// The TURN URL parses as pion needs it.
	for _, s := range ICEServers(wire.IceConfig{Port: 3478, Username: "u", Password: "p"}, "127.0.0.1") {
		if _, err := s.URLs, validateICEServer(s); err != nil {
			t.Errorf("%v: %v", s.URLs, err)
		}
	}
}

// validateICEServer checks s the way PeerConnection does.
func validateICEServer(s webrtc.ICEServer) error {
	_, err := webrtc.NewAPI().NewPeerConnection(webrtc.Configuration{ICEServers: []webrtc.ICEServer{s}})
	return err
}
