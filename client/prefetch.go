package client

import (
	"sync"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// Prefetching contacts' keys.
//
// Sealing to a device for the first time in a process needs its user's
// verified keys and a claimed one-time prekey: two round trips, and a
// write on the server. Done on the first send to each contact, that made
// the first seconds after many users connect at once slow (every first
// message waited for them). So after an explicit login (once the device's
// own keys are set up, and the contact list has come), the Client opens
// the sessions to its approved contacts' devices and its own other devices
// in the background, a few users at a time: the first send finds them
// open. A failure is logged, and the send tries again as before. Quiet
// Clients (one-shot commands) do not prefetch: they would claim prekeys of
// every contact to send to one.
//
// One FetchKeys per user, not one for all: the server claims prekeys in
// its store's group-committed writes, so concurrent claims share their
// commits already, and a batch would save only frames.

// prefetchWorkers is how many users' keys are fetched at once.
const prefetchWorkers = 4

// prefetch is the state of the login's prefetch.
type prefetch struct {
	mu       sync.Mutex
	contacts []natter.UserID // approved contacts of the login's contact list
	listed   bool            // the login's contact list came
	ready    bool            // the device's keys are set up
	started  bool
}

// noteContacts takes the contact list pushed at login.
func (c *Client) noteContacts(cs []wire.Contact) {
	p := &c.pf
	p.mu.Lock()
	p.contacts = nil
	for _, ct := range cs {
		if ct.State == natter.ContactApproved {
			p.contacts = append(p.contacts, ct.User)
		}
	}
	p.listed = true
	p.mu.Unlock()
	c.startPrefetch()
}

// keysReady says the device's keys are set up after an explicit login.
func (c *Client) keysReady() {
	c.pf.mu.Lock()
	c.pf.ready = true
	c.pf.mu.Unlock()
	c.startPrefetch()
}

// resetPrefetch forgets the last login's prefetch, before another.
func (c *Client) resetPrefetch() {
	p := &c.pf
	p.mu.Lock()
	p.contacts, p.listed, p.ready, p.started = nil, false, false, false
	p.mu.Unlock()
}

// startPrefetch starts the prefetch once both the contact list and the
// device's keys are there.
func (c *Client) startPrefetch() {
	p := &c.pf
	p.mu.Lock()
	if !p.listed || !p.ready || p.started || c.opts.Quiet || c.opts.PrefetchKeys < 0 {
		p.mu.Unlock()
		return
	}
	p.started = true
	users := p.contacts
	if len(users) > c.opts.PrefetchKeys {
		users = users[:c.opts.PrefetchKeys]
	}
	users = append([]natter.UserID(nil), users...)
	p.mu.Unlock()
	kr := c.Keyring()
	if kr == nil {
		return
	}
	users = append([]natter.UserID{kr.User()}, users...) // the user's other devices
	todo := make(chan natter.UserID, len(users))
	for _, u := range users {
		todo <- u
	}
	close(todo)
	for range min(prefetchWorkers, len(users)) {
		c.wg.Go(func() {
			for u := range todo {
				select {
				case <-c.closing:
					return
				default:
				}
				ctx, cancel := c.bgContext(keysTimeout)
				_, err := c.sessionsTo(ctx, kr, u)
				cancel()
				if err != nil {
					c.log.Info("prefetch keys (the first send fetches them)", "user", u, "err", err)
				}
			}
		})
	}
}
