package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/natterim/natter"
)

// AppendMessage is the write every send waits for, so a batch of them
// (appender.go) is one round trip to the database: a pipeline, run by
// PostgreSQL as one implicit transaction (committed at the pipeline's end,
// before its last result is read back), of
//
//  1. the lock of the rows of every user of the batch, in name order (as
//     lockUsers does);
//  2. for each message, appendMessage: with the rows locked (a statement
//     that starts after the lock sees every write of those users committed
//     before it, and the earlier messages of the batch), check that both
//     users exist, that (From, ID) is not stored yet and that every chunk
//     is From's; if so take the conversation's and both inboxes' next
//     numbers and insert everything; return what it found or did.
//
// The rows stay locked until the commit, so no other write of those users,
// on any node, runs in between. A transaction of several round trips held
// them one round trip per statement longer: on a loaded machine each costs
// milliseconds, and every other message of those users waits.
const appendMessage = `
WITH u AS (
    SELECT name, inbox_seq FROM users WHERE name IN ($3::text, $5::text)),
dup AS (
    SELECT id, sender_device, recipient, body, conv_seq, sent_at, to_seq, from_seq, trimmed
    FROM messages WHERE sender = $3 AND id = $4::text),
missing AS (
    SELECT h FROM unnest($9::text[]) h
    WHERE NOT EXISTS (SELECT 1 FROM chunk_uploads cu WHERE cu.username = $3 AND cu.hash = h)
    LIMIT 1),
ok AS (
    SELECT (SELECT inbox_seq FROM u WHERE name = $5) + 1 AS to_seq,
           (SELECT inbox_seq FROM u WHERE name = $3) + 1 AS from_seq
    WHERE (SELECT count(*) FROM u) = 2
      AND NOT EXISTS (SELECT 1 FROM dup) AND NOT EXISTS (SELECT 1 FROM missing)),
c AS (
    INSERT INTO conversations (a, b, last_seq) SELECT $1::text, $2::text, 1 FROM ok
    ON CONFLICT (a, b) DO UPDATE SET last_seq = conversations.last_seq + 1
    RETURNING id, last_seq),
m AS (
    INSERT INTO messages (sender, id, recipient, sender_device, body, conv, conv_seq, sent_at, to_seq, from_seq)
    SELECT $3, $4, $5, $6::text, $7::bytea, c.id, c.last_seq, $8::timestamptz, ok.to_seq, ok.from_seq FROM c, ok
    RETURNING pk, conv_seq, to_seq, from_seq),
i AS (
    INSERT INTO inbox (username, seq, message)
    SELECT $5, to_seq, pk FROM m UNION ALL SELECT $3, from_seq, pk FROM m),
n AS (
    UPDATE users SET inbox_seq = CASE WHEN users.name = $5 THEN m.to_seq ELSE m.from_seq END
    FROM m WHERE users.name IN ($3, $5)),
mc AS (
    INSERT INTO message_chunks (hash, message)
    SELECT DISTINCT h, m.pk FROM m, unnest($9::text[]) h),
ch AS (
    UPDATE chunks SET last_used = greatest(last_used, $8::timestamptz)
    WHERE hash = ANY($9::text[]) AND EXISTS (SELECT 1 FROM m))
SELECT array(SELECT name FROM u), (SELECT h FROM missing),
       m.conv_seq, m.to_seq, m.from_seq,
       d.id, d.sender_device, d.recipient, d.body, d.conv_seq, d.sent_at, d.to_seq, d.from_seq, d.trimmed
FROM (SELECT 1) AS one LEFT JOIN m ON true LEFT JOIN dup d ON true`

// AppendMessage stores m, assigns its conversation sequence number and
// appends it to the inboxes of m.To and m.From, in one transaction and one
// round trip (see appendMessage), shared with the appends of other callers
// of this node queued at the same moment (see appender). A message whose
// (From, ID) is already stored is not stored again: the first copy is
// returned with Duplicate set (and Trimmed, without Body, if it was
// trimmed).
//
// Both users must exist (natter.ErrNoSuchUser), and From must differ from To
// (natter.ErrSelf). m.Chunks must all be chunks m.From uploaded and that
// are kept (natter.ErrNoSuchChunk).
func (s *Store) AppendMessage(ctx context.Context, m natter.Message) (natter.Appended, error) {
	op := fmt.Sprintf("append message %s→%s %s", m.From, m.To, m.ID)
	if m.From == m.To {
		return natter.Appended{}, fmt.Errorf("pgstore: %s: %w", op, natter.ErrSelf)
	}
	if m.Chunks == nil {
		m.Chunks = []string{}
	}
	return s.queue(ctx, op, &appendReq{ctx: ctx, m: m, done: make(chan struct{})})
}

// queue hands r to the appender's workers and waits for its outcome.
func (s *Store) queue(ctx context.Context, op string, r *appendReq) (natter.Appended, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return natter.Appended{}, fmt.Errorf("pgstore: %s: %w", op, natter.ErrClosed)
	}
	select {
	case s.appends <- r:
	case <-ctx.Done():
		return natter.Appended{}, fmt.Errorf("pgstore: %s: %w", op, ctx.Err())
	}
	// Once queued, the append runs unless its context has ended when a
	// worker takes it: its caller waits for the outcome, so that it never
	// hears of a failure for a write that committed.
	<-r.done
	if r.err != nil {
		return natter.Appended{}, wrap(op, r.err)
	}
	return r.res, nil
}

// queueAppend queues m's appendMessage on batch (after the statement that
// locks the users' rows: see appendBatch).
func queueAppend(batch *pgx.Batch, m natter.Message) {
	a, b := pair(m.From, m.To)
	batch.Queue(appendMessage, string(a), string(b),
		string(m.From), string(m.ID), string(m.To), string(m.FromDevice), nonNil(m.Body), dbTime(m.SentAt), m.Chunks)
}

// lockNames returns the users of reqs, sorted, each once: the rows a batch
// locks first.
func lockNames(reqs []*appendReq) []string {
	var names []string
	for _, r := range reqs {
		if r.rc != nil {
			names = append(names, string(r.rc.From), string(r.rc.To))
		} else {
			names = append(names, string(r.m.From), string(r.m.To))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// lockRows is the statement that locks the rows of users ($1, sorted) in
// name order, as lockUsers does.
const lockRows = `SELECT 1 FROM users WHERE name = ANY($1) ORDER BY name FOR NO KEY UPDATE`

// appendBatch appends the messages and receipts of reqs in one pipeline
// (one transaction, one commit): the rows of all their users locked first,
// in name order, then each one's appendMessage or appendReceipt, which sees
// the ones before it (a repeat of an earlier message of the batch is its
// duplicate). res[i] and found[i] are request i's outcome; err is a failure
// of the whole pipeline, after which nothing of it is committed unless it
// wraps natter.ErrStoreUnavailable (then it may be).
func (s *Store) appendBatch(reqs []*appendReq) (res []natter.Appended, found []error, err error) {
	err = s.pipelineRun(context.Background(), func(ctx context.Context, conn *pgx.Conn) error {
		res, found = make([]natter.Appended, len(reqs)), make([]error, len(reqs))
		batch := &pgx.Batch{}
		batch.Queue(lockRows, lockNames(reqs))
		for _, r := range reqs {
			if r.rc != nil {
				queueReceipt(batch, *r.rc)
			} else {
				queueAppend(batch, r.m)
			}
		}
		br := conn.SendBatch(ctx, batch)
		var err error
		if _, err = br.Exec(); err != nil {
			err = fmt.Errorf("lock users: %w", err)
		}
		for i := 0; i < len(reqs) && err == nil; i++ {
			if reqs[i].rc != nil {
				found[i], err = readReceipt(br, *reqs[i].rc, &res[i])
			} else {
				found[i], err = readAppend(br, reqs[i].m, &res[i])
			}
		}
		cerr := br.Close() // reads to the end of the pipeline: its commit
		var pgErr *pgconn.PgError
		switch {
		case err != nil && errors.As(err, &pgErr):
			// The server said a statement failed: the pipeline's
			// transaction ended there, before its commit.
			return abortedError{err}
		case err != nil:
			return err
		}
		return cerr
	})
	return res, found, err
}

// appendReceipt is AppendReceipt's statement in a batch (see
// appendMessage): with both users' rows locked, check that they exist,
// take both inboxes' next numbers and insert the receipt and its entries.
const appendReceipt = `
WITH u AS (
    SELECT name, inbox_seq FROM users WHERE name IN ($1::text, $2::text)),
ok AS (
    SELECT (SELECT inbox_seq FROM u WHERE name = $2) + 1 AS to_seq,
           (SELECT inbox_seq FROM u WHERE name = $1) + 1 AS from_seq
    WHERE (SELECT count(*) FROM u) = 2),
r AS (
    INSERT INTO receipts (sender, recipient, upto, id, state, at, to_seq, from_seq)
    SELECT $1, $2, $3::bigint, $4::text, $5::text, $6::timestamptz, ok.to_seq, ok.from_seq FROM ok
    RETURNING pk, to_seq, from_seq),
i AS (
    INSERT INTO inbox (username, seq, receipt)
    SELECT $2, to_seq, pk FROM r UNION ALL SELECT $1, from_seq, pk FROM r),
n AS (
    UPDATE users SET inbox_seq = CASE WHEN users.name = $2 THEN r.to_seq ELSE r.from_seq END
    FROM r WHERE users.name IN ($1, $2))
SELECT array(SELECT name FROM u), r.to_seq, r.from_seq FROM (SELECT 1) AS one LEFT JOIN r ON true`

// queueReceipt queues rc's appendReceipt on batch. rc has been checked
// (AppendReceipt): its Upto fits a bigint.
func queueReceipt(batch *pgx.Batch, rc natter.Receipt) {
	var id any
	if rc.ID != "" {
		id = string(rc.ID)
	}
	batch.Queue(appendReceipt, string(rc.From), string(rc.To), int64(rc.Upto), id, string(rc.State), dbTime(rc.At))
}

// readReceipt reads the result of rc's appendReceipt into res (ToSeq and
// FromSeq); found and err are as for readAppend.
func readReceipt(br pgx.BatchResults, rc natter.Receipt, res *natter.Appended) (found, err error) {
	var (
		users          []string
		toSeq, fromSeq *int64
	)
	if err := br.QueryRow().Scan(&users, &toSeq, &fromSeq); err != nil {
		return nil, fmt.Errorf("insert receipt: %w", err)
	}
	switch {
	case !slices.Contains(users, string(rc.To)):
		return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, rc.To), nil
	case !slices.Contains(users, string(rc.From)):
		return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, rc.From), nil
	case toSeq == nil:
		return nil, errors.New("insert receipt: nothing inserted, for no reason found")
	}
	res.ToSeq, res.FromSeq = uint64(*toSeq), uint64(*fromSeq)
	return nil, nil
}

// readAppend reads the result of m's appendMessage into res. found is the
// outcome the statement reports (a missing user or chunk), err a failure
// of the pipeline.
func readAppend(br pgx.BatchResults, m natter.Message, res *natter.Appended) (found, err error) {
	var (
		users                      []string
		missing                    *string
		convSeq, toSeq, fromSeq    *int64
		dID, dDevice, dTo          *string
		dBody                      []byte
		dConvSeq, dToSeq, dFromSeq *int64
		dSentAt                    *time.Time
		dTrimmed                   *bool
	)
	err = br.QueryRow().Scan(&users, &missing, &convSeq, &toSeq, &fromSeq,
		&dID, &dDevice, &dTo, &dBody, &dConvSeq, &dSentAt, &dToSeq, &dFromSeq, &dTrimmed)
	if err != nil {
		return nil, fmt.Errorf("insert message: %w", err)
	}
	switch {
	case !slices.Contains(users, string(m.To)):
		return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, m.To), nil
	case !slices.Contains(users, string(m.From)):
		return fmt.Errorf("%w: %s", natter.ErrNoSuchUser, m.From), nil
	case dID != nil:
		d := natter.Message{ID: natter.MessageID(*dID), From: m.From, FromDevice: natter.DeviceID(*dDevice),
			To: natter.UserID(*dTo), Body: dBody, ConvSeq: uint64(*dConvSeq), SentAt: goTime(dSentAt)}
		if *dTrimmed {
			d.Body = nil
		}
		*res = natter.Appended{Message: d, Duplicate: true, Trimmed: *dTrimmed, ToSeq: uint64(*dToSeq), FromSeq: uint64(*dFromSeq)}
		return nil, nil
	case missing != nil:
		return fmt.Errorf("%w: %s did not upload chunk %s (or it expired)", natter.ErrNoSuchChunk, m.From, *missing), nil
	case convSeq == nil:
		return nil, errors.New("insert message: nothing inserted, for no reason found")
	}
	res.Message = m
	res.Message.ConvSeq = uint64(*convSeq)
	res.Message.SentAt = storedTime(m.SentAt)
	res.ToSeq, res.FromSeq = uint64(*toSeq), uint64(*fromSeq)
	return nil, nil
}

// abortedError marks an error after which the pipeline's transaction is
// known not to have committed: the server reported a statement of it as
// failed (terminated by an operator or a shutdown, a deadlock), and a
// failed statement ends the implicit transaction.
type abortedError struct{ err error }

func (e abortedError) Error() string { return e.err.Error() }
func (e abortedError) Unwrap() error { return e.err }

// pipelineRun runs fn, which sends one pipeline (a pgx.Batch: one implicit
// transaction, committed at its end) on a pooled connection and reads it to
// its end. fn runs without ctx's cancellation (bounded by commitTimeout
// instead): a caller that gives up must not be told a write failed that
// may have committed. It is tried again if PostgreSQL chose it as a
// deadlock victim, if the connection failed before anything was sent
// (pgconn.SafeToRetry), or if it was lost in a way that ended the
// transaction before its commit (abortedError: a pooled connection whose
// backend was terminated while idle answers so); a connection lost
// otherwise is reported as natter.ErrStoreUnavailable, since the commit
// may or may not have happened.
//
// The caller holds s.mu shared (AppendMessage, whose append a worker runs
// with this).
func (s *Store) pipelineRun(ctx context.Context, fn func(ctx context.Context, conn *pgx.Conn) error) error {
	var err error
	for lost, deadlocks := 0, 0; ; {
		if err = ctx.Err(); err != nil {
			break
		}
		err = s.pipelineOnce(ctx, fn)
		var aborted abortedError
		switch {
		case err == nil:
		case pgconn.SafeToRetry(err), errors.As(err, &aborted) && unavailable(err):
			lost++
			if lost <= s.maxConns {
				continue
			}
		case retryable(err):
			deadlocks++
			if deadlocks < maxDeadlockTries {
				continue
			}
		}
		break
	}
	return err
}

// pipelineOnce is one try of pipeline.
func (s *Store) pipelineOnce(ctx context.Context, fn func(ctx context.Context, conn *pgx.Conn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := fn(wctx, conn.Conn()); err != nil {
		_, err = lostWith(conn.Conn(), err)
		return err
	}
	return nil
}
