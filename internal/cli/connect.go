package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

// clientName is sent to the server in Hello, for its logs.
const clientName = "natter-cli/1"

// dial connects to the server: the address from --server, NATTER_SERVER or
// the stored session (fallback), trusted with --ca or the home's pin.
func (r *runner) dial(ctx context.Context, fallback string, user natter.UserID) (*client.Client, string, error) {
	addr := r.g.server
	if addr == "" {
		addr = fallback
	}
	if addr == "" {
		return nil, "", withCode("no_server", "which server? Use --server HOST:PORT or set NATTER_SERVER")
	}
	if err := r.busy(); err != nil {
		return nil, "", err
	}
	device, err := r.home.deviceID()
	if err != nil {
		return nil, "", err
	}
	p := &pinner{file: r.home.path(pinFile), addr: addr, notice: r.stdio.Err, now: r.now, ask: r.trust}
	if r.g.ca == "" {
		if err := r.home.ensure(); err != nil {
			return nil, "", err
		}
	}
	// --server and NATTER_SERVER may list several addresses of one
	// service (natterd nodes): host1:port,host2:port.
	addrs := strings.Split(addr, ",")
	for i := range addrs {
		addrs[i] = strings.TrimSpace(addrs[i])
	}
	tc, err := tlsConfig(addrs[0], r.g.ca, p)
	if err != nil {
		return nil, "", err
	}
	if len(addrs) > 1 {
		tc.ServerName = "" // the SDK checks each address's own host
	}
	keys, err := r.home.keyring(user, device)
	if err != nil {
		return nil, "", err
	}
	c, err := client.Dial(ctx, client.Options{
		Addrs:      addrs,
		TLSConfig:  tc,
		Device:     device,
		ClientName: clientName,
		// natter sends delivered receipts itself: see deliveries.
		// Long-lived commands (and sendfile) talk to contacts peer to
		// peer; files that come that way wait in the chunk cache.
		Direct: (r.longLived || r.direct) && !r.g.noDirect,
		// A command that does one thing and exits does not show the user
		// online to contacts (nor offline after); listen, chat and the
		// terminal UI do.
		Quiet:      !r.longLived,
		ChunkCache: r.home.path(chunkCacheDir),
		// Archive records a command could not put before it exited wait
		// here for the next command.
		ArchiveSpool: r.home.path(archiveSpoolDir(user)),
		Keys:         keys,
	})
	if err != nil {
		if pm := p.lastMismatch(); pm != nil {
			return nil, "", pm
		}
		if errors.Is(err, context.Canceled) {
			return nil, "", err
		}
		if errors.Is(err, errNotTrusted) || p.wasRefused() {
			return nil, "", withCode("certificate", "%v: not connected to %s", errNotTrusted, addr)
		}
		var ve *tls.CertificateVerificationError
		if errors.As(err, &ve) {
			return nil, "", withCode("certificate", "the certificate of %s does not verify with --ca %s: %v", addr, r.g.ca, ve.Err)
		}
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err // "connect: connection refused", without the address again
		}
		return nil, "", withCode("connect", "cannot connect to %s: %v", addr, err)
	}
	return c, addr, nil
}

// resume connects and resumes the home's session.
func (r *runner) resume(ctx context.Context) (*client.Client, storedSession, error) {
	s, err := r.home.session()
	if err != nil {
		return nil, s, err
	}
	c, addr, err := r.dial(ctx, s.Server, s.User)
	if err != nil {
		return nil, s, err
	}
	if _, err := c.Resume(ctx, s.Token); err != nil {
		c.Close()
		return nil, s, serverErr(fmt.Errorf("resume session: %w", err), "")
	}
	s.Server = addr
	return c, s, nil
}

// oneShot runs fn on a resumed session for a command that does one thing and
// exits (or, for a command handed to the home's agent, on the running
// listen's or chat's connection, whose loop shows and keeps what arrives). The server hands a resumed device its stored inbox, and the SDK
// acknowledges whatever it hands to the app, so every message and receipt
// that arrives while fn runs is kept in the home's unread file for natter
// inbox: a command never swallows messages. watch, if set, also sees every
// event (on another goroutine).
func (r *runner) oneShot(ctx context.Context, watch func(client.Event), fn func(c *client.Client, s storedSession) error) error {
	if r.via != nil { // handed to a running listen or chat: its connection
		c, s, err := r.via.get(ctx)
		if err != nil {
			return err
		}
		if watch != nil {
			defer r.via.watch(watch)()
		}
		return fn(c, s)
	}
	c, s, err := r.resume(ctx)
	if err != nil {
		return err
	}
	return r.collect(ctx, c, s, watch, func() error { return fn(c, s) })
}

// inboxGrace bounds how long a one-shot command, done with its work, waits
// for the inbox that follows a login to arrive, so that it can confirm the
// messages' delivery before it exits.
const inboxGrace = time.Second

// collect runs fn while a goroutine reads c's events, logging the messages
// in the history, keeping them and the receipts in the home's unread file
// and confirming their delivery. It closes c, and reads the events left in
// the channel after Close too: the SDK acknowledged them.
func (r *runner) collect(ctx context.Context, c *client.Client, s storedSession, watch func(client.Event), fn func() error) error {
	var (
		mu        sync.Mutex
		unread    []unreadEntry
		done      = make(chan struct{})
		inboxDone = make(chan struct{})
		d         = newDeliveries(s.User)
	)
	go func() {
		defer close(done)
		sawInbox := false
		for ev := range c.Events() {
			if watch != nil {
				watch(ev)
			}
			d.note(ev)
			r.recordEvent(ctx, s.User, ev)
			if u := unreadOf(ev); len(u) > 0 {
				mu.Lock()
				unread = append(unread, u...)
				mu.Unlock()
			}
			if ib, ok := ev.(client.InboxEvent); ok && ib.Done && !sawInbox {
				sawInbox = true
				close(inboxDone)
			}
		}
	}()
	err := fn()
	if err == nil {
		t := time.NewTimer(inboxGrace)
		select {
		case <-inboxDone:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		d.flush(context.WithoutCancel(ctx), c)
	}
	c.Close()
	<-done
	if serr := r.home.appendUnread(s.User, unread); serr != nil && err == nil {
		err = serr
	}
	return err
}
