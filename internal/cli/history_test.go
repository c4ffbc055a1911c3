package cli

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/history"
	"github.com/natterim/natter/wire"
)

func TestHistoryOf(t *testing.T) {
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	fromBob := wire.Message{ID: "m1", From: "bob", FromDevice: "d1", To: "alice", Body: []byte("hi"), ConvSeq: 3, SentAt: at}
	fromMe := wire.Message{ID: "m2", From: "alice", FromDevice: "d2", To: "bob", Body: []byte("yo"), ConvSeq: 4, SentAt: at}
	sealed := errors.New("not sealed for this device")
	tests := []struct {
		name string
		ev   client.Event
		want []history.Entry
	}{
		{"message", client.MessageEvent{Message: fromBob, Path: client.PathRelayed}, []history.Entry{
			{ID: "m1", From: "bob", To: "alice", FromDevice: "d1", Body: "hi", SentAt: at, ConvSeq: 3, Path: "relayed", Direction: history.In}}},
		{"own message from another device", client.MessageEvent{Message: fromMe, Path: client.PathServer}, []history.Entry{
			{ID: "m2", From: "alice", To: "bob", FromDevice: "d2", Body: "yo", SentAt: at, ConvSeq: 4, Path: "server", Direction: history.Out}}},
		{"unopened: the note, marked", client.MessageEvent{Message: wire.Message{ID: "m1", From: "bob", To: "alice", SentAt: at}, OpenErr: sealed}, []history.Entry{
			{ID: "m1", From: "bob", To: "alice", Body: "[this message could not be opened: not sealed for this device]", Unopened: true,
				SentAt: at, Path: "server", Direction: history.In}}},
		{"inbox", client.InboxEvent{
			Groups: []wire.InboxGroup{
				{From: "bob", Messages: []wire.Msg{{Seq: 1, Message: fromBob}}, Receipts: []wire.Rcpt{{From: "bob", Upto: 3}}},
				{From: "alice", Messages: []wire.Msg{{Seq: 2, Message: fromMe, Direct: true}}},
			},
			OpenErrs: map[natter.MessageID]error{"m2": sealed},
		}, []history.Entry{
			{ID: "m1", From: "bob", To: "alice", FromDevice: "d1", Body: "hi", SentAt: at, ConvSeq: 3, Path: "server", Direction: history.In},
			{ID: "m2", From: "alice", To: "bob", FromDevice: "d2", Body: "[this message could not be opened: not sealed for this device]",
				Unopened: true, SentAt: at, ConvSeq: 4, Path: "direct", Direction: history.Out}}},
		{"receipt", client.ReceiptEvent{Rcpt: wire.Rcpt{From: "bob", Upto: 3}}, nil},
		{"presence", client.PresenceEvent{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := historyOf(tt.ev, "alice")
			if len(got) != len(tt.want) {
				t.Fatalf("historyOf = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("entry %d = %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}

	// A peer-to-peer message without a time is logged at the time it came.
	before := time.Now()
	e := historyEntry(wire.Message{ID: "m3", From: "bob", To: "alice"}, client.PathDirect, nil, "alice")
	if e.SentAt.Before(before) || e.SentAt.After(time.Now()) {
		t.Errorf("SentAt of a message without one = %v", e.SentAt)
	}
}

// TestRecordFailure: a history that cannot be written is reported once on
// stderr and makes the exit status 1, without stopping the command.
func TestRecordFailure(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(dir+"/"+historyFile("alice"), 0o700); err != nil { // not a file
		t.Fatal(err)
	}
	var errb strings.Builder
	r := &runner{stdio: Stdio{Err: &errb}, home: home{dir: dir}}
	e := historyEntry(wire.Message{ID: "m1", From: "bob", To: "alice", Body: []byte("hi"), SentAt: time.Now()}, "", nil, "alice")
	r.record(context.Background(), "alice", e)
	r.record(context.Background(), "alice", e)
	if r.historyErr() == nil {
		t.Error("no error kept")
	}
	if n := strings.Count(errb.String(), "could not keep messages in the history"); n != 1 {
		t.Errorf("stderr %q: want the warning once", errb.String())
	}
	r.closeHistory()

	// And with a working file, one record is one logged message.
	dir = t.TempDir()
	r = &runner{stdio: Stdio{Err: &errb}, home: home{dir: dir}}
	r.record(context.Background(), "alice", e, e)
	r.closeHistory()
	if err := r.historyErr(); err != nil {
		t.Fatal(err)
	}
	l, err := history.Open(context.Background(), dir+"/"+historyFile("alice"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n, err := l.Count(context.Background()); n != 1 || err != nil {
		t.Errorf("Count = %d, %v; want 1", n, err)
	}
}
