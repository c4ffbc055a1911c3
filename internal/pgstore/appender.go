package pgstore

import (
	"context"
	"errors"

	"github.com/natterim/natter"
)

// The appender: group commit for AppendMessage and AppendReceipt (two of
// which follow most messages) within a node.
//
// PostgreSQL shares one WAL flush among the commits that arrive while the
// previous one runs, but appends of the same user cannot share one: each
// holds the user's row lock (for the inbox counter) until its commit, so
// they commit one after the other, one flush each (~10 ms on this
// machine's disk). So AppendMessage queues its message for a few worker
// goroutines, each of which takes every message queued at that moment (up
// to maxAppendBatch) and appends them in one pipeline: one transaction,
// one commit, however many of them share users. Appends on different
// nodes, or of different workers, still share flushes the database's way.
//
// A batch locks all its users' rows in one statement, in name order, before
// anything else, as every other write locks its users, so batches never
// deadlock with each other or with other writes. If one message's
// statement fails (not an outcome such as a missing user or a duplicate,
// which it reports: an error the server raised), the batch's transaction
// is rolled back and each of its messages is appended alone, so that only
// its own caller hears of it.

const (
	// appendWorkers is how many batches of appends a node runs at once.
	appendWorkers = 2
	// maxAppendBatch bounds the messages of one batch.
	maxAppendBatch = 64
)

// appendReq is one queued AppendMessage, or AppendReceipt if rc is set.
type appendReq struct {
	ctx  context.Context // the caller's: a request whose context ended is not run
	m    natter.Message
	rc   *natter.Receipt
	res  natter.Appended // a receipt's outcome is ToSeq and FromSeq
	err  error
	done chan struct{} // closed once res and err are set
}

// startAppender starts the workers that run queued appends.
func (s *Store) startAppender() {
	s.appends = make(chan *appendReq, appendWorkers*maxAppendBatch)
	for range appendWorkers {
		s.appenders.Go(s.appendWorker)
	}
}

// stopAppender stops the workers once the queue is empty. The caller holds
// s.mu exclusively (no AppendMessage is queueing).
func (s *Store) stopAppender() {
	close(s.appends)
	s.appenders.Wait()
}

// appendWorker runs batches of queued appends until the queue is closed.
func (s *Store) appendWorker() {
	for first := range s.appends {
		reqs := []*appendReq{first}
	fill:
		for len(reqs) < maxAppendBatch {
			select {
			case r, ok := <-s.appends:
				if !ok {
					break fill
				}
				reqs = append(reqs, r)
			default:
				break fill
			}
		}
		s.runAppends(reqs)
	}
}

// runAppends appends the messages of reqs whose callers still wait, in one
// batch, and answers every request.
func (s *Store) runAppends(reqs []*appendReq) {
	var live []*appendReq
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	res, found, err := s.appendBatch(live)
	if err != nil && len(live) > 1 && !unavailable(err) && !errors.Is(err, natter.ErrStoreUnavailable) {
		// One statement failed and took the others' with it (nothing
		// committed): each alone, so that only its caller hears of it.
		for _, r := range live {
			s.runAppends([]*appendReq{r})
		}
		return
	}
	for i, r := range live {
		switch {
		case err != nil:
			r.err = err
		case found[i] != nil:
			r.err = found[i]
		default:
			r.res = res[i]
		}
		close(r.done)
	}
}
