package hub

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// events are bus events as the hub publishes them, with the exact bytes
// of each: the envelope crosses nodes (a NATS bus carries it as is), so
// nodes of two versions must agree on it.
var events = []struct {
	name string
	e    event
	hex  string
}{
	{"empty frame", event{kind: evFrame}, "01" + "0000000000000000" + "00" + "00"},
	{"inbox entry", event{kind: evFrame, seq: 0x0102030405060708, frame: []byte{0, 0, 0, 1, 0x89}},
		"01" + "0102030405060708" + "00" + "00" + "0000000189"},
	{"kick one device", event{kind: evKick, device: "dev1", skipConn: "n1-2", frame: []byte("bye")},
		"02" + "0000000000000000" + "04" + hex.EncodeToString([]byte("dev1")) + "04" + hex.EncodeToString([]byte("n1-2")) + hex.EncodeToString([]byte("bye"))},
	{"logout", event{kind: evLogout, skipConn: "n1-a"}, "03" + "0000000000000000" + "00" + "04" + hex.EncodeToString([]byte("n1-a"))},
	{"ephemeral, not to quiet connections", event{kind: evLive, frame: []byte{0, 0, 0, 1, 0x96}},
		"04" + "0000000000000000" + "00" + "00" + "0000000196"},
	{"longest names", event{kind: evFrame, seq: 1, device: natter.DeviceID(strings.Repeat("d", 255)), skipConn: strings.Repeat("c", 255)},
		"01" + "0000000000000001" + "ff" + strings.Repeat("64", 255) + "ff" + strings.Repeat("63", 255)},
}

func TestEventFormat(t *testing.T) {
	for _, tt := range events {
		t.Run(tt.name, func(t *testing.T) {
			want, err := hex.DecodeString(tt.hex)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.e.marshal(); !bytes.Equal(got, want) {
				t.Fatalf("marshal = %x, want %x", got, want)
			}
			e, err := parseEvent(want)
			if err != nil {
				t.Fatalf("parseEvent: %v", err)
			}
			if !sameEvent(e, tt.e) {
				t.Fatalf("parseEvent = %+v, want %+v", e, tt.e)
			}
		})
	}
}

// badEvents are cut short at each length parseEvent checks.
var badEvents = []struct {
	name string
	hex  string
}{
	{"empty", ""},
	{"shorter than the header", "01" + "0000000000000000" + "00"},
	{"device cut short", "01" + "0000000000000000" + "05" + "6465" + "00"},
	{"no skipConn length after the device", "01" + "0000000000000000" + "02" + "6465"},
	{"skipConn cut short", "01" + "0000000000000000" + "00" + "09" + "6e31"},
}

func TestParseEventRefuses(t *testing.T) {
	for _, tt := range badEvents {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hex.DecodeString(tt.hex)
			if err != nil {
				t.Fatal(err)
			}
			if e, err := parseEvent(b); err != errBadEvent {
				t.Fatalf("parseEvent(%x) = %+v, %v; want errBadEvent", b, e, err)
			}
		})
	}
}

func sameEvent(a, b event) bool {
	return a.kind == b.kind && a.seq == b.seq && a.device == b.device && a.skipConn == b.skipConn && bytes.Equal(a.frame, b.frame)
}

// FuzzParseEvent feeds parseEvent arbitrary bytes, as a bus from another
// node could deliver them. Whatever parses must marshal back to the same
// bytes (nothing is dropped or invented), and every event the hub can
// publish must parse back as itself. The seeds are real events (each kind,
// devices and connections named, an encoded wire frame) and events cut
// short at each of parseEvent's checks, so that the seeds alone cover all
// of it and fuzzing starts from there.
func FuzzParseEvent(f *testing.F) {
	for _, tt := range events {
		b := tt.e.marshal()
		f.Add(b, byte(tt.e.kind), tt.e.seq, string(tt.e.device), tt.e.skipConn)
	}
	for _, tt := range badEvents {
		b, err := hex.DecodeString(tt.hex)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, byte(0), uint64(0), "", "")
	}
	msg, err := wire.Encode(wire.Presence{User: "alice", Status: "online", Text: "hi"})
	if err != nil {
		f.Fatal(err)
	}
	b := event{kind: evFrame, seq: 42, device: "phone", skipConn: "node-7", frame: msg}.marshal()
	f.Add(b, byte(evKick), uint64(7), "laptop", "node-1")

	f.Fuzz(func(t *testing.T, b []byte, kind byte, seq uint64, device, skipConn string) {
		if e, err := parseEvent(b); err == nil {
			if got := e.marshal(); !bytes.Equal(got, b) {
				t.Fatalf("parseEvent(%x) = %+v, which marshals to %x", b, e, got)
			}
		}
		if len(device) > 255 || len(skipConn) > 255 {
			return // longer than the hub ever publishes (device and connection IDs are short)
		}
		in := event{kind: eventKind(kind), seq: seq, device: natter.DeviceID(device), skipConn: skipConn, frame: b}
		out, err := parseEvent(in.marshal())
		if err != nil || !sameEvent(in, out) {
			t.Fatalf("event %+v parses back as %+v, %v", in, out, err)
		}
	})
}
