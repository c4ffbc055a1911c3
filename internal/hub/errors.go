package hub

import (
	"context"
	"errors"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/auth"
	"github.com/natterim/natter/internal/blobs"
	"github.com/natterim/natter/wire"
)

var timeZero time.Time

// errorFrame maps an error to the Error frame the client sees. It is the one
// place where errors become wire codes.
func errorFrame(ref uint64, err error) wire.Error {
	e := wire.Error{Ref: ref, Code: wire.CodeInternal, Message: "internal error"}
	switch {
	case errors.Is(err, natter.ErrInvalidName):
		e.Code, e.Message = wire.CodeInvalidName, err.Error()
	case errors.Is(err, natter.ErrUserExists):
		e.Code, e.Message = wire.CodeUserExists, "that user name is taken"
	case errors.Is(err, natter.ErrNoSuchUser):
		e.Code, e.Message = wire.CodeNoSuchUser, "no such user"
	case errors.Is(err, natter.ErrBadCredentials):
		e.Code, e.Message = wire.CodeBadCredentials, "wrong user name or password"
	case errors.Is(err, natter.ErrNoSession):
		e.Code, e.Message = wire.CodeSessionExpired, "session expired or logged out; log in again"
	case errors.Is(err, natter.ErrNotContact):
		e.Code, e.Message = wire.CodeNotContact, "not an approved contact"
	case errors.Is(err, natter.ErrNoRequest):
		e.Code, e.Message = wire.CodeNoRequest, "no pending contact request from that user"
	case errors.Is(err, natter.ErrBlocked):
		e.Code, e.Message = wire.CodeBlocked, err.Error()
	case errors.Is(err, natter.ErrSelf):
		e.Code, e.Message = wire.CodeSelf, "you cannot do that to yourself"
	case errors.Is(err, natter.ErrKeyConflict):
		e.Code, e.Message = wire.CodeKeyConflict, "your identity key is already set to a different key; publish with reset to replace it"
	case errors.Is(err, natter.ErrNoSuchDevice):
		e.Code, e.Message = wire.CodeBadRequest, err.Error()
	case errors.Is(err, natter.ErrTooManyDevices):
		e.Code, e.Message = wire.CodeTooManyDevices, err.Error()
	case errors.Is(err, natter.ErrLimit):
		e.Code, e.Message = wire.CodeTooLarge, err.Error()
	case errors.Is(err, natter.ErrQuota):
		e.Code, e.Message = wire.CodeQuota, err.Error()
	case errors.Is(err, errArchiveDisabled):
		e.Code, e.Message = wire.CodeArchiveOff, "this server keeps no server-side history: its operator turned archives off"
	case errors.Is(err, natter.ErrArchiveOff):
		e.Code, e.Message = wire.CodeArchiveOff, "your server-side history is off: turn it on first"
	case errors.Is(err, natter.ErrNoSuchChunk), errors.Is(err, blobs.ErrNotFound):
		// One answer for a chunk that does not exist, one the user may not
		// fetch and one forgotten: the server does not tell them apart.
		e.Code, e.Message = wire.CodeNoSuchChunk, "no such chunk: not uploaded by you, not in a message to or from you, or gone after the file retention"
	case errors.Is(err, blobs.ErrInvalidHash), errors.Is(err, blobs.ErrHashMismatch):
		e.Code, e.Message = wire.CodeBadRequest, err.Error()
	case errors.Is(err, natter.ErrBadRequest):
		e.Code, e.Message = wire.CodeBadRequest, err.Error()
	case errors.Is(err, auth.ErrBusy), errors.Is(err, natter.ErrRateLimited):
		e.Code, e.Message, e.RetryAfter = wire.CodeRateLimited, "server busy; try again shortly", 1000
	case errors.Is(err, natter.ErrStoreUnavailable):
		e.Code, e.Message, e.RetryAfter = wire.CodeUnavailable, "the server cannot store anything right now; nothing was saved, try again later", 5000
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		e.Code, e.Message = wire.CodeUnavailable, "the server took too long; try again"
	}
	return e
}
