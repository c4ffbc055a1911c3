package session

import (
	"errors"
	"sync"
	"time"
)

// ErrOverflow means a client did not drain its outbound queue fast enough.
var ErrOverflow = errors.New("outbound queue full: client too slow")

// Writer owns a Conn's writes. Frames are queued without blocking; one
// goroutine (Run) drains the queue, writing everything queued at that moment
// in one batch. The queue is bounded in bytes: a push that would pass the
// bound fails with ErrOverflow and the connection is to be dropped.
type Writer struct {
	conn         Conn
	maxBytes     int
	writeTimeout time.Duration

	mu      sync.Mutex
	q       [][]byte
	spare   [][]byte
	bytes   int
	closing bool // no more pushes; Run exits once the queue is written
	err     error
	wake    chan struct{}
	space   chan struct{} // signalled after each batch is written
	done    chan struct{}
}

// NewWriter returns a Writer for conn that holds at most maxBytes of queued
// frames and gives each batch writeTimeout to go out.
func NewWriter(conn Conn, maxBytes int, writeTimeout time.Duration) *Writer {
	return &Writer{conn: conn, maxBytes: maxBytes, writeTimeout: writeTimeout,
		wake: make(chan struct{}, 1), space: make(chan struct{}, 1), done: make(chan struct{})}
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
		w.mu.Unlock()
		w.signal()
		return ErrOverflow
	}
	w.q = append(w.q, frame)
	w.bytes += len(frame)
	w.mu.Unlock()
	w.signal()
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
		case <-w.space:
		case <-w.done:
		case <-t.C:
		}
		t.Stop()
	}
}

// Finish queues last (if not nil) as the final frame and makes Run return
// once everything queued is written.
func (w *Writer) Finish(last []byte) {
	w.mu.Lock()
	if !w.closing && w.err == nil && last != nil {
		w.q = append(w.q, last)
		w.bytes += len(last)
	}
	w.closing = true
	w.mu.Unlock()
	w.signal()
}

// Abort makes Run return without writing what is queued.
func (w *Writer) Abort(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.signal()
}

func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Err returns the error that stopped the Writer (ErrOverflow, a write
// error, or Abort's error), or nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Done is closed when Run has returned.
func (w *Writer) Done() <-chan struct{} { return w.done }

// Run writes queued frames until Finish's frames are out, Abort, an
// overflow, or a write error, which it returns (nil after Finish).
func (w *Writer) Run() error {
	defer close(w.done)
	for {
		<-w.wake
		for {
			w.mu.Lock()
			if w.err != nil {
				err := w.err
				w.mu.Unlock()
				return err
			}
			batch := w.q
			if len(batch) == 0 {
				closing := w.closing
				w.mu.Unlock()
				if closing {
					return nil
				}
				break
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
			w.mu.Unlock()
			select {
			case w.space <- struct{}{}:
			default:
			}
		}
	}
}
