//go:build js

package webapp

import (
	"errors"
	"io"
	"sync"
	"syscall/js"

	"github.com/natterim/natter/wire"
)

// jsFile reads a page's File (or Blob) as an io.ReaderAt, a slice at a
// time. Called from goroutines only.
type jsFile struct{ f js.Value }

func (r jsFile) ReadAt(p []byte, off int64) (int, error) {
	size := int64(r.f.Get("size").Float())
	if off >= size {
		return 0, io.EOF
	}
	end := min(size, off+int64(len(p)))
	buf, err := await(r.f.Call("slice", float64(off), float64(end)).Call("arrayBuffer"))
	if err != nil {
		return 0, err
	}
	n := js.CopyBytesToGo(p, js.Global().Get("Uint8Array").New(buf))
	if int64(n) < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// memSink is a file being fetched, in memory: kept by the App per file,
// so that a fetch tried again in this page resumes.
type memSink struct {
	buf  []byte
	have map[int]bool
}

func newMemSink(size int64) *memSink { return &memSink{buf: make([]byte, size), have: map[int]bool{}} }

func (m *memSink) Has(i int) bool { return m.have[i] }
func (m *memSink) Put(i int, p []byte) error {
	off := int64(i) * wire.ChunkSize
	if off+int64(len(p)) > int64(len(m.buf)) {
		return errors.New("chunk beyond the file's end")
	}
	copy(m.buf[off:], p)
	m.have[i] = true
	return nil
}
func (m *memSink) Checkpoint() error { return nil }
func (m *memSink) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.buf)) {
		return 0, io.EOF
	}
	n := copy(p, m.buf[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// memChunks keeps the chunks contacts send peer to peer in memory, up to
// a bound (client.ChunkStore): a browser tab's files are fetched while it
// is open.
type memChunks struct {
	mu    sync.Mutex
	max   int64
	used  int64
	store map[string][]byte
}

func newMemChunks(max int64) *memChunks { return &memChunks{max: max, store: map[string][]byte{}} }

func (m *memChunks) Room(size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used+size > m.max {
		return errors.New("not enough memory in this browser tab")
	}
	return nil
}

func (m *memChunks) Has(h string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.store[h]
	return ok
}

func (m *memChunks) Get(h string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.store[h]
	return b, ok
}

func (m *memChunks) Put(h string, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.store[h]; !ok {
		if m.used+int64(len(b)) > m.max {
			return errors.New("not enough memory in this browser tab")
		}
		m.store[h] = b
		m.used += int64(len(b))
	}
	return nil
}

func (m *memChunks) Delete(h string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.used -= int64(len(m.store[h]))
	delete(m.store, h)
}
