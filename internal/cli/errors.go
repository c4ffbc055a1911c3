package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// codedError is an error explained for the user, with a stable code for
// --json output. It wraps its cause, if any.
type codedError struct {
	code  string
	msg   string
	cause error
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.cause }

func withCode(code string, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &codedError{code: code, msg: err.Error(), cause: errors.Unwrap(err)}
}

// describe turns err into the message natter prints and the code --json
// output carries.
func describe(err error) (msg, code string) {
	var pm *pinMismatchError
	var ce *codedError
	var we *wire.Err
	switch {
	case errors.As(err, &pm):
		return pm.explain(), "certificate_mismatch"
	case errors.As(err, &ce):
		return ce.Error(), ce.code
	case errors.Is(err, errNotLoggedIn):
		return err.Error(), "not_logged_in"
	case errors.Is(err, natter.ErrInvalidName):
		return err.Error(), string(wire.CodeInvalidName)
	case errors.As(err, &we):
		return serverMessage(we, ""), string(we.Code)
	case errors.Is(err, context.Canceled):
		return "interrupted", "interrupted"
	}
	return err.Error(), "error"
}

// serverErr explains an error from the server in the user's terms. peer is
// the user the request was about, if any. Errors that are not the server's
// pass through unchanged.
func serverErr(err error, peer natter.UserID) error {
	var we *wire.Err
	if !errors.As(err, &we) {
		return err
	}
	return &codedError{code: string(we.Code), msg: serverMessage(we, peer), cause: err}
}

func serverMessage(we *wire.Err, peer natter.UserID) string {
	who := string(peer)
	if who == "" {
		who = "that user"
	}
	switch we.Code {
	case wire.CodeBadCredentials:
		return "wrong user name or password"
	case wire.CodeUserExists:
		return fmt.Sprintf("the user name %s is taken: choose another", who)
	case wire.CodeNoSuchUser:
		return fmt.Sprintf("there is no user %s", who)
	case wire.CodeSessionExpired:
		return "your session has expired or was logged out: run natter login USER"
	case wire.CodeNotContact:
		return fmt.Sprintf("%s is not your contact: natter add %s, and wait for them to accept", who, who)
	case wire.CodeNoRequest:
		return fmt.Sprintf("%s has not asked to be your contact", who)
	case wire.CodeBlocked:
		return fmt.Sprintf("you blocked %s: natter unblock %s first", who, who)
	case wire.CodeSelf:
		return "you cannot do that to yourself"
	case wire.CodeRateLimited:
		if we.RetryAfter > 0 {
			return fmt.Sprintf("too many requests: try again in %v", (time.Duration(we.RetryAfter) * time.Millisecond).Round(100*time.Millisecond))
		}
		return "too many requests: try again later"
	case wire.CodeUnavailable:
		return "the server cannot store anything right now: try again later"
	case wire.CodeShutdown:
		return "the server is shutting down: try again later"
	case wire.CodeReplaced:
		return "this device logged in again elsewhere (another natter using the same home folder)"
	case wire.CodeInvalidName, wire.CodeBadRequest, wire.CodeTooLarge:
		if we.Message != "" {
			return we.Message
		}
	}
	if we.Message != "" {
		return fmt.Sprintf("the server refused: %s (%s)", we.Message, we.Code)
	}
	return fmt.Sprintf("the server refused (%s)", we.Code)
}
