package wire

import (
	"bytes"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// The hot paths of a message on the server: a Send read and decoded, a Msg
// encoded for each of the two users' devices. Run with -benchmem; CI runs
// them with a short -benchtime so they keep compiling and running.
//
//	go test -run '^$' -bench . -benchmem ./wire/

// benchBody is about the size of a sealed 64-byte text (the store held 605
// bytes a message under natter-bench).
var benchBody = bytes.Repeat([]byte{0xa5}, 600)

func BenchmarkEncodeMsg(b *testing.B) {
	m := Msg{Seq: 123456, Message: Message{ID: "0192f1c2a3b4c5d6e7f8091a2b3c4d5e", From: "bench-17", FromDevice: "dev-17",
		To: "bench-18", Body: benchBody, ConvSeq: 4242, SentAt: time.Unix(1764000000, 0)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadDecodeSend(b *testing.B) {
	frame, err := Encode(Send{Ref: 99, ID: natter.MessageID("0192f1c2a3b4c5d6e7f8091a2b3c4d5e"), To: "bench-18", Body: benchBody})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	src := bytes.NewReader(nil)
	for b.Loop() {
		src.Reset(frame)
		f, err := NewReader(src, 1<<20).ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(f); err != nil {
			b.Fatal(err)
		}
	}
}
