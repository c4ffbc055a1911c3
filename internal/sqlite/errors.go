package sqlite

import (
	"errors"
	"fmt"

	"github.com/natterim/natter"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// errPanicked marks the error of a write whose work panicked (see
// writer.call).
var errPanicked = errors.New("panic in a write (a bug; see the log)")

// primaryCode returns the primary SQLite result code of err (the low byte of
// an extended code such as SQLITE_IOERR_WRITE), if err comes from SQLite.
func primaryCode(err error) (int, bool) {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return 0, false
	}
	return e.Code() & 0xff, true
}

// unavailable reports whether err means the database cannot take writes now,
// for a reason outside natter's control: the disk is full, the file or file
// system is read-only, the disk fails, the file cannot be opened, another
// process has held a lock beyond the busy timeout, or the file is damaged or
// not a database. Callers see these as natter.ErrStoreUnavailable.
func unavailable(err error) bool {
	code, ok := primaryCode(err)
	if !ok {
		return false
	}
	switch code {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
		sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_PERM,
		sqlite3.SQLITE_NOLFS, sqlite3.SQLITE_PROTOCOL:
		return true
	}
	return false
}

// txFatal reports whether err, returned by a request inside a batch, may have
// ended the batch's transaction, so that the batch cannot go on. A constraint
// violation only undoes its own statement; any other SQLite error (disk full,
// I/O error, busy, interrupted) may roll back the whole transaction. Errors
// that do not come from SQLite (the natter sentinels) never do; a panic
// always does.
func txFatal(err error) bool {
	if errors.Is(err, errPanicked) {
		return true // the transaction is in an unknown state
	}
	code, ok := primaryCode(err)
	return ok && code != sqlite3.SQLITE_CONSTRAINT
}

// wrap adds the operation to err and, for the conditions unavailable
// recognises, natter.ErrStoreUnavailable.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if unavailable(err) && !errors.Is(err, natter.ErrStoreUnavailable) {
		return fmt.Errorf("sqlite: %s: %w: %w", op, natter.ErrStoreUnavailable, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}
