package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// chat is one natter chat: lines from stdin go to peer, the conversation
// comes out on stdout. Messages from other people are kept for natter inbox
// (with a note), so a chat never swallows them.
type chat struct {
	r     *runner
	c     *client.Client
	s     storedSession
	peer  natter.UserID
	p     *eventPrinter
	echo  bool // print the user's own lines (input is not a terminal)
	d     *deliveries
	other []unreadEntry // messages and receipts that are not about this chat
	retry *pendingLine  // a line to send again after a resume
}

func runChat(ctx context.Context, r *runner, args []string) error {
	if err := natter.ValidateUserID(args[0]); err != nil {
		return err
	}
	if err := r.online(); err != nil {
		return err
	}
	_, interactive := terminalFd(r.stdio.In)
	ch := &chat{r: r, peer: natter.UserID(args[0]), echo: !interactive}
	in := readLines(ctx, r.stdio.In)
	for first := true; ; first = false {
		since := time.Now()
		err := ch.session(ctx, in, first)
		if err != nil && r.replacedHere(ctx, err, since) {
			continue // another natter command of this home came and went
		}
		if ctx.Err() != nil {
			return nil // interrupted: a normal way to leave
		}
		return err
	}
}

// input is the lines of standard input, read on their own goroutine.
type input struct {
	lines <-chan string // closed at the end of input
	err   <-chan error  // then holds the read error, if any
}

func readLines(ctx context.Context, r io.Reader) input {
	lines := make(chan string)
	errc := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, wire.MaxBody)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		errc <- sc.Err()
		close(lines)
	}()
	return input{lines: lines, err: errc}
}

// session resumes the session and chats until the input ends, the session
// ends or ctx ends.
func (ch *chat) session(ctx context.Context, in input, first bool) error {
	r := ch.r
	c, s, err := r.resume(ctx)
	if err != nil {
		return err
	}
	ch.c, ch.s, ch.other = c, s, nil
	r.agent.set(c, s)
	defer r.agent.unset()
	ch.d = newDeliveries(s.User)
	ch.p = &eventPrinter{r: r, me: s.User, device: s.Device}
	err = ch.run(ctx, in, first)
	ch.d.flush(context.WithoutCancel(ctx), c)
	if err == nil || ctx.Err() != nil {
		r.agent.stop() // the chat ends: see listener.session
	}
	r.agent.unset()
	c.Close()
	for ev := range c.Events() { // acknowledged by the SDK: show or keep them
		if ch.event(ev) != nil {
			break
		}
	}
	for ev := range c.Events() {
		r.recordEvent(ctx, s.User, ev)
		ch.other = append(ch.other, unreadOf(ev)...)
	}
	if kerr := r.home.appendUnread(s.User, ch.other); kerr != nil && err == nil {
		err = kerr
	}
	return err
}

func (ch *chat) run(ctx context.Context, in input, first bool) error {
	r, c, peer := ch.r, ch.c, ch.peer
	if first {
		if peer == ch.s.User {
			return withCode("self", "you cannot chat with yourself")
		}
		list, err := c.Contacts(ctx)
		if err != nil {
			return serverErr(fmt.Errorf("list contacts: %w", err), "")
		}
		var contact *wire.Contact
		for i := range list {
			if list[i].User == peer {
				contact = &list[i]
			}
		}
		if contact == nil || contact.State != natter.ContactApproved {
			return withCode(string(wire.CodeNotContact), "%s is not your contact: natter add %s, and wait for them to accept", peer, peer)
		}
		if !r.g.json {
			fmt.Fprintf(r.stdio.Err, "chatting with %s (%s). Type a message and press Enter to send it; Ctrl-D ends the chat.\n",
				peer, presenceText(contact.Status, contact.Text, contact.LastSeen, r.now()))
		}
	}
	if err := r.applyPresence(ctx, c); err != nil {
		return err
	}
	// What earlier commands kept from peer belongs to this conversation.
	kept, commit, err := r.home.takeUnread(ch.s.User)
	if err != nil {
		return err
	}
	for _, e := range kept {
		ch.entry(e)
	}
	if err := commit(); err != nil {
		return err
	}
	opened := make(chan pathResult, 1)
	if !r.g.noDirect {
		go func() {
			octx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			path, rtt, err := c.OpenDirect(octx, peer)
			opened <- pathResult{path, rtt, err}
		}()
	}
	if p := ch.retry; p != nil {
		ch.retry = nil
		if err := ch.sendID(ctx, p.id, p.text); err != nil {
			return err
		}
	}
	for {
		select {
		case line, ok := <-in.lines:
			if !ok {
				if err := <-in.err; err != nil {
					return fmt.Errorf("read input: %w", err)
				}
				return nil // end of input ends the chat
			}
			if err := ch.send(ctx, line); err != nil {
				return err
			}
		case o := <-opened:
			if o.err != nil || o.path == client.PathServer {
				ch.p.path(peer, client.PathServer, 0, o.err)
			} // success is shown by the PathEvent that comes with it
		case ev, ok := <-c.Events():
			if !ok {
				return nil
			}
			if err := ch.event(ev); err != nil {
				return err
			}
			ch.d.flush(ctx, c)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// send sends one line of input.
func (ch *chat) send(ctx context.Context, line string) error {
	text := strings.TrimRight(line, "\r")
	if strings.TrimSpace(text) == "" {
		return nil
	}
	return ch.sendID(ctx, natter.NewMessageID(ch.r.now()), text)
}

// sendID sends text with a given message ID. If another natter command of
// this home cut the session off meanwhile, the line is kept and sent again,
// with the same ID (so at most once more on the server), when the chat
// resumes.
func (ch *chat) sendID(ctx context.Context, id natter.MessageID, text string) error {
	res, err := ch.c.SendID(ctx, id, ch.peer, []byte(text))
	if err != nil {
		var we *wire.Err
		if errors.As(err, &we) && we.Code == wire.CodeReplaced {
			ch.retry = &pendingLine{id: id, text: text}
		}
		return keysErr(serverErr(fmt.Errorf("send to %s: %w", ch.peer, err), ch.peer), ch.peer)
	}
	ch.r.recordSent(ctx, ch.s, ch.peer, text, res)
	if ch.r.g.json {
		result := resultStored
		switch {
		case res.Path != client.PathServer && res.Path != "":
			result = resultDelivered // the peer's device acknowledged it on the channel
		case res.Online:
			result = resultSent
		}
		ch.r.emit(struct {
			Type string `json:"type"`
			jsonSent
		}{"sent", jsonSent{ID: res.ID, To: ch.peer, ConvSeq: res.ConvSeq, SentAt: utc(res.SentAt), Result: result, Path: res.Path}})
		return nil
	}
	if ch.echo {
		ch.r.printf("[%s] %s: %s\n", when(res.SentAt, ch.r.now()), ch.s.User, messageText([]byte(text)))
	}
	return nil
}

// pathResult is how opening a peer-to-peer channel ended.
type pathResult struct {
	path string
	rtt  time.Duration
	err  error
}

// pendingLine is a line whose send was cut off.
type pendingLine struct {
	id   natter.MessageID
	text string
}

// event shows an event of the session; it returns an error when the
// session has ended.
func (ch *chat) event(ev client.Event) error {
	ch.r.agent.publish(ev)
	ch.d.note(ev)
	ch.r.recordEvent(context.Background(), ch.s.User, ev)
	switch ev := ev.(type) {
	case client.MessageEvent:
		ch.entry(unreadEntry{Seq: ev.Seq, Message: &ev.Message, Path: ev.Path})
	case client.ReceiptEvent:
		ch.entry(unreadEntry{Seq: ev.Seq, Receipt: &ev.Rcpt})
	case client.InboxEvent:
		for _, e := range unreadOf(ev) {
			ch.entry(e)
		}
	case client.PresenceEvent:
		if ev.User == ch.peer {
			ch.p.print(ev)
		}
	case client.ContactEvent:
		if ev.User == ch.peer {
			ch.p.print(ev)
		}
	case client.PathEvent:
		if ev.Peer == ch.peer {
			ch.p.print(ev)
		}
	case client.ConnEvent:
		if !replaced(ev) {
			ch.p.print(ev)
		}
		if ev.Final {
			return serverErr(fmt.Errorf("session ended: %w", ev.Err), "")
		}
	}
	return nil
}

// entry shows a message or receipt of this conversation, and keeps the
// others for natter inbox.
func (ch *chat) entry(e unreadEntry) {
	switch {
	case e.Message != nil:
		m := *e.Message
		if m.From == ch.peer || (m.From == ch.s.User && m.To == ch.peer) {
			if !ch.p.ownEcho(m) {
				if ch.r.g.json {
					ch.p.message(m, false, e.Path)
				} else {
					ch.r.printf("[%s] %s: %s\n", when(m.SentAt, ch.r.now()), m.From, strings.ReplaceAll(messageText(m.Body), "\n", "\n    "))
				}
			}
			return
		}
		if m.From != ch.s.User && !ch.r.g.json {
			fmt.Fprintf(ch.r.stdio.Err, "(new message from %s: natter inbox shows it after this chat)\n", m.From)
		}
	case e.Receipt != nil:
		rc := *e.Receipt
		if rc.From == ch.peer {
			if ch.r.g.json {
				ch.p.receipt(rc)
			} else if rc.State == natter.ReceiptRead {
				ch.r.printf("(%s has read your messages)\n", ch.peer)
			}
			return
		}
		if rc.From == ch.s.User {
			return // the user's own receipts: bookkeeping
		}
	}
	ch.other = append(ch.other, e)
}
