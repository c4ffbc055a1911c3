package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

// presenceFile remembers the last natter status, so that natter listen and
// natter chat, which keep the user online, show it.
const presenceFile = "presence.json"

type storedPresence struct {
	Status natter.Status `json:"status"`
	Text   string        `json:"text,omitempty"`
}

func runStatus(ctx context.Context, r *runner, args []string) error {
	p := storedPresence{Status: natter.Status(args[0]), Text: strings.Join(args[1:], " ")}
	if !p.Status.Valid() {
		return usagef(r.cmd, "status: %q is not a status: use online, away or busy", args[0])
	}
	if len(p.Text) > natter.MaxStatusText {
		return withCode("too_large", "the status text is %d bytes long; the limit is %d", len(p.Text), natter.MaxStatusText)
	}
	err := r.oneShot(ctx, nil, func(c *client.Client, _ storedSession) error {
		if err := c.SetPresence(ctx, p.Status, p.Text); err != nil {
			return serverErr(fmt.Errorf("set status: %w", err), "")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := r.home.savePresence(p); err != nil {
		return err
	}
	if r.g.json {
		r.emit(jsonStatus(p))
		return nil
	}
	if p.Text != "" {
		r.printf("status: %s %q\n", p.Status, p.Text)
	} else {
		r.printf("status: %s\n", p.Status)
	}
	if r.via == nil { // a running listen or chat already keeps it
		fmt.Fprintf(r.stdio.Err, "natter: contacts see the status while you are online (natter listen or natter chat keep you online with it), and the text also while you are away.\n")
	}
	return nil
}

func (h home) savePresence(p storedPresence) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	if err := h.writeFile(presenceFile, append(b, '\n')); err != nil {
		return fmt.Errorf("remember status: %w", err)
	}
	return nil
}

// presence returns the remembered status, if any.
func (h home) presence() (storedPresence, bool) {
	b, err := os.ReadFile(h.path(presenceFile))
	if err != nil {
		return storedPresence{}, false
	}
	var p storedPresence
	if json.Unmarshal(b, &p) != nil || !p.Status.Valid() {
		return storedPresence{}, false
	}
	return p, true
}

// applyPresence sets the remembered status on a session that stays online.
func (r *runner) applyPresence(ctx context.Context, c *client.Client) error {
	p, ok := r.home.presence()
	if !ok || (p.Status == natter.StatusOnline && p.Text == "") {
		return nil
	}
	if err := c.SetPresence(ctx, p.Status, p.Text); err != nil {
		return serverErr(fmt.Errorf("set status: %w", err), "")
	}
	return nil
}
