//go:build js

package webapp

import (
	"encoding/base64"
	"fmt"
	"io"
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

// idbSink is a file being fetched, its chunks kept in IndexedDB ("kv"
// under ["chunk", file hash, index]) as they arrive, so that a fetch tried
// again, even after the page was reloaded, fetches only what is missing.
// Its methods are called from one goroutine at a time.
type idbSink struct {
	s    store
	sha  string
	size int64
	have map[int]bool
	// the chunk ReadAt read last, since hashing reads in small pieces
	cached    int
	cachedBuf []byte
}

func chunkKey(sha string, i int) []any { return []any{"chunk", sha, fmt.Sprintf("%08d", i)} }

// newIDBSink returns the sink of the file whose hash is sha, with the
// chunks kept by earlier fetches.
func newIDBSink(s store, sha string, size int64) (*idbSink, error) {
	es, err := s.rangeOf("kv", []any{"chunk", sha, ""}, []any{"chunk", sha, "\uffff"}, false, 0)
	if err != nil {
		return nil, err
	}
	k := &idbSink{s: s, sha: sha, size: size, have: map[int]bool{}, cached: -1}
	for _, e := range es {
		var i int
		if len(e.key) == 3 {
			if _, err := fmt.Sscanf(e.key[2], "%d", &i); err == nil {
				k.have[i] = true
			}
		}
	}
	return k, nil
}

func (k *idbSink) Has(i int) bool { return k.have[i] }

func (k *idbSink) Put(i int, p []byte) error {
	if err := k.s.write(op{store: "kv", key: chunkKey(k.sha, i), value: base64.StdEncoding.EncodeToString(p)}); err != nil {
		return err
	}
	k.have[i] = true
	return nil
}

func (k *idbSink) Checkpoint() error { return nil } // every Put is a transaction of its own

// chunk returns the plain bytes of chunk i.
func (k *idbSink) chunk(i int) ([]byte, error) {
	if k.cached == i {
		return k.cachedBuf, nil
	}
	v, ok, err := k.s.get("kv", chunkKey(k.sha, i)...)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("chunk %d of the file is not kept", i)
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, err
	}
	k.cached, k.cachedBuf = i, b
	return b, nil
}

func (k *idbSink) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		if off >= k.size {
			return n, io.EOF
		}
		i := int(off / wire.ChunkSize)
		b, err := k.chunk(i)
		if err != nil {
			return n, err
		}
		at := off - int64(i)*wire.ChunkSize
		if at >= int64(len(b)) {
			return n, io.ErrUnexpectedEOF
		}
		c := copy(p[n:], b[at:])
		n += c
		off += int64(c)
	}
	return n, nil
}

// blob returns the whole file as a Blob of type typ.
func (k *idbSink) blob(typ string) (js.Value, error) {
	var parts []any
	for i := 0; int64(i)*wire.ChunkSize < k.size; i++ {
		b, err := k.chunk(i)
		if err != nil {
			return js.Undefined(), err
		}
		u8 := js.Global().Get("Uint8Array").New(len(b))
		js.CopyBytesToJS(u8, b)
		parts = append(parts, u8)
	}
	opts := js.Global().Get("Object").New()
	opts.Set("type", typ)
	return js.Global().Get("Blob").New(parts, opts), nil
}

// drop deletes the kept chunks.
func (k *idbSink) drop() error {
	var ops []op
	for i := range k.have {
		ops = append(ops, op{store: "kv", key: chunkKey(k.sha, i), del: true})
	}
	if len(ops) == 0 {
		return nil
	}
	return k.s.write(ops...)
}

// idbChunks keeps the sealed chunks contacts send peer to peer in
// IndexedDB ("kv" under ["p2p", hash]), so that a file sent straight to
// this browser can still be fetched after a reload (its chunks are not on
// natterd). A client.ChunkStore.
type idbChunks struct {
	s   store
	max int64 // the largest file taken
}

func (m idbChunks) Room(size int64) error {
	if size > m.max {
		return fmt.Errorf("over %d bytes for this browser", m.max)
	}
	return nil
}

func (m idbChunks) Has(h string) bool {
	_, ok, err := m.s.get("kv", "p2p", h)
	return err == nil && ok
}

func (m idbChunks) Get(h string) ([]byte, bool) {
	v, ok, err := m.s.get("kv", "p2p", h)
	if err != nil || !ok {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(v)
	return b, err == nil
}

func (m idbChunks) Put(h string, b []byte) error {
	return m.s.put("kv", base64.StdEncoding.EncodeToString(b), "p2p", h)
}

func (m idbChunks) Delete(h string) {
	m.s.write(op{store: "kv", key: []any{"p2p", h}, del: true})
}
