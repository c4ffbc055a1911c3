package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

func runContacts(ctx context.Context, r *runner, _ []string) error {
	return r.oneShot(ctx, nil, func(c *client.Client, _ storedSession) error {
		list, err := c.Contacts(ctx)
		if err != nil {
			return serverErr(fmt.Errorf("list contacts: %w", err), "")
		}
		r.printContacts(list)
		return nil
	})
}

func (r *runner) printContacts(list []wire.Contact) {
	if r.g.json {
		out := jsonContacts{Contacts: make([]jsonContact, 0, len(list))}
		for _, c := range list {
			out.Contacts = append(out.Contacts, toJSONContact(c))
		}
		r.emit(out)
		return
	}
	if len(list) == 0 {
		r.printf("no contacts yet: natter add USER\n")
		return
	}
	tw := tabwriter.NewWriter(r.stdio.Out, 0, 0, 2, ' ', 0)
	for _, c := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.User, stateText(c.State), r.contactDetail(c))
	}
	tw.Flush()
}

// contactDetail is the last column of natter contacts.
func (r *runner) contactDetail(c wire.Contact) string {
	switch c.State {
	case natter.ContactApproved:
		return presenceText(c.Status, c.Text, c.LastSeen, r.now())
	case natter.ContactPendingIn:
		return fmt.Sprintf("asks to be your contact: natter accept %s", c.User)
	case natter.ContactPendingOut:
		return fmt.Sprintf("waiting for %s to accept", c.User)
	case natter.ContactBlocked:
		return fmt.Sprintf("you blocked them: natter unblock %s", c.User)
	}
	return ""
}

// runContactOp is add, accept, refuse, remove, block and unblock.
func runContactOp(ctx context.Context, r *runner, op string, name string) error {
	if err := natter.ValidateUserID(name); err != nil {
		return err
	}
	peer := natter.UserID(name)
	return r.oneShot(ctx, nil, func(c *client.Client, s storedSession) error {
		if peer == s.User {
			return withCode(string(wire.CodeSelf), "you cannot %s yourself", op)
		}
		if err := c.ContactOp(ctx, natter.ContactOp(op), peer); err != nil {
			return serverErr(err, peer)
		}
		// Report where the relationship stands now: add may have
		// approved a pending request, or be waiting for the peer.
		state := natter.ContactNone
		if list, err := c.Contacts(ctx); err == nil {
			for _, ct := range list {
				if ct.User == peer {
					state = ct.State
				}
			}
		}
		if r.g.json {
			r.emit(jsonContactOp{Op: natter.ContactOp(op), User: peer, State: jsonState(state)})
			return nil
		}
		r.printf("%s\n", contactOpText(natter.ContactOp(op), peer, s.User, state))
		return nil
	})
}

// jsonState names the absence of a relationship "none" rather than "".
func jsonState(s natter.ContactState) natter.ContactState {
	if s == natter.ContactNone {
		return "none"
	}
	return s
}

func contactOpText(op natter.ContactOp, peer, me natter.UserID, state natter.ContactState) string {
	switch {
	case state == natter.ContactApproved && (op == natter.OpAdd || op == natter.OpAccept):
		return fmt.Sprintf("%s is now your contact", peer)
	case op == natter.OpAdd:
		return fmt.Sprintf("asked %s to be your contact; they can accept with: natter accept %s", peer, me)
	case op == natter.OpRefuse:
		return fmt.Sprintf("refused %s's contact request", peer)
	case op == natter.OpRemove:
		return fmt.Sprintf("removed %s from your contacts", peer)
	case op == natter.OpBlock:
		return fmt.Sprintf("blocked %s: they can no longer reach you or see your presence", peer)
	case op == natter.OpUnblock:
		return fmt.Sprintf("unblocked %s", peer)
	}
	return fmt.Sprintf("%s %s: %s", op, peer, stateText(state))
}
