package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// Waiting out the server's login throttle: at most maxAuthTries attempts,
// and only for waits up to maxAuthWait.
const (
	maxAuthTries = 3
	maxAuthWait  = 5 * time.Second
)

func runSignup(ctx context.Context, r *runner, args []string) error {
	return r.authenticate(ctx, args[0], true)
}

func runLogin(ctx context.Context, r *runner, args []string) error {
	return r.authenticate(ctx, args[0], false)
}

// authenticate is signup (create) or login: it checks the name, reads the
// password, logs in and keeps the session in the home.
func (r *runner) authenticate(ctx context.Context, name string, create bool) error {
	if err := natter.ValidateUserID(name); err != nil {
		return err
	}
	user := natter.UserID(name)
	pw, err := r.password(r.opts.passwordStdin, create)
	if err != nil {
		return err
	}
	var fallback string
	if old, err := r.home.session(); err == nil {
		fallback = old.Server
	}
	c, addr, err := r.dial(ctx, fallback, user)
	if err != nil {
		return err
	}
	sess, err := signIn(ctx, c, user, pw, create)
	if err != nil {
		c.Close()
		if errors.Is(err, context.Canceled) {
			return err
		}
		return serverErr(err, user)
	}
	s := storedSession{Server: addr, User: sess.User, Device: sess.Device, Token: sess.Token, Expires: sess.Expires}
	if err := r.home.saveSession(s); err != nil {
		c.Close()
		return err
	}
	// Keep whatever the new session delivers (its inbox) for natter inbox.
	if err := r.collect(ctx, c, s, nil, func() error { return nil }); err != nil {
		return err
	}
	if r.g.json {
		r.emit(jsonSession{User: s.User, Device: s.Device, Server: s.Server, Expires: utc(s.Expires)})
		return nil
	}
	verb := "logged in"
	if create {
		verb = "signed up and logged in"
	}
	r.printf("%s as %s on %s\n", verb, s.User, s.Server)
	return nil
}

func runLogout(ctx context.Context, r *runner, _ []string) error {
	s, err := r.home.session()
	if err != nil {
		return err
	}
	ended := false
	err = r.oneShot(ctx, nil, func(c *client.Client, _ storedSession) error {
		return c.Logout(ctx)
	})
	var we *wire.Err
	switch {
	case errors.As(err, &we) && we.Code == wire.CodeSessionExpired:
		ended = true // the server forgot it already: forgetting it here is all there is to do
	case errors.Is(err, errNotLoggedIn):
		return err
	case err != nil:
		msg, code := describe(err)
		return &codedError{code: code, cause: err,
			msg: fmt.Sprintf("%s\n(the session token is kept so that you can try again; delete %s to forget it)", msg, r.home.path(sessionFile))}
	}
	if err := r.home.deleteSession(); err != nil {
		return err
	}
	if r.g.json {
		r.emit(jsonLoggedOut{User: s.User, LoggedOut: true})
		return nil
	}
	if ended {
		r.printf("logged out %s (the session had already ended on the server)\n", s.User)
	} else {
		r.printf("logged out %s\n", s.User)
	}
	return nil
}

// signIn signs up (create) or logs in on c, waiting out the server's login
// throttle when it asks for a short wait.
func signIn(ctx context.Context, c *client.Client, user natter.UserID, pw string, create bool) (client.Session, error) {
	for try := 1; ; try++ {
		var sess client.Session
		var err error
		if create {
			sess, err = c.Signup(ctx, user, pw)
		} else {
			sess, err = c.Login(ctx, user, pw)
		}
		// The server throttles logins per address after failures; a short
		// wait it asks for is worth waiting out rather than failing.
		var we *wire.Err
		if try == maxAuthTries || !errors.As(err, &we) || we.Code != wire.CodeRateLimited {
			return sess, err
		}
		// A wait under a millisecond is sent as 0 (no hint): wait a little.
		wait := max(time.Duration(we.RetryAfter)*time.Millisecond, 100*time.Millisecond)
		if wait > maxAuthWait {
			return sess, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return sess, ctx.Err()
		}
	}
}
