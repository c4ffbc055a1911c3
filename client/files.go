package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/natterim/natter"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// A file travels as sealed chunks on natterd's store (docs/files.md) and a
// message whose sealed body is the file's manifest: its name, size, type,
// content hash, key and chunks. Only the devices that can open the message
// can open the chunks.

// fileMagic starts the plaintext of a message that carries a file.
const fileMagic = "\x00natter-file-v1\n"

// FileInfo is a file a message carries.
type FileInfo struct {
	Name   string   `json:"name"`
	Size   int64    `json:"size"`
	Type   string   `json:"type,omitempty"` // MIME type guessed from the name
	SHA256 string   `json:"sha256"`         // of the whole plaintext file
	Key    []byte   `json:"key"`
	Chunks []string `json:"chunks"` // hashes of the sealed chunks, in order
}

// Progress reports a transfer's progress: done of total bytes.
type Progress func(done, total int64)

func fileBody(f *FileInfo) ([]byte, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	return append([]byte(fileMagic), b...), nil
}

// FileOf returns the file an opened message body carries, if it carries
// one (MessageEvent.File is already set; this is for InboxEvent messages).
func FileOf(body []byte) (*FileInfo, bool) { return parseFile(body) }

// parseFile returns the file a message body carries, if it is one.
func parseFile(body []byte) (*FileInfo, bool) {
	if !bytes.HasPrefix(body, []byte(fileMagic)) {
		return nil, false
	}
	var f FileInfo
	if err := json.Unmarshal(body[len(fileMagic):], &f); err != nil || f.Size < 0 ||
		int64(len(f.Chunks)) != chunksFor(f.Size) || len(f.Key) != 32 || !isHash(f.SHA256) {
		return nil, false
	}
	for _, h := range f.Chunks {
		if !isHash(h) {
			return nil, false
		}
	}
	return &f, true
}

// isHash reports whether s is a lowercase hex SHA-256.
func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

func chunksFor(size int64) int64 {
	if size == 0 {
		return 0
	}
	return (size + wire.ChunkSize - 1) / wire.ChunkSize
}

// SendFile sends the file at path to the user to: it seals the file in
// chunks, uploads those natterd does not hold yet (so a SendFile repeated
// after a failure, even in another process, resumes where the last one
// stopped), and then sends a message carrying the file. A dropped
// connection is waited out and the upload goes on from the chunk in
// flight. progress, if set, is called after every chunk.
func (c *Client) SendFile(ctx context.Context, to natter.UserID, path string, progress Progress) (SendResult, *FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return SendResult{}, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return SendResult{}, nil, err
	}
	if !st.Mode().IsRegular() {
		return SendResult{}, nil, fmt.Errorf("send file: %s is not a regular file", path)
	}
	name := filepath.Base(path)
	return c.SendFileFrom(ctx, to, name, mime.TypeByExtension(filepath.Ext(name)), f, st.Size(), progress)
}

// SendFileFrom is SendFile for a file that is not on disk (a browser's
// File, say): size bytes read from r, sent under name with the MIME type
// typ (may be empty). r is read twice: once to hash it, then chunk by
// chunk as they are sealed.
func (c *Client) SendFileFrom(ctx context.Context, to natter.UserID, name, typ string, r io.ReaderAt, size int64, progress Progress) (SendResult, *FileInfo, error) {
	kr := c.Keyring()
	if kr == nil {
		return SendResult{}, nil, ErrNotLoggedIn
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		return SendResult{}, nil, fmt.Errorf("send file: read %s: %w", name, err)
	}
	sum := h.Sum(nil)
	key, err := kr.FileKey(sum)
	if err != nil {
		return SendResult{}, nil, err
	}
	info := &FileInfo{Name: name, Size: size, Type: typ, SHA256: hex.EncodeToString(sum), Key: key}
	path := name
	f := r
	n := int(chunksFor(size))
	sealedAt := func(i int) ([]byte, error) {
		buf := make([]byte, chunkLen(size, i))
		if _, err := f.ReadAt(buf, int64(i)*wire.ChunkSize); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("send file: read %s: %w", path, err)
		}
		return seal.SealChunk(key, i, n, buf)
	}
	info.Chunks = make([]string, n) // filled by the offer's pass or by the upload
	var mu sync.Mutex
	delivered := make([]bool, n)
	var done int64
	deliver := func(i int) {
		mu.Lock()
		defer mu.Unlock()
		if delivered[i] {
			return
		}
		delivered[i] = true
		done += chunkLen(size, i)
		if progress != nil {
			progress(done, size)
		}
	}
	todo := make([]int, n)
	for i := range todo {
		todo[i] = i
	}
	if d := c.dr.Load(); d != nil && n > 0 && d.mayReach(to) {
		// Over a peer-to-peer channel if the peer's device takes it;
		// whatever did not get there goes through the server. The offer
		// names every chunk: one pass seals them all to learn their hashes.
		for i := range n {
			sc, err := sealedAt(i)
			if err != nil {
				return SendResult{}, nil, err
			}
			info.Chunks[i] = chunkHash(sc)
		}
		if todo, err = d.pushFile(ctx, to, info.Chunks, size, sealedAt, deliver); err != nil {
			return SendResult{}, nil, fmt.Errorf("send file: %w", err)
		}
	}
	var onServer []string
	if len(todo) > 0 {
		if onServer, err = c.uploadChunks(ctx, info.Chunks, todo, sealedAt, deliver); err != nil {
			return SendResult{}, nil, fmt.Errorf("send file: %w", err)
		}
	}
	if progress != nil && n == 0 {
		progress(0, 0)
	}
	body, err := fileBody(info)
	if err != nil {
		return SendResult{}, nil, err
	}
	// The message lists the chunks natterd holds, so that it lets the
	// recipient's devices fetch them; none if all went directly, and the
	// message may then go directly too.
	res, err := c.sendID(ctx, natter.NewMessageID(time.Now()), to, body, onServer)
	return res, info, err
}

// uploadChunks uploads the chunks todo (indexes into hashes) that natterd
// does not hold yet, FileInflight at a time, and returns their hashes in
// order. It seals each chunk once, filling in the hashes not known yet.
func (c *Client) uploadChunks(ctx context.Context, hashes []string, todo []int, sealedAt func(int) ([]byte, error), deliver func(int)) ([]string, error) {
	const batch = 64 // chunks sealed and checked with one HaveChunks
	var out []string
	for first := 0; first < len(todo); first += batch {
		idx := todo[first:min(first+batch, len(todo))]
		sealed := make([][]byte, len(idx))
		hs := make([]string, len(idx))
		for j, i := range idx {
			sc, err := sealedAt(i)
			if err != nil {
				return nil, err
			}
			sealed[j], hs[j] = sc, chunkHash(sc)
			hashes[i] = hs[j]
		}
		have, err := c.haveChunks(ctx, hs)
		if err != nil {
			return nil, err
		}
		err = parallel(ctx, FileInflight, len(idx), func(ctx context.Context, j int) error {
			if have[hs[j]] {
				return nil
			}
			if err := c.putChunk(ctx, hs[j], sealed[j]); err != nil {
				return fmt.Errorf("chunk %d of %d: %w", idx[j], len(hashes), err)
			}
			c.fstats.add(func(s *fileStats) { s.uploaded++ })
			return nil
		}, func(j int) { deliver(idx[j]) })
		if err != nil {
			return nil, err
		}
		out = append(out, hs...)
	}
	return out, nil
}

// chunkHash names a sealed chunk: the lowercase hex SHA-256 natterd and
// peers check it against.
func chunkHash(sealed []byte) string {
	sum := sha256.Sum256(sealed)
	return hex.EncodeToString(sum[:])
}

// FileInflight is how many chunks a transfer keeps in flight: after a drop,
// at most these are sent again.
const FileInflight = 4

// parallel runs do(ctx, 0..n-1) with at most k at a time, and then(i), in
// index order from the caller's goroutine, once do(i) succeeded. It stops
// at the first error (cancelling the others' ctx) and returns it.
func parallel(ctx context.Context, k, n int, do func(context.Context, int) error, then func(int)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := make([]chan error, n)
	for i := range res {
		res[i] = make(chan error, 1)
	}
	sem := make(chan struct{}, k)
	wg.Go(func() {
		for i := range n {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				res[i] <- do(ctx, i)
			})
		}
	})
	for i := range n {
		select {
		case err := <-res[i]:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		then(i)
	}
	return nil
}

// retry runs a request, waiting out dropped connections (the session
// resumes) and trying again.
func retry[T any](ctx context.Context, c *Client, f func() (*T, error)) (*T, error) {
	for {
		v, err := f()
		if !errors.Is(err, ErrConnLost) {
			return v, err
		}
		if err := c.waitSession(ctx); err != nil {
			return nil, err
		}
	}
}

func (c *Client) haveChunks(ctx context.Context, hashes []string) (map[string]bool, error) {
	v, err := retry(ctx, c, func() (*wire.Chunks, error) {
		return roundTrip[wire.Chunks](ctx, c, "have chunks", func(ref uint64) any {
			return &wire.HaveChunks{Ref: ref, Hashes: hashes}
		})
	})
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(v.Have))
	for _, h := range v.Have {
		have[h] = true
	}
	return have, nil
}

func (c *Client) putChunk(ctx context.Context, hash string, data []byte) error {
	_, err := retry(ctx, c, func() (*wire.OK, error) {
		return roundTrip[wire.OK](ctx, c, "put chunk", func(ref uint64) any {
			return &wire.PutChunk{Ref: ref, Hash: hash, Data: data}
		})
	})
	return err
}

func (c *Client) getChunk(ctx context.Context, hash string) ([]byte, error) {
	v, err := retry(ctx, c, func() (*wire.Chunk, error) {
		return roundTrip[wire.Chunk](ctx, c, "get chunk", func(ref uint64) any {
			return &wire.GetChunk{Ref: ref, Hash: hash}
		})
	})
	if err != nil {
		return nil, err
	}
	if chunkHash(v.Data) != hash {
		return nil, fmt.Errorf("chunk %s: the server sent other data", hash)
	}
	return v.Data, nil
}

// FetchFile downloads the file f (from a MessageEvent) into dir, under its
// name made safe (and made unique if taken), and returns its path. The
// partial download is kept in dir as a hidden .part file with a record of
// the chunks done, so a FetchFile repeated after a failure, even in another
// process, fetches only what is missing. The whole file is checked against
// the sender's hash before it gets its name.
func (c *Client) FetchFile(ctx context.Context, f *FileInfo, dir string, progress Progress) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	base := SafeName(f.Name)
	part := filepath.Join(dir, "."+base+"."+f.SHA256[:16]+".part")
	doneFile := part + ".done"
	out, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	defer out.Close()
	sink := &fileSink{out: out, doneFile: doneFile, done: map[int]bool{}}
	if b, err := os.ReadFile(doneFile); err == nil {
		var idx []int
		if json.Unmarshal(b, &idx) == nil {
			for _, i := range idx {
				sink.done[i] = true
			}
		}
	}
	if err := c.FetchFileTo(ctx, f, sink, progress); err != nil {
		if errors.Is(err, ErrFileMismatch) {
			os.Remove(part)
			os.Remove(doneFile)
		}
		return "", err
	}
	if err := out.Truncate(f.Size); err != nil { // a stale longer .part
		return "", err
	}
	final := uniquePath(dir, base)
	if err := os.Rename(part, final); err != nil {
		return "", err
	}
	os.Remove(doneFile)
	return final, nil
}

// ErrFileMismatch: the file assembled from its chunks is not the one its
// sender hashed. FetchFileTo's sink should then be emptied.
var ErrFileMismatch = errors.New("the assembled file does not match the sender's hash")

// ChunkSink is where FetchFileTo puts a file's chunks as it opens them, and
// what it remembers of them, so that a fetch repeated after a failure
// fetches only what is missing.
type ChunkSink interface {
	// Has reports whether chunk i is already kept.
	Has(i int) bool
	// Put keeps chunk i (plain bytes, at offset i×wire.ChunkSize of the
	// file). It is called from one goroutine at a time.
	Put(i int, plain []byte) error
	// Checkpoint is called every few chunks and when the fetch stops:
	// make what was put so far durable, if the sink is.
	Checkpoint() error
	// ReadAt reads the assembled file, to check it against its hash.
	ReadAt(p []byte, off int64) (int, error)
}

// FetchFileTo downloads the chunks of f that sink does not have (from
// this device's cache of what came peer to peer, else from natterd),
// opens them into sink, and checks the whole file against the sender's
// hash (ErrFileMismatch). progress, if set, is called after every chunk.
func (c *Client) FetchFileTo(ctx context.Context, f *FileInfo, sink ChunkSink, progress Progress) error {
	n := len(f.Chunks)
	var got int64
	var todo []int
	for i := range n {
		if sink.Has(i) {
			got += chunkLen(f.Size, i)
		} else {
			todo = append(todo, i)
		}
	}
	var mu sync.Mutex // sink, got
	err := parallel(ctx, FileInflight, len(todo), func(ctx context.Context, j int) error {
		i := todo[j]
		sc, ok := c.cachedChunk(f.Chunks[i]) // it came over a peer-to-peer channel
		if !ok {
			var err error
			var we *wire.Err
			if sc, err = c.getChunk(ctx, f.Chunks[i]); errors.As(err, &we) && we.Code == wire.CodeNoSuchChunk {
				return fmt.Errorf("chunk %d of %d: %w (a file sent peer to peer reaches only the device it was sent to)", i, n, err)
			} else if err != nil {
				return fmt.Errorf("chunk %d of %d: %w", i, n, err)
			}
		}
		p, err := seal.OpenChunk(f.Key, i, n, sc)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		return sink.Put(i, p)
	}, func(j int) {
		mu.Lock()
		defer mu.Unlock()
		got += chunkLen(f.Size, todo[j])
		if progress != nil {
			progress(got, f.Size)
		}
		if j%16 == 15 {
			_ = sink.Checkpoint() // a failure here only costs a re-fetch after a crash
		}
	})
	mu.Lock()
	cerr := sink.Checkpoint()
	mu.Unlock()
	if err != nil {
		return fmt.Errorf("fetch %s: %w", f.Name, err)
	}
	if cerr != nil {
		return fmt.Errorf("fetch %s: %w", f.Name, cerr)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(sink, 0, f.Size)); err != nil {
		return fmt.Errorf("fetch %s: %w", f.Name, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return fmt.Errorf("fetch %s: %w", f.Name, ErrFileMismatch)
	}
	c.dropCached(f.Chunks)
	return nil
}

// fileSink is FetchFile's ChunkSink: a .part file and, beside it, the
// list of chunks done.
type fileSink struct {
	out      *os.File
	doneFile string
	done     map[int]bool
	dirty    bool
}

func (s *fileSink) Has(i int) bool { return s.done[i] }

func (s *fileSink) Put(i int, p []byte) error {
	if _, err := s.out.WriteAt(p, int64(i)*wire.ChunkSize); err != nil {
		return err
	}
	s.done[i] = true
	s.dirty = true
	return nil
}

func (s *fileSink) ReadAt(p []byte, off int64) (int, error) { return s.out.ReadAt(p, off) }

func (s *fileSink) Checkpoint() error {
	if !s.dirty {
		return nil
	}
	if err := s.out.Sync(); err != nil {
		return err
	}
	idx := make([]int, 0, len(s.done))
	for i := range s.done {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	b, _ := json.Marshal(idx)
	tmp := s.doneFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.doneFile); err != nil {
		return err
	}
	s.dirty = false
	return nil
}

func chunkLen(size int64, i int) int64 {
	return min(wire.ChunkSize, size-int64(i)*wire.ChunkSize)
}

// uniquePath returns dir/name, or dir/"name (2).ext" and so on if taken.
func uniquePath(dir, name string) string {
	p := filepath.Join(dir, name)
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for i := 2; ; i++ {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			return p
		}
		p = filepath.Join(dir, fmt.Sprintf("%s (%d)%s", stem, i, ext))
	}
}

// SafeName makes a file name from a sender safe to create: no directories,
// no control characters, not hidden, not empty, at most 200 bytes.
func SafeName(name string) string {
	name = strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == '\\' || r == 0:
			return '_'
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, name)
	name = strings.TrimLeft(strings.TrimSpace(name), ".")
	for len(name) > 200 {
		_, n := lastRune(name)
		name = name[:len(name)-n]
	}
	if name == "" {
		name = "file"
	}
	return name
}

func lastRune(s string) (rune, int) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i]&0xC0 != 0x80 {
			return []rune(s[i:])[0], len(s) - i
		}
	}
	return 0, 1
}
