package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/natterim/natter"
)

// Short names for the contact states, to keep the table readable.
const (
	none     = natter.ContactNone
	out      = natter.ContactPendingOut
	in       = natter.ContactPendingIn
	approved = natter.ContactApproved
	blocked  = natter.ContactBlocked
)

// contactStep is one UpdateContact call and what it must return.
type contactStep struct {
	actor, peer natter.UserID
	op          natter.ContactOp
	mine        natter.ContactState // the actor's row after the step
	theirs      natter.ContactState // the peer's row after the step
	err         error               // nil, or the sentinel the error must wrap
}

// step builds a contactStep that succeeds.
func step(actor, peer natter.UserID, op natter.ContactOp, mine, theirs natter.ContactState) contactStep {
	return contactStep{actor: actor, peer: peer, op: op, mine: mine, theirs: theirs}
}

// fails builds a contactStep that fails with err and leaves the rows at mine
// and theirs.
func fails(actor, peer natter.UserID, op natter.ContactOp, err error, mine, theirs natter.ContactState) contactStep {
	return contactStep{actor: actor, peer: peer, op: op, mine: mine, theirs: theirs, err: err}
}

func testContactStateMachine(t *testing.T, s natter.Store) {
	const a, b natter.UserID = "alice", "bob"
	approve := []contactStep{step(a, b, natter.OpAdd, out, in), step(b, a, natter.OpAccept, approved, approved)}
	tests := []struct {
		name  string
		steps []contactStep
	}{
		{"add", []contactStep{step(a, b, natter.OpAdd, out, in)}},
		{"add again", []contactStep{step(a, b, natter.OpAdd, out, in), step(a, b, natter.OpAdd, out, in)}},
		{"add both ways approves", []contactStep{step(a, b, natter.OpAdd, out, in), step(b, a, natter.OpAdd, approved, approved)}},
		{"accept", approve},
		{"accept twice", append(approve[:2:2], step(b, a, natter.OpAccept, approved, approved))},
		{"add when approved", append(approve[:2:2], step(a, b, natter.OpAdd, approved, approved))},
		{"accept without request", []contactStep{fails(b, a, natter.OpAccept, natter.ErrNoRequest, none, none)}},
		{"accept own request", []contactStep{step(a, b, natter.OpAdd, out, in), fails(a, b, natter.OpAccept, natter.ErrNoRequest, out, in)}},
		{"refuse", []contactStep{step(a, b, natter.OpAdd, out, in), step(b, a, natter.OpRefuse, none, none)}},
		{"refuse without request", []contactStep{fails(b, a, natter.OpRefuse, natter.ErrNoRequest, none, none)}},
		{"refuse own request", []contactStep{step(a, b, natter.OpAdd, out, in), fails(a, b, natter.OpRefuse, natter.ErrNoRequest, out, in)}},
		{"refuse when approved", append(approve[:2:2], fails(b, a, natter.OpRefuse, natter.ErrNoRequest, approved, approved))},
		{"remove approved", append(approve[:2:2], step(a, b, natter.OpRemove, none, none))},
		{"remove by the other side", append(approve[:2:2], step(b, a, natter.OpRemove, none, none))},
		{"cancel a request", []contactStep{step(a, b, natter.OpAdd, out, in), step(a, b, natter.OpRemove, none, none)}},
		{"remove a stranger", []contactStep{fails(a, b, natter.OpRemove, natter.ErrNotContact, none, none)}},
		{"block a stranger", []contactStep{step(a, b, natter.OpBlock, blocked, none)}},
		{"block an approved contact", append(approve[:2:2], step(a, b, natter.OpBlock, blocked, none))},
		{"block a requester", []contactStep{step(b, a, natter.OpAdd, out, in), step(a, b, natter.OpBlock, blocked, none)}},
		{"block after asking", []contactStep{step(a, b, natter.OpAdd, out, in), step(a, b, natter.OpBlock, blocked, none)}},
		{"block twice", []contactStep{step(a, b, natter.OpBlock, blocked, none), step(a, b, natter.OpBlock, blocked, none)}},
		{"remove a blocked user", []contactStep{step(a, b, natter.OpBlock, blocked, none), fails(a, b, natter.OpRemove, natter.ErrNotContact, blocked, none)}},
		{"add someone who blocked you stays pending", []contactStep{
			step(a, b, natter.OpBlock, blocked, none),
			step(b, a, natter.OpAdd, out, blocked),
			step(b, a, natter.OpAdd, out, blocked),
		}},
		{"add someone you blocked", []contactStep{
			step(a, b, natter.OpBlock, blocked, none),
			fails(a, b, natter.OpAdd, natter.ErrBlocked, blocked, none),
		}},
		{"unblock", []contactStep{step(a, b, natter.OpBlock, blocked, none), step(a, b, natter.OpUnblock, none, none)}},
		{"unblock keeps the other side's request", []contactStep{
			step(a, b, natter.OpBlock, blocked, none),
			step(b, a, natter.OpAdd, out, blocked),
			step(a, b, natter.OpUnblock, none, out),
		}},
		{"unblock then add", []contactStep{
			step(a, b, natter.OpBlock, blocked, none),
			step(a, b, natter.OpUnblock, none, none),
			step(a, b, natter.OpAdd, out, in),
			step(b, a, natter.OpAccept, approved, approved),
		}},
		{"unblock someone not blocked", []contactStep{fails(a, b, natter.OpUnblock, natter.ErrBadRequest, none, none)}},
		{"unblock an approved contact", append(approve[:2:2], fails(a, b, natter.OpUnblock, natter.ErrBadRequest, approved, approved))},
		{"both block", []contactStep{
			step(a, b, natter.OpBlock, blocked, none),
			step(b, a, natter.OpBlock, blocked, blocked),
			step(a, b, natter.OpUnblock, none, blocked),
			fails(a, b, natter.OpAccept, natter.ErrNoRequest, none, blocked),
		}},
		{"unknown operation", []contactStep{fails(a, b, "befriend", natter.ErrBadRequest, none, none)}},
		{"self", []contactStep{fails(a, a, natter.OpAdd, natter.ErrSelf, none, none)}},
		{"self block", []contactStep{fails(a, a, natter.OpBlock, natter.ErrSelf, none, none)}},
		{"unknown peer", []contactStep{fails(a, "nobody", natter.OpAdd, natter.ErrNoSuchUser, none, none)}},
		{"unknown peer block", []contactStep{fails(a, "nobody", natter.OpBlock, natter.ErrNoSuchUser, none, none)}},
	}
	createUsers(t, s, a, b)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case gets its own pair of users in the one store.
			x, y := natter.UserID(fmt.Sprintf("x%02d", i)), natter.UserID(fmt.Sprintf("y%02d", i))
			createUsers(t, s, x, y)
			rename := func(u natter.UserID) natter.UserID {
				switch u {
				case a:
					return x
				case b:
					return y
				}
				return u
			}
			for j, st := range tt.steps {
				actor, peer := rename(st.actor), rename(st.peer)
				what := fmt.Sprintf("step %d: UpdateContact(%s, %s, %s)", j+1, actor, peer, st.op)
				mine, theirs, err := s.UpdateContact(t.Context(), actor, peer, st.op)
				if st.err != nil {
					wantErr(t, what, err, st.err)
				} else {
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					if mine != st.mine || theirs != st.theirs {
						t.Fatalf("%s = (%q, %q), want (%q, %q)", what, mine, theirs, st.mine, st.theirs)
					}
				}
				if actor == peer {
					checkContactRow(t, s, actor, peer, none)
					continue
				}
				// What is stored is what was returned (or, after an error,
				// what was there before).
				checkContactRow(t, s, actor, peer, st.mine)
				checkContactRow(t, s, peer, actor, st.theirs)
			}
		})
	}

	t.Run("errors.Is", func(t *testing.T) {
		// The sentinels must be distinguishable, not merely non-nil.
		_, _, err := s.UpdateContact(t.Context(), a, "nobody", natter.OpAdd)
		if errors.Is(err, natter.ErrSelf) || errors.Is(err, natter.ErrNoRequest) {
			t.Errorf("unknown peer: %v wraps the wrong sentinel", err)
		}
		_, _, err = s.UpdateContact(t.Context(), a, b, natter.OpAccept)
		if errors.Is(err, natter.ErrNoSuchUser) || errors.Is(err, natter.ErrSelf) {
			t.Errorf("accept without request: %v wraps the wrong sentinel", err)
		}
	})
}

// checkContactRow fails t unless ContactState(owner, peer) is want.
func checkContactRow(t *testing.T, s natter.Store, owner, peer natter.UserID, want natter.ContactState) {
	t.Helper()
	got, err := s.ContactState(t.Context(), owner, peer)
	if err != nil {
		t.Fatalf("ContactState(%s, %s): %v", owner, peer, err)
	}
	if got != want {
		t.Fatalf("ContactState(%s, %s) = %q, want %q", owner, peer, got, want)
	}
}

func testContactList(t *testing.T, s natter.Store) {
	ctx := t.Context()
	createUsers(t, s, "alice", "bob", "carol", "dave", "erin", "frank", "gina")
	update := func(actor, peer natter.UserID, op natter.ContactOp) {
		t.Helper()
		if _, _, err := s.UpdateContact(ctx, actor, peer, op); err != nil {
			t.Fatalf("UpdateContact(%s, %s, %s): %v", actor, peer, op, err)
		}
	}
	// Added out of order, so that the order of the list is the store's.
	update("alice", "frank", natter.OpBlock)
	update("alice", "dave", natter.OpAdd)
	update("erin", "alice", natter.OpAdd)
	update("alice", "bob", natter.OpAdd)
	update("bob", "alice", natter.OpAccept)
	update("alice", "carol", natter.OpAdd)
	update("carol", "alice", natter.OpRefuse) // back to ContactNone on both sides
	update("gina", "alice", natter.OpAdd)
	update("alice", "gina", natter.OpAdd) // mutual: approved

	for _, tt := range []struct {
		owner natter.UserID
		want  []natter.Contact
	}{
		{"alice", []natter.Contact{
			{User: "bob", State: approved},
			{User: "dave", State: out},
			{User: "erin", State: in},
			{User: "frank", State: blocked},
			{User: "gina", State: approved},
		}},
		{"bob", []natter.Contact{{User: "alice", State: approved}}},
		{"carol", nil},
		{"dave", []natter.Contact{{User: "alice", State: in}}},
		{"erin", []natter.Contact{{User: "alice", State: out}}},
		{"frank", nil},
		{"nobody", nil},
	} {
		t.Run(string(tt.owner), func(t *testing.T) {
			got, err := s.Contacts(ctx, tt.owner)
			if err != nil {
				t.Fatalf("Contacts(%s): %v", tt.owner, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Contacts(%s) = %v, want %v", tt.owner, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("Contacts(%s) = %v, want %v", tt.owner, got, tt.want)
				}
			}
		})
	}
}
