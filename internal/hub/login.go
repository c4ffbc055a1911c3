package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/auth"
	"github.com/natterim/natter/wire"
)

// Password length bounds, in bytes. The upper bound keeps hashing cost fixed.
const (
	minPassword = 8
	maxPassword = 1024
)

func (c *client) signup(ctx context.Context, m *wire.Signup) string {
	h := c.h
	if err := natter.ValidateUserID(string(m.User)); err != nil {
		c.fail(m.Ref, err)
		return ""
	}
	if err := validatePassword(m.Password); err != nil {
		c.fail(m.Ref, err)
		return ""
	}
	if err := natter.ValidateDeviceID(string(m.Device)); err != nil {
		c.fail(m.Ref, err)
		return ""
	}
	hash, err := h.cfg.Hasher.Hash(ctx, m.Password)
	if err != nil {
		c.fail(m.Ref, err)
		return ""
	}
	if err := h.cfg.Store.CreateUser(ctx, m.User, hash, h.now()); err != nil {
		h.met.logins.WithLabelValues("signup_refused").Inc()
		c.fail(m.Ref, err)
		return ""
	}
	h.met.logins.WithLabelValues("signup").Inc()
	c.log.Info("signed up", "user", m.User)
	return c.newSession(ctx, m.Ref, m.User, m.Device, "", m.Quiet)
}

func validatePassword(pw string) error {
	if len(pw) < minPassword || len(pw) > maxPassword {
		return fmt.Errorf("%w: a password must be %d to %d bytes long", natter.ErrBadRequest, minPassword, maxPassword)
	}
	return nil
}

func (c *client) login(ctx context.Context, m *wire.Login) string {
	h := c.h
	if err := natter.ValidateDeviceID(string(m.Device)); err != nil {
		c.fail(m.Ref, err)
		return ""
	}
	hash, ok := c.checkPassword(ctx, m.Ref, m.User, m.Password)
	if !ok {
		return ""
	}
	h.met.logins.WithLabelValues("password").Inc()
	return c.newSession(ctx, m.Ref, m.User, m.Device, hash, m.Quiet)
}

// checkPassword checks password against user's stored hash, for Login and
// ChangePassword alike: on the hashing pool, behind the per-account and
// per-address throttles. An unknown user costs the same hashing work and
// gets the same answer as a wrong password, so neither timing nor answer
// tells which names exist. On failure it answers request ref itself
// (rate_limited during a back-off, without checking; bad_credentials with
// the back-off now in force) and returns false; on success it returns the
// hash it verified.
//
// A success clears the account's failures but not the address's: an
// attacker could otherwise sign up an account of their own and log into it
// between guesses to reset their address's count.
func (c *client) checkPassword(ctx context.Context, ref uint64, user natter.UserID, password string) (string, bool) {
	h := c.h
	userKey, ipKey := "u:"+string(user), "ip:"+c.addr
	now := h.now()
	if wait := max(h.cfg.Throttle.Wait(userKey, now), h.cfg.IPThrottle.Wait(ipKey, now)); wait > 0 {
		h.met.logins.WithLabelValues("throttled").Inc()
		c.push(wire.Error{Ref: ref, Code: wire.CodeRateLimited,
			Message:    fmt.Sprintf("too many wrong passwords; try again in %s", wait.Round(time.Second/10)),
			RetryAfter: ceilMillis(wait)})
		return "", false
	}
	hash, err := h.cfg.Store.PasswordHash(ctx, user)
	ok := false
	switch {
	case errors.Is(err, natter.ErrNoSuchUser):
		// Spend the same effort, so timing does not tell which names exist.
		if err := h.cfg.Hasher.Dummy(ctx, password); err != nil {
			c.fail(ref, err)
			return "", false
		}
	case err != nil:
		c.fail(ref, err)
		return "", false
	default:
		if ok, err = h.cfg.Hasher.Verify(ctx, hash, password); err != nil {
			c.fail(ref, err)
			return "", false
		}
	}
	if !ok {
		// The back-off runs from the answer, not from the request: the
		// hashing took time (much of it when the pool is busy), and the
		// client is told to wait d from now.
		now := h.now()
		d := max(h.cfg.Throttle.Fail(userKey, now), h.cfg.IPThrottle.Fail(ipKey, now))
		h.met.logins.WithLabelValues("bad_credentials").Inc()
		c.log.Info("wrong password", "user", user, "backoff", d)
		c.push(wire.Error{Ref: ref, Code: wire.CodeBadCredentials,
			Message:    fmt.Sprintf("wrong user name or password; next try allowed in %s", d.Round(time.Second/10)),
			RetryAfter: ceilMillis(d)})
		return "", false
	}
	h.cfg.Throttle.Succeed(userKey)
	return hash, true
}

// newSession issues a token for a password login or signup, then starts.
// verified is the password hash a login checked the password against ("" for
// a signup): if the password changed meanwhile, the new session is dropped
// and the login refused, so that a login racing a password change with the
// old password cannot outlive the change. quiet makes it a quiet session.
func (c *client) newSession(ctx context.Context, ref uint64, user natter.UserID, device natter.DeviceID, verified string, quiet bool) string {
	h := c.h
	token, hash := auth.NewToken()
	now := h.now()
	s := natter.Session{TokenHash: hash, User: user, Device: device, Created: now, Expires: now.Add(h.cfg.SessionTTL)}
	if err := h.cfg.Store.CreateSession(ctx, s); err != nil {
		c.fail(ref, err)
		return ""
	}
	if verified != "" {
		// SetPassword changes the hash and deletes sessions atomically: if
		// it committed after CreateSession, the session is gone (start
		// checks); if before, the hash read here is the new one.
		current, err := h.cfg.Store.PasswordHash(ctx, user)
		if err == nil && current != verified {
			err = fmt.Errorf("%w: the password changed meanwhile", natter.ErrBadCredentials)
		}
		if err != nil {
			if derr := h.cfg.Store.DeleteSession(ctx, hash); derr != nil {
				c.log.Error("drop a session whose password changed", "err", derr)
			}
			c.fail(ref, err)
			return ""
		}
	}
	return c.start(ctx, ref, s, token, quiet)
}

func (c *client) resume(ctx context.Context, m *wire.Resume) string {
	h := c.h
	s, err := h.cfg.Store.Session(ctx, auth.HashToken(m.Token))
	if errors.Is(err, natter.ErrNoSession) || err == nil && !h.now().Before(s.Expires) {
		h.met.logins.WithLabelValues("token_refused").Inc()
		c.push(wire.Error{Ref: m.Ref, Code: wire.CodeSessionExpired, Message: "session expired or logged out; log in again"})
		return ""
	}
	if err != nil {
		c.fail(m.Ref, err)
		return ""
	}
	h.met.logins.WithLabelValues("token").Inc()
	return c.start(ctx, m.Ref, s, m.Token, m.Quiet)
}

// start makes the connection a live session of s: it registers it, answers
// Authed, sends the contact list with presence, contacts' connection info and
// the stored inbox, then lets live events through and tells contacts.
//
// A quiet session tells contacts nothing, unless registering it changed
// what they see: it replaced a real session of the same device (say, of a
// process that was killed and whose connection had not timed out yet),
// which then ends as if it had logged out.
func (c *client) start(ctx context.Context, ref uint64, s natter.Session, token string, quiet bool) string {
	h := c.h
	now := h.now()
	cursor, err := c.touchDevice(ctx, s, now)
	if err != nil {
		c.fail(ref, err)
		return ""
	}
	c.user, c.device, c.tokenHash, c.cursor, c.storedCursor = s.User, s.Device, s.TokenHash, cursor, cursor
	c.status, c.since, c.quiet = natter.StatusOnline, now, quiet
	c.log = c.log.With("user", s.User, "device", s.Device)

	// Subscribe before reading the inbox, holding events until the replay is
	// out, so nothing falls between the two.
	sub, err := h.cfg.Bus.Subscribe(s.User, c.onEvent)
	if err != nil {
		c.fail(ref, err)
		c.user = ""
		return ""
	}
	c.sub = sub
	// A password change ends every other session and then tells the
	// user's connections to close. A login that read its session before
	// the change but subscribed after that message went out would miss
	// it: so check, now that it is subscribed, that the session still
	// stands.
	if _, err := h.cfg.Store.Session(ctx, s.TokenHash); err != nil {
		sub.Unsubscribe()
		c.sub, c.user = nil, ""
		c.mu.Lock()
		c.held = nil
		c.mu.Unlock()
		if errors.Is(err, natter.ErrNoSession) {
			h.met.logins.WithLabelValues("token_refused").Inc()
			c.push(wire.Error{Ref: ref, Code: wire.CodeSessionExpired, Message: "session expired or logged out; log in again"})
			return ""
		}
		c.fail(ref, err)
		return ""
	}
	before, err := h.cfg.Registry.Sessions(ctx, s.User)
	if err != nil {
		c.fail(ref, err)
		return "registry: " + err.Error()
	}
	if err := h.cfg.Registry.Put(ctx, c.liveSession()); err != nil {
		c.fail(ref, err)
		return "registry: " + err.Error()
	}
	h.met.sessions.Inc()
	after := []natter.LiveSession{c.liveSession()}
	staleReach := false
	for _, old := range before {
		if old.Device == s.Device {
			// The session this one replaces: its connection info
			// belongs to a connection that is going away.
			staleReach = len(old.Reach) > 0
			continue
		}
		after = append(after, old)
	}
	changed := !samePresence(natter.PresenceOf(s.User, before, timeZero), natter.PresenceOf(s.User, after, timeZero))
	if staleReach {
		h.publishReach(ctx, s.User, s.Device, nil)
	}
	// Another connection of the same device (a stale one, or a second login)
	// is replaced by this one.
	bye, _ := wire.Encode(wire.Bye{Code: wire.CodeReplaced, Message: "this device logged in on another connection"})
	h.publish(ctx, s.User, event{kind: evKick, device: s.Device, skipConn: c.id, frame: bye})

	c.push(wire.Authed{Ref: ref, User: s.User, Device: s.Device, Token: token, Expires: s.Expires})
	c.log.Info("logged in")
	if err := c.sendContacts(ctx, 0); err != nil {
		c.log.Error("send contacts", "err", err)
	}
	c.sendContactsReach(ctx)
	through, err := c.replay(ctx, c.cursor, 0)
	if err != nil {
		c.log.Error("inbox replay", "err", err)
	}
	c.goLive(through)
	if !c.quiet || changed {
		h.announce(ctx, s.User)
	}
	return ""
}

func (c *client) liveSession() natter.LiveSession {
	return natter.LiveSession{User: c.user, Device: c.device, Conn: c.id, Node: c.h.cfg.Node,
		Status: c.status, Text: c.text, Reach: c.reach, Since: c.since, Quiet: c.quiet}
}

func (c *client) logout(ctx context.Context, m *wire.Logout) string {
	if err := c.h.cfg.Store.DeleteSession(ctx, c.tokenHash); err != nil {
		c.fail(m.Ref, err)
		return ""
	}
	c.push(wire.OK{Ref: m.Ref})
	b, _ := wire.Encode(wire.Bye{Code: wire.CodeLoggedOut, Message: "logged out"})
	c.w.Finish(b)
	c.log.Info("logged out")
	return "logout"
}

// changePassword checks the old password as Login does, stores a hash of
// the new one, and replaces every session of the user with a new one for
// this connection: every other token stops working at once, and so does
// this connection's old one. The answer is Authed with the new token (this
// connection stays logged in); the user's other connections get
// Bye{logged_out} and are closed.
func (c *client) changePassword(ctx context.Context, m *wire.ChangePassword) {
	h := c.h
	if err := validatePassword(m.New); err != nil {
		c.fail(m.Ref, err)
		return
	}
	if _, ok := c.checkPassword(ctx, m.Ref, c.user, m.Old); !ok {
		return
	}
	hash, err := h.cfg.Hasher.Hash(ctx, m.New)
	if err != nil {
		c.fail(m.Ref, err)
		return
	}
	token, tokenHash := auth.NewToken()
	now := h.now()
	s := natter.Session{TokenHash: tokenHash, User: c.user, Device: c.device, Created: now, Expires: now.Add(h.cfg.SessionTTL)}
	if err := h.cfg.Store.SetPassword(ctx, c.user, hash, s); err != nil {
		h.met.storeErrors.Inc()
		c.fail(m.Ref, err)
		return
	}
	c.tokenHash = tokenHash
	h.met.logins.WithLabelValues("password_changed").Inc()
	c.log.Info("password changed; other sessions ended")
	c.push(wire.Authed{Ref: m.Ref, User: c.user, Device: c.device, Token: token, Expires: s.Expires})
	bye, _ := wire.Encode(wire.Bye{Code: wire.CodeLoggedOut, Message: "the password was changed on another device; log in again"})
	h.publish(ctx, c.user, event{kind: evLogout, skipConn: c.id, frame: bye})
}

// cleanup runs when the reader ends: it drops the live session and, unless
// the device reconnected elsewhere or the session was quiet, tells contacts.
func (c *client) cleanup() {
	if c.user == "" {
		return
	}
	c.dropPathReports()
	h := c.h
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	c.flushCursor(fctx)
	fcancel()
	if c.sub != nil {
		c.sub.Unsubscribe()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	removed, err := h.cfg.Registry.Delete(ctx, c.user, c.device, c.id)
	if err != nil {
		c.log.Error("registry delete", "err", err)
	}
	h.met.sessions.Dec()
	if !removed {
		return
	}
	if len(c.reach) > 0 {
		c.reach = nil
		h.publishReach(ctx, c.user, c.device, nil)
	}
	if c.quiet {
		// Nothing contacts see changed: no presence, no last seen. The
		// relay allocations still end with the user's last session.
		h.revokeIfGone(ctx, c.user)
		return
	}
	h.announce(ctx, c.user)
}

// ceilMillis rounds d up to whole milliseconds, so a wait is never sent as 0.
func ceilMillis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
