package client_test

import (
	"fmt"
	"testing"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

// receiptEvent waits for u's next ReceiptEvent from from in state.
func receiptEvent(t *testing.T, u *user, from natter.UserID, state natter.ReceiptState) client.ReceiptEvent {
	t.Helper()
	return u.ev.until(func(e client.Event) bool {
		r, ok := e.(client.ReceiptEvent)
		return ok && r.From == from && r.State == state
	}).(client.ReceiptEvent)
}

// TestReceiptsOnDirectPath: messages that went peer to peer (no
// conversation sequence number) can be marked delivered and read by ID;
// the sender's receipt event covers exactly those up to the one named, on
// the sending device and on the sender's other device (which saw them as
// copies). The reader's other device learns, from the same receipt, which
// of the messages it has are read.
func TestReceiptsOnDirectPath(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1", withDirect(false))
	alice2, _ := login(t, inst, "alice", "a2")
	bob := signup(t, inst, "bob", "b1", withDirect(false))
	bob2, _ := login(t, inst, "bob", "b2")
	befriend(t, alice, bob)
	waitReach(t, alice, "bob")
	if path, _, err := alice.OpenDirect(ctx, "bob"); err != nil || path != client.PathDirect {
		t.Fatalf("open direct: %s, %v", path, err)
	}

	var ids []natter.MessageID
	for i := range 3 {
		res, err := alice.Send(ctx, "bob", fmt.Appendf(nil, "direct %d", i))
		if err != nil || res.Path != client.PathDirect || res.ConvSeq != 0 {
			t.Fatalf("send %d: %+v, %v; want direct, no sequence number", i, res, err)
		}
		ids = append(ids, res.ID)
		if ev := bob.ev.message(res.ID); ev.Path != client.PathDirect || ev.Message.ConvSeq != 0 {
			t.Fatalf("bob got %+v", ev)
		}
		// The other devices have the copies before anyone marks them.
		alice2.ev.message(res.ID)
		bob2.ev.message(res.ID)
	}

	check := func(who string, ev client.ReceiptEvent, upto int) {
		t.Helper()
		for i, id := range ids {
			if got, want := ev.Covers(id, 0), i <= upto; got != want {
				t.Errorf("%s: %s receipt %+v covers message %d: %v, want %v", who, ev.State, ev, i, got, want)
			}
		}
	}

	// bob delivered the first two, then read the second.
	if err := bob.MarkDeliveredID(ctx, "alice", ids[1]); err != nil {
		t.Fatal(err)
	}
	check("alice", receiptEvent(t, alice, "bob", natter.ReceiptDelivered), 1)
	if err := bob.MarkReadID(ctx, "alice", ids[1]); err != nil {
		t.Fatal(err)
	}
	ev := receiptEvent(t, alice, "bob", natter.ReceiptRead)
	if ev.ID != ids[1] {
		t.Errorf("read receipt names %s, want %s", ev.ID, ids[1])
	}
	check("alice", ev, 1)
	check("alice's other device", receiptEvent(t, alice2, "bob", natter.ReceiptDelivered), 1)
	check("alice's other device", receiptEvent(t, alice2, "bob", natter.ReceiptRead), 1)
	// bob's other device: his own receipts, on alice's messages.
	check("bob's other device", receiptEvent(t, bob2, "bob", natter.ReceiptDelivered), 1)
	check("bob's other device", receiptEvent(t, bob2, "bob", natter.ReceiptRead), 1)

	// Then the last: it alone is new.
	if err := bob.MarkReadID(ctx, "alice", ids[2]); err != nil {
		t.Fatal(err)
	}
	ev = receiptEvent(t, alice, "bob", natter.ReceiptRead)
	if !ev.Covers(ids[2], 0) || len(ev.Direct) != 1 {
		t.Errorf("the second read receipt %+v: want it to list the last message alone", ev)
	}

	// The server path too: bob's other device takes no channels, so its
	// message goes through natterd and has a sequence number, which
	// MarkReadID names.
	res, err := bob2.Send(ctx, "alice", []byte("through natterd"))
	if err != nil || res.Path != client.PathServer || res.ConvSeq == 0 {
		t.Fatalf("send from bob's other device: %+v, %v", res, err)
	}
	alice.ev.message(res.ID)
	if err := alice.MarkReadID(ctx, "bob", res.ID); err != nil {
		t.Fatal(err)
	}
	ev = receiptEvent(t, bob2, "alice", natter.ReceiptRead)
	if ev.Upto != res.ConvSeq || !ev.Covers(res.ID, res.ConvSeq) {
		t.Errorf("bob's receipt %+v does not cover his message %s (seq %d)", ev, res.ID, res.ConvSeq)
	}
}

// TestReceiptOfDirectMessageWhileSenderOffline: the sender of a message
// that went peer to peer is offline when the reader marks it (delivered,
// then read) by ID. The receipts wait in the sender's inbox: when she logs
// in again on the same device, they come in her InboxEvent naming the
// message, so that they cover it though it has no conversation sequence
// number (which natterd stores the ID for).
func TestReceiptOfDirectMessageWhileSenderOffline(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1", withDirect(false))
	bob := signup(t, inst, "bob", "b1", withDirect(false))
	befriend(t, alice, bob)
	waitReach(t, alice, "bob")
	if path, _, err := alice.OpenDirect(ctx, "bob"); err != nil || path != client.PathDirect {
		t.Fatalf("open direct: %s, %v", path, err)
	}
	res, err := alice.Send(ctx, "bob", []byte("direct, then offline"))
	if err != nil || res.Path != client.PathDirect || res.ConvSeq != 0 {
		t.Fatalf("send: %+v, %v; want direct, no sequence number", res, err)
	}
	if ev := bob.ev.message(res.ID); ev.Path != client.PathDirect || ev.Message.ConvSeq != 0 {
		t.Fatalf("bob got %+v", ev)
	}
	if err := alice.Close(); err != nil {
		t.Fatalf("alice closes: %v", err)
	}

	states := []natter.ReceiptState{natter.ReceiptDelivered, natter.ReceiptRead}
	for _, state := range states {
		mark := bob.MarkDeliveredID
		if state == natter.ReceiptRead {
			mark = bob.MarkReadID
		}
		if err := mark(ctx, "alice", res.ID); err != nil {
			t.Fatalf("bob marks %s %s: %v", res.ID, state, err)
		}
	}

	_, ibs := login(t, inst, "alice", "a1", withDirect(false))
	got := map[natter.ReceiptState]client.ReceiptEvent{}
	for _, ib := range ibs {
		for _, g := range ib.Groups {
			for _, r := range g.Receipts {
				if r.From == "bob" && r.To == "alice" {
					got[r.State] = client.ReceiptEvent{Rcpt: r}
				}
			}
		}
	}
	for _, state := range states {
		t.Run(string(state), func(t *testing.T) {
			ev, ok := got[state]
			switch {
			case !ok:
				t.Fatalf("alice's inbox after login has no %s receipt from bob: %+v", state, ibs)
			case ev.ID != res.ID:
				t.Errorf("the stored %s receipt %+v names %q, want %s", state, ev.Rcpt, ev.ID, res.ID)
			case !ev.Covers(res.ID, 0):
				t.Errorf("the stored %s receipt %+v does not cover the direct message %s", state, ev.Rcpt, res.ID)
			}
		})
	}
}
