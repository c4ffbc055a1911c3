package natter

import "fmt"

// ContactState is one side's view of a relationship between two users. The
// store keeps one row per direction: (owner, peer) → state. Only when both
// rows say ContactApproved do the two see each other's presence and may they
// message each other.
type ContactState string

// The contact states, seen from the owner of the row.
const (
	ContactNone       ContactState = ""            // no relationship
	ContactPendingOut ContactState = "pending_out" // owner asked peer
	ContactPendingIn  ContactState = "pending_in"  // peer asked owner
	ContactApproved   ContactState = "approved"    // both agreed
	ContactBlocked    ContactState = "blocked"     // owner blocked peer
)

// ContactOp is something a user does to a relationship.
type ContactOp string

// The contact operations.
const (
	OpAdd     ContactOp = "add"
	OpAccept  ContactOp = "accept"
	OpRefuse  ContactOp = "refuse"
	OpRemove  ContactOp = "remove"
	OpBlock   ContactOp = "block"
	OpUnblock ContactOp = "unblock"
)

// Contact is a row of a user's contact list.
type Contact struct {
	User  UserID
	State ContactState
}

// ApplyContactOp is the contact state machine, shared by every Store so that
// all of them agree. Given the state of the actor's row (mine: actor → peer)
// and of the peer's row (theirs: peer → actor) it returns both new states.
//
// Blocking is never revealed to the blocked user: a request to someone who
// blocked you stays pending on your side, and a block removes you from the
// blocker's presence as a removal would.
func ApplyContactOp(op ContactOp, mine, theirs ContactState) (newMine, newTheirs ContactState, err error) {
	switch op {
	case OpAdd:
		switch {
		case mine == ContactBlocked:
			return mine, theirs, fmt.Errorf("%w: unblock them first", ErrBlocked)
		case mine == ContactApproved:
			return mine, theirs, nil
		case theirs == ContactBlocked:
			return ContactPendingOut, theirs, nil
		case mine == ContactPendingIn:
			return ContactApproved, ContactApproved, nil
		default:
			return ContactPendingOut, ContactPendingIn, nil
		}
	case OpAccept:
		if mine == ContactApproved {
			return mine, theirs, nil
		}
		if mine != ContactPendingIn {
			return mine, theirs, ErrNoRequest
		}
		return ContactApproved, ContactApproved, nil
	case OpRefuse:
		if mine != ContactPendingIn {
			return mine, theirs, ErrNoRequest
		}
		return ContactNone, clearUnlessBlocked(theirs), nil
	case OpRemove:
		if mine == ContactNone || mine == ContactBlocked {
			return mine, theirs, ErrNotContact
		}
		return ContactNone, clearUnlessBlocked(theirs), nil
	case OpBlock:
		return ContactBlocked, clearUnlessBlocked(theirs), nil
	case OpUnblock:
		if mine != ContactBlocked {
			return mine, theirs, fmt.Errorf("%w: %s is not blocked", ErrBadRequest, "contact")
		}
		return ContactNone, theirs, nil
	}
	return mine, theirs, fmt.Errorf("%w: unknown contact operation %q", ErrBadRequest, op)
}

func clearUnlessBlocked(s ContactState) ContactState {
	if s == ContactBlocked {
		return s
	}
	return ContactNone
}
