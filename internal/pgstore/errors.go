package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/natterim/natter"
)

// unavailable reports whether err means the database cannot serve natter
// now, for a reason outside natter's control: it cannot be reached, a
// connection was lost, the server is shutting down or starting, it is out
// of disk, memory or connections, or it is read-only (a standby). Callers
// see these as natter.ErrStoreUnavailable.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"), // insufficient resources: disk full, out of memory, too many connections
			strings.HasPrefix(pgErr.Code, "58"), // system error: I/O error
			pgErr.Code == "57P01",               // admin_shutdown (also pg_terminate_backend)
			pgErr.Code == "57P02",               // crash_shutdown
			pgErr.Code == "57P03",               // cannot_connect_now: starting up, recovering
			pgErr.Code == "25006":               // read_only_sql_transaction: a standby, or a read-only database
			return true
		}
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		pgconn.SafeToRetry(err)
}

// retryable reports whether err is a deadlock or serialisation failure:
// PostgreSQL rolled the transaction back, and running it again may pass.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// wrap adds the operation to err and, for the conditions unavailable
// recognises, natter.ErrStoreUnavailable.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if unavailable(err) && !errors.Is(err, natter.ErrStoreUnavailable) {
		return fmt.Errorf("pgstore: %s: %w: %w", op, natter.ErrStoreUnavailable, err)
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}
