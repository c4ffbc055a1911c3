//go:build js

package p2p

import (
	"context"
	"strings"
	"syscall/js"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// These tests run the browser seam's pure parts under Node:
//
//	GOOS=js GOARCH=wasm go test -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec" ./p2p

func TestSDPFingerprint(t *testing.T) {
	const fp = "sha-256 ab:cd:ef"
	for _, tc := range []struct{ sdp, want string }{
		{"v=0\r\na=fingerprint:sha-256 AB:CD:EF\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", fp},
		{"v=0\na=fingerprint:SHA-256 ab:cd:ef\n", fp},
		// The same at session and media level is one fingerprint.
		{"a=fingerprint:sha-256 AB:CD:EF\r\nm=application\r\na=fingerprint:sha-256 AB:CD:EF\r\n", fp},
		// Two differing: which one the browser checked is unclear.
		{"a=fingerprint:sha-256 AB:CD:EF\r\na=fingerprint:sha-256 01:02:03\r\n", ""},
		{"a=fingerprint:sha-256 AB:CD:EF\r\na=fingerprint:sha-1 01:02:03\r\n", ""},
		{"a=fingerprint:sha-1 01:02:03\r\n", ""},
		{"v=0\r\n", ""},
	} {
		if got := sdpFingerprint(tc.sdp); got != tc.want {
			t.Errorf("sdpFingerprint(%q) = %q, want %q", tc.sdp, got, tc.want)
		}
	}
}

func TestSelectedPair(t *testing.T) {
	cands := []iceStat{
		{id: "L1", typ: "local-candidate", candidateType: "host"},
		{id: "L2", typ: "local-candidate", candidateType: "relay"},
		{id: "R1", typ: "remote-candidate", candidateType: "srflx"},
	}
	pairs := func(ps ...iceStat) []iceStat { return append(append([]iceStat{}, cands...), ps...) }
	for _, tc := range []struct {
		name  string
		stats []iceStat
		want  string // the local candidate's ID, "" for none
	}{
		{"transport", pairs(
			iceStat{id: "T", typ: "transport", selectedPair: "P2"},
			iceStat{id: "P1", typ: "candidate-pair", localID: "L1", remoteID: "R1", nominated: true, state: "succeeded"},
			iceStat{id: "P2", typ: "candidate-pair", localID: "L2", remoteID: "R1"},
		), "L2"},
		{"firefox", pairs(
			iceStat{id: "P1", typ: "candidate-pair", localID: "L1", remoteID: "R1", nominated: true, state: "succeeded"},
			iceStat{id: "P2", typ: "candidate-pair", localID: "L2", remoteID: "R1", selected: true},
		), "L2"},
		{"nominated", pairs(
			iceStat{id: "P1", typ: "candidate-pair", localID: "L1", remoteID: "R1", nominated: true, state: "in-progress"},
			iceStat{id: "P2", typ: "candidate-pair", localID: "L2", remoteID: "R1", nominated: true, state: "succeeded"},
		), "L2"},
		{"none", pairs(
			iceStat{id: "P1", typ: "candidate-pair", localID: "L1", remoteID: "R1", state: "in-progress"},
		), ""},
		{"missing candidate", []iceStat{
			{id: "T", typ: "transport", selectedPair: "P1"},
			{id: "P1", typ: "candidate-pair", localID: "L9", remoteID: "R1"},
		}, ""},
	} {
		_, local, _, ok := selectedPair(tc.stats)
		if got := map[bool]string{true: local.id}[ok]; got != tc.want {
			t.Errorf("%s: selected local candidate %q, want %q", tc.name, got, tc.want)
		}
	}
}

// statsReport builds an RTCStatsReport-like Map.
func statsReport(entries ...map[string]any) js.Value {
	m := js.Global().Get("Map").New()
	for _, e := range entries {
		m.Call("set", e["id"], js.ValueOf(e))
	}
	return m
}

func TestReadStats(t *testing.T) {
	report := statsReport(
		map[string]any{"id": "T", "type": "transport", "selectedCandidatePairId": "P"},
		map[string]any{"id": "P", "type": "candidate-pair", "localCandidateId": "L", "remoteCandidateId": "R",
			"state": "succeeded", "nominated": true, "currentRoundTripTime": 0.025},
		map[string]any{"id": "L", "type": "local-candidate", "candidateType": "host", "address": "192.168.1.2", "port": 5000},
		map[string]any{"id": "R", "type": "remote-candidate", "candidateType": "prflx", "ip": "203.0.113.7", "port": 6000},
		map[string]any{"id": "X", "type": "codec", "mimeType": "video/VP8"},
	)
	stats := readStats(report)
	if len(stats) != 4 {
		t.Fatalf("read %d entries, want 4 (the codec skipped): %+v", len(stats), stats)
	}
	pair, local, remote, ok := selectedPair(stats)
	if !ok {
		t.Fatal("no selected pair")
	}
	if got := pair.roundTrip(); got != 25*time.Millisecond {
		t.Errorf("round trip %v, want 25ms", got)
	}
	if local.candidateType != "host" || remote.candidateType != "prflx" || remote.address != "203.0.113.7" || remote.port != 6000 {
		t.Errorf("candidates %+v %+v", local, remote)
	}

	// A peer-reflexive remote candidate takes the type signalled for its
	// address: a relay makes the path relayed.
	c := &Conn{remoteTypes: map[string]webrtc.ICECandidateType{"203.0.113.7:6000": webrtc.ICECandidateTypeRelay}}
	if got := c.pathOf(webrtc.ICECandidateTypeHost, webrtc.ICECandidateTypePrflx, "203.0.113.7:6000"); got != PathRelayed {
		t.Errorf("path %q, want relayed", got)
	}
	if got := c.pathOf(webrtc.ICECandidateTypeSrflx, webrtc.ICECandidateTypePrflx, "198.51.100.1:1"); got != PathDirect {
		t.Errorf("path %q, want direct", got)
	}
	if got := c.pathOf(webrtc.ICECandidateTypeRelay, webrtc.ICECandidateTypeHost, ""); got != PathRelayed {
		t.Errorf("path %q, want relayed", got)
	}

	// Without currentRoundTripTime (Firefox), the mean over responses.
	if got := (iceStat{totalRTT: 0.3, responses: 10}).roundTrip(); got != 30*time.Millisecond {
		t.Errorf("mean round trip %v, want 30ms", got)
	}
}

func TestAwait(t *testing.T) {
	ctx := context.Background()
	promise := js.Global().Get("Promise")
	v, err := await(ctx, promise.Call("resolve", 42))
	if err != nil || v.Int() != 42 {
		t.Errorf("resolved: %v, %v", v, err)
	}
	_, err = await(ctx, promise.Call("reject", js.Global().Get("Error").New("boom")))
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("rejected with an Error: %v", err)
	}
	_, err = await(ctx, promise.Call("reject", "plain"))
	if err == nil || err.Error() != "plain" {
		t.Errorf("rejected with a string: %v", err)
	}
	// A promise that settles later, from a timer: the event loop runs.
	later := promise.New(js.FuncOf(func(_ js.Value, args []js.Value) any {
		js.Global().Call("setTimeout", args[0], 20, "late")
		return nil
	}))
	if v, err := await(ctx, later); err != nil || v.String() != "late" {
		t.Errorf("settled later: %v, %v", v, err)
	}
	// One that never settles: ctx ends the wait.
	never := promise.New(js.FuncOf(func(js.Value, []js.Value) any { return nil }))
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := await(tctx, never); err != context.DeadlineExceeded {
		t.Errorf("never settled: %v", err)
	}
}

func TestCandidateInit(t *testing.T) {
	const line = "candidate:1 1 udp 2122260223 192.168.1.2 5000 typ host generation 0 ufrag abcd"
	event := js.ValueOf(map[string]any{"candidate": map[string]any{
		"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd",
	}})
	init, ok := candidateInit(event)
	if !ok || init.Candidate != line || init.SDPMid == nil || *init.SDPMid != "0" ||
		init.SDPMLineIndex == nil || *init.SDPMLineIndex != 0 || init.UsernameFragment == nil || *init.UsernameFragment != "abcd" {
		t.Errorf("candidateInit = %+v, %v", init, ok)
	}
	for _, end := range []js.Value{
		js.ValueOf(map[string]any{"candidate": nil}),
		js.ValueOf(map[string]any{"candidate": map[string]any{"candidate": ""}}),
		js.Undefined(),
	} {
		if _, ok := candidateInit(end); ok {
			t.Errorf("candidateInit(%v) is a candidate", end)
		}
	}
}
