package pgstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/natterim/natter"
)

// TestAppendBatch runs batches of appends as the appender's workers do: the
// messages of one batch share its transaction (a repeat within the batch is
// a duplicate of the first, numbers follow each other), and one message
// whose statement fails (an ID PostgreSQL's text cannot hold) takes the
// others down with it only until they are run alone: they are stored, it
// fails.
func TestAppendBatch(t *testing.T) {
	t.Parallel()
	cfg, _ := newSchema(t)
	s := openStore(t, cfg, Options{MaxConns: 2})
	ctx := t.Context()
	for i, u := range []natter.UserID{"ann", "ben", "cat"} {
		if err := s.CreateUser(ctx, u, "hash", at(i)); err != nil {
			t.Fatal(err)
		}
	}
	msg := func(from, to natter.UserID, id string) natter.Message {
		return natter.Message{ID: natter.MessageID(id), From: from, FromDevice: "d", To: to, Body: []byte(id), SentAt: at(1), Chunks: []string{}}
	}
	type want struct {
		err            bool
		dup            bool
		toSeq, convSeq uint64
	}
	for _, tt := range []struct {
		name string
		msgs []natter.Message
		want []want
	}{
		{"one batch", []natter.Message{msg("ann", "ben", "1"), msg("ben", "ann", "2"), msg("ann", "ben", "1"), msg("cat", "ann", "3")},
			[]want{{toSeq: 1, convSeq: 1}, {toSeq: 2, convSeq: 2}, {dup: true, toSeq: 1, convSeq: 1}, {toSeq: 3, convSeq: 1}}},
		{"a bad message", []natter.Message{msg("ann", "ben", "4"), msg("ann", "ben", "bad\x00id"), msg("ann", "cat", "5")},
			[]want{{toSeq: 3, convSeq: 3}, {err: true}, {toSeq: 2, convSeq: 2}}},
		{"a missing user", []natter.Message{msg("ann", "dan", "6"), msg("ben", "cat", "7")},
			[]want{{err: true}, {toSeq: 3, convSeq: 1}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reqs := make([]*appendReq, len(tt.msgs))
			for i, m := range tt.msgs {
				reqs[i] = &appendReq{ctx: ctx, m: m, done: make(chan struct{})}
			}
			s.runAppends(reqs)
			for i, r := range reqs {
				<-r.done
				w := tt.want[i]
				got := fmt.Sprintf("err %v, dup %v, to %d, conv %d", r.err != nil, r.res.Duplicate, r.res.ToSeq, r.res.Message.ConvSeq)
				if w.err {
					if r.err == nil {
						t.Errorf("message %q: %s; want an error", r.m.ID, got)
					}
					continue
				}
				if r.err != nil || r.res.Duplicate != w.dup || r.res.ToSeq != w.toSeq || r.res.Message.ConvSeq != w.convSeq {
					t.Errorf("message %q: %s (%v); want dup %v, to %d, conv %d", r.m.ID, got, r.err, w.dup, w.toSeq, w.convSeq)
				}
			}
		})
	}
	t.Run("receipts", func(t *testing.T) {
		// Receipts share a batch with messages; one naming a missing
		// user fails alone. The inboxes go on from where the cases above
		// left them.
		inbox := func(u natter.UserID) uint64 {
			es, err := s.Inbox(ctx, u, 0, 100)
			if err != nil || len(es) == 0 {
				t.Fatalf("Inbox(%s) = %v, %v", u, es, err)
			}
			return es[len(es)-1].Seq
		}
		ann, ben := inbox("ann"), inbox("ben")
		reqs := []*appendReq{
			{ctx: ctx, rc: &natter.Receipt{From: "ben", To: "ann", Upto: 3, State: natter.ReceiptRead, At: at(2)}},
			{ctx: ctx, m: msg("ann", "ben", "9")},
			{ctx: ctx, rc: &natter.Receipt{From: "ben", To: "dan", Upto: 1, State: natter.ReceiptRead, At: at(2)}},
			{ctx: ctx, rc: &natter.Receipt{From: "ben", To: "ann", Upto: 4, ID: "9", State: natter.ReceiptDelivered, At: at(3)}},
		}
		for _, r := range reqs {
			r.done = make(chan struct{})
		}
		s.runAppends(reqs)
		for i, w := range []struct {
			err            bool
			toSeq, fromSeq uint64
		}{{false, ann + 1, ben + 1}, {false, ben + 2, ann + 2}, {true, 0, 0}, {false, ann + 3, ben + 3}} {
			r := reqs[i]
			<-r.done
			if (r.err != nil) != w.err || !w.err && (r.res.ToSeq != w.toSeq || r.res.FromSeq != w.fromSeq) {
				t.Errorf("request %d: %d/%d, %v; want %d/%d, error %v", i, r.res.ToSeq, r.res.FromSeq, r.err, w.toSeq, w.fromSeq, w.err)
			}
		}
		es, err := s.Inbox(ctx, "ann", ann, 10)
		if err != nil || len(es) != 3 || es[0].Receipt == nil || es[1].Message == nil || es[2].Receipt == nil || es[2].Receipt.ID != "9" {
			t.Fatalf("ann's inbox after the batch = %+v, %v; want receipt, message, receipt naming 9", es, err)
		}
	})

	// A request whose caller gave up before a worker took it is not run.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	r := &appendReq{ctx: gone, m: msg("ann", "ben", "8"), done: make(chan struct{})}
	s.runAppends([]*appendReq{r})
	if r.err == nil {
		t.Fatal("a request whose context ended ran")
	}
	if a, err := s.AppendMessage(ctx, msg("ann", "ben", "8")); err != nil || a.Duplicate {
		t.Fatalf("AppendMessage of the message not run = %+v, %v; want it stored now, as new", a, err)
	}
}
