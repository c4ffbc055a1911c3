package session

import (
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/natterim/natter/wire"
)

// recConn records WriteFrames calls; it blocks writes while gate is held.
type recConn struct {
	mu      sync.Mutex
	batches [][][]byte
	gate    sync.Mutex
	fail    error
}

func (c *recConn) ReadFrame() (wire.Frame, error)  { select {} }
func (c *recConn) SetReadDeadline(time.Time) error { return nil }
func (c *recConn) Close() error                    { return nil }
func (c *recConn) RemoteAddr() net.Addr            { return &net.TCPAddr{} }
func (c *recConn) Transport() string               { return "test" }
func (c *recConn) WriteFrames(frames [][]byte, _ time.Time) error {
	c.gate.Lock()
	defer c.gate.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := make([][]byte, len(frames))
	copy(cp, frames)
	c.batches = append(c.batches, cp)
	return c.fail
}

func (c *recConn) frames() (n int, batches int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.batches {
		n += len(b)
	}
	return n, len(c.batches)
}

func TestWriterBatchesWhatIsQueued(t *testing.T) {
	c := &recConn{}
	w := NewWriter(c, 1<<20, time.Second)
	c.gate.Lock() // hold the first write so the rest queue up
	done := make(chan error)
	go func() { done <- w.Run() }()
	w.Push([]byte("first"))
	time.Sleep(20 * time.Millisecond) // Run is now blocked writing "first"
	for range 100 {
		if err := w.Push([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	c.gate.Unlock()
	w.Finish([]byte("bye"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	n, batches := c.frames()
	if n != 102 {
		t.Fatalf("%d frames written, want 102", n)
	}
	if batches > 3 {
		t.Fatalf("%d writes for 102 frames: queued frames were not batched", batches)
	}
	if last := c.batches[len(c.batches)-1]; string(last[len(last)-1]) != "bye" {
		t.Fatalf("Finish's frame is not last")
	}
}

func TestWriterOverflow(t *testing.T) {
	c := &recConn{}
	w := NewWriter(c, 100, time.Second)
	c.gate.Lock()
	defer c.gate.Unlock()
	go w.Run()
	w.Push(make([]byte, 10))
	time.Sleep(20 * time.Millisecond) // that one is being written
	for i := range 10 {
		if err := w.Push(make([]byte, 10)); err != nil {
			t.Fatalf("push %d within the bound: %v", i, err)
		}
	}
	if err := w.Push(make([]byte, 10)); !errors.Is(err, ErrOverflow) {
		t.Fatalf("push past the bound: %v, want ErrOverflow", err)
	}
	if !errors.Is(w.Err(), ErrOverflow) {
		t.Fatalf("Err() = %v", w.Err())
	}
	if err := w.Push([]byte("later")); !errors.Is(err, ErrOverflow) {
		t.Fatalf("push after overflow: %v", err)
	}
}

func TestPushWaitWaitsForRoom(t *testing.T) {
	c := &recConn{}
	w := NewWriter(c, 100, time.Second)
	c.gate.Lock()
	go w.Run()
	w.Push(make([]byte, 10))
	time.Sleep(20 * time.Millisecond)
	for range 9 {
		w.Push(make([]byte, 10))
	}
	got := make(chan error)
	go func() { got <- w.PushWait(make([]byte, 50), 5*time.Second) }()
	select {
	case err := <-got:
		t.Fatalf("PushWait returned %v before there was room", err)
	case <-time.After(50 * time.Millisecond):
	}
	c.gate.Unlock() // the writer drains
	if err := <-got; err != nil {
		t.Fatalf("PushWait after room was made: %v", err)
	}
}

func TestPushWaitTimesOutIntoOverflow(t *testing.T) {
	c := &recConn{}
	w := NewWriter(c, 100, time.Second)
	c.gate.Lock()
	defer c.gate.Unlock()
	go w.Run()
	w.Push(make([]byte, 10))
	time.Sleep(20 * time.Millisecond)
	for range 9 {
		w.Push(make([]byte, 10))
	}
	if err := w.PushWait(make([]byte, 50), 50*time.Millisecond); !errors.Is(err, ErrOverflow) {
		t.Fatalf("PushWait on a client that never reads: %v, want ErrOverflow", err)
	}
}

func TestWriterStopsOnWriteErrorAndAbort(t *testing.T) {
	c := &recConn{fail: errors.New("broken pipe")}
	w := NewWriter(c, 1<<10, time.Second)
	done := make(chan error)
	go func() { done <- w.Run() }()
	w.Push([]byte("a"))
	if err := <-done; err == nil || err.Error() != "broken pipe" {
		t.Fatalf("Run: %v", err)
	}
	if err := w.Push([]byte("b")); err == nil {
		t.Fatal("push after a write error succeeded")
	}

	w2 := NewWriter(&recConn{}, 1<<10, time.Second)
	done2 := make(chan error)
	go func() { done2 <- w2.Run() }()
	stop := errors.New("stop")
	w2.Abort(stop)
	if err := <-done2; !errors.Is(err, stop) {
		t.Fatalf("Run after Abort: %v", err)
	}
}

// TestWriterIdleHoldsNothing checks that a Writer runs a goroutine only
// while it has something to write, and keeps no queue once it is written.
func TestWriterIdleHoldsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &recConn{}
		w := NewWriter(c, 1<<20, time.Second)
		for round := range 3 {
			for range 5 {
				if err := w.Push([]byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			synctest.Wait() // the writing goroutine is done, or blocked
			if n, _ := c.frames(); n != 5*(round+1) {
				t.Fatalf("round %d: %d frames written", round, n)
			}
			w.mu.Lock()
			writing, q, spare := w.writing, w.q, w.spare
			w.mu.Unlock()
			if writing || q != nil || spare != nil {
				t.Fatalf("round %d, idle: writing %v, queue %v, spare %v", round, writing, q, spare)
			}
		}
		w.Finish(nil)
		<-w.Done()
		if err := w.Run(); err != nil {
			t.Fatal(err)
		}
	})
}
