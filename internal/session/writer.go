package session

import (
	"errors"
	"sync"
	"time"
)

// ErrOverflow means a client did not drain its outbound queue fast enough.
var ErrOverflow = errors.New("outbound queue full: client too slow")

// Writer owns a Conn's writes. Frames are queued without blocking; a
// goroutine started by the first push into an empty queue writes
// everything queued at that moment in one batch, then the next batch, and
// ends when the queue is empty. So an idle connection has no goroutine and
// holds no queue: at tens of thousands of mostly idle connections, a
// goroutine's stack per connection was a fifth of natterd's memory
// (docs/performance.md, "Memory per idle connection").
//
// The queue is bounded in bytes: a push that would pass the bound fails
// with ErrOverflow and the connection is to be dropped.
type Writer struct {
	conn         Conn
	maxBytes     int
	writeTimeout time.Duration

	mu       sync.Mutex
	q        [][]byte
	spare    [][]byte // the last batch's slice, reused while a flush goes on
	bytes    int
	writing  bool // a flush goroutine is running
	closing  bool // no more pushes; done once the queue is written
	finished bool // done is closed
	err      error
	// Made only when waited on (most connections never wait on them):
	space chan struct{} // signalled after each batch is written (PushWait)
	done  chan struct{} // closed once finished (Done)
}

// NewWriter returns a Writer for conn that holds at most maxBytes of queued
// frames and gives each batch writeTimeout to go out.
func NewWriter(conn Conn, maxBytes int, writeTimeout time.Duration) *Writer {
	return &Writer{conn: conn, maxBytes: maxBytes, writeTimeout: writeTimeout}
}

// Push queues an encoded frame. It never blocks. It returns ErrOverflow if
// the queue is full, or the write error once writing has failed.
func (w *Writer) Push(frame []byte) error {
	w.mu.Lock()
	switch {
	case w.err != nil:
		w.mu.Unlock()
		return w.err
	case w.closing:
		w.mu.Unlock()
		return errClosing
	case w.bytes+len(frame) > w.maxBytes && w.bytes > 0:
		w.err = ErrOverflow
		w.idleLocked()
		w.mu.Unlock()
		return ErrOverflow
	}
	w.q = append(w.q, frame)
	w.bytes += len(frame)
	w.kickLocked()
	w.mu.Unlock()
	return nil
}

var errClosing = errors.New("connection closing")

// PushWait queues a frame like Push, but when the queue is too full to take
// it, waits up to timeout for the writer to make room instead of failing.
// It is for bulk sends the server itself paces (replaying a stored
// backlog), where a full queue means "wait", not "too slow"; only a client
// that reads nothing for timeout overflows.
func (w *Writer) PushWait(frame []byte, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		fits := w.bytes == 0 || w.bytes+len(frame) <= w.maxBytes
		stopped := w.err != nil || w.closing
		if w.space == nil {
			w.space = make(chan struct{}, 1)
		}
		space := w.space
		w.mu.Unlock()
		if fits || stopped {
			return w.Push(frame)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return w.Push(frame) // overflows
		}
		t := time.NewTimer(wait)
		select {
		case <-space:
		case <-w.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// Finish queues last (if not nil) as the final frame; Done is closed once
// everything queued is written.
func (w *Writer) Finish(last []byte) {
	w.mu.Lock()
	if !w.closing && w.err == nil && last != nil {
		w.q = append(w.q, last)
		w.bytes += len(last)
	}
	w.closing = true
	w.kickLocked()
	w.mu.Unlock()
}

// Abort stops the Writer without writing what is queued (a batch being
// written is let finish or time out).
func (w *Writer) Abort(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.idleLocked()
	w.mu.Unlock()
}

// kickLocked starts a flush if there is something to write and none is
// running, or closes done if the Writer is finished with nothing left.
func (w *Writer) kickLocked() {
	switch {
	case w.writing:
	case len(w.q) > 0 && w.err == nil:
		w.writing = true
		go w.flush()
	default:
		w.idleLocked()
	}
}

// idleLocked, called with no flush running or by the flush that ends,
// drops the queue's memory and closes done if the Writer has stopped.
func (w *Writer) idleLocked() {
	if w.writing {
		return // the flush sees w.err or w.closing when its batch is out
	}
	if w.err != nil {
		clear(w.q)
		w.q, w.bytes = nil, 0
	}
	if len(w.q) == 0 {
		w.q, w.spare = nil, nil
	}
	if (w.err != nil || w.closing && len(w.q) == 0) && !w.finished {
		w.finished = true
		if w.done != nil {
			close(w.done)
		}
	}
}

// flush writes batches until the queue is empty or writing fails.
func (w *Writer) flush() {
	for {
		w.mu.Lock()
		batch := w.q
		if w.err != nil || len(batch) == 0 {
			w.writing = false
			w.idleLocked()
			w.mu.Unlock()
			return
		}
		w.q, w.spare = w.spare[:0], nil
		w.bytes = 0
		w.mu.Unlock()
		err := w.conn.WriteFrames(batch, time.Now().Add(w.writeTimeout))
		clear(batch)
		w.mu.Lock()
		if cap(batch) <= 256 {
			w.spare = batch[:0]
		}
		if err != nil && w.err == nil {
			w.err = err
		}
		space := w.space
		w.mu.Unlock()
		if space != nil {
			select {
			case space <- struct{}{}:
			default:
			}
		}
	}
}

// Err returns the error that stopped the Writer (ErrOverflow, a write
// error, or Abort's error), or nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Done is closed once the Writer is finished: after Finish, when all that
// was queued is written; or at once after Abort, an overflow or a write
// error (once a batch being written is out or has failed).
func (w *Writer) Done() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done == nil {
		w.done = make(chan struct{})
		if w.finished {
			close(w.done)
		}
	}
	return w.done
}

// Run waits until the Writer is finished (see Done) and returns the error
// that stopped it, or nil after Finish. Writing does not need it: it is
// for callers that wait for the end in a goroutine of their own.
func (w *Writer) Run() error {
	<-w.Done()
	return w.Err()
}
