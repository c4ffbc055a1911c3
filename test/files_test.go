package test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/server"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// sealedChunk is random bytes standing in for a sealed chunk of n bytes,
// and its hash.
func sealedChunk(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	s := sha256.Sum256(b)
	return b, hex.EncodeToString(s[:])
}

// blobPath is where natterd keeps the chunk hash under dataDir.
func blobPath(dataDir, hash string) string {
	return filepath.Join(dataDir, "blobs", hash[:2], hash[2:4], hash)
}

// blobFiles lists every file under dataDir/blobs (temporary ones included),
// relative to it.
func blobFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dataDir, "blobs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func putChunk(t *testing.T, r *raw, data []byte, hash string) error {
	t.Helper()
	_, err := r.try(wire.PutChunk{Hash: hash, Data: data}, wire.TOK)
	return err
}

func have(t *testing.T, r *raw, hashes ...string) []string {
	t.Helper()
	return r.call(wire.HaveChunks{Hashes: hashes}, wire.TChunks).(*wire.Chunks).Have
}

func wantCode(t *testing.T, what string, err error, code wire.Code) {
	t.Helper()
	if errCode(err) != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
}

// TestFileChunks: the whole server side of a file: upload, dedup, who may
// fetch what, and a message naming the chunks.
func TestFileChunks(t *testing.T) {
	in := servertest.Start(t)
	alice, bob, carol := signup(t, in, "alice"), signup(t, in, "bob"), signup(t, in, "carol")
	befriend(t, alice, bob)
	befriend(t, carol, bob)
	c1, h1 := sealedChunk(t, wire.MaxChunk) // the largest: fits in a default frame
	c2, h2 := sealedChunk(t, 1000)
	_, h3 := sealedChunk(t, 10)

	for _, c := range []struct {
		data []byte
		hash string
	}{{c1, h1}, {c2, h2}} {
		if err := putChunk(t, alice, c.data, c.hash); err != nil {
			t.Fatalf("PutChunk: %v", err)
		}
	}
	stored := metric(t, in, "natter_chunk_bytes_stored_total")
	if stored != float64(len(c1)+len(c2)) {
		t.Fatalf("bytes stored %v, want %d", stored, len(c1)+len(c2))
	}
	// Dedup: the same chunk again, by alice or by carol, writes nothing.
	if err := putChunk(t, alice, c1, h1); err != nil {
		t.Fatalf("second PutChunk: %v", err)
	}
	if err := putChunk(t, carol, c2, h2); err != nil {
		t.Fatalf("carol's PutChunk of alice's chunk: %v", err)
	}
	if got := metric(t, in, "natter_chunk_bytes_stored_total"); got != stored {
		t.Fatalf("bytes stored grew to %v on re-uploads", got)
	}
	if got := metric(t, in, "natter_chunk_dedup_total"); got != 2 {
		t.Fatalf("dedup hits %v, want 2", got)
	}
	if files := blobFiles(t, in.DataDir); len(files) != 2 {
		t.Fatalf("blob files %q, want one per distinct chunk", files)
	}

	if got := have(t, alice, h3, h2, h1); !equal(got, h2, h1) {
		t.Fatalf("alice HaveChunks = %.8q, want h2, h1", got)
	}
	if got := have(t, bob, h1, h2, h3); len(got) != 0 {
		t.Fatalf("bob HaveChunks before any message = %.8q", got)
	}
	_, err := bob.try(wire.GetChunk{Hash: h1}, wire.TChunk)
	wantCode(t, "bob fetching a chunk no message gave him", err, wire.CodeNoSuchChunk)

	// A message naming a chunk alice never uploaded is refused whole.
	_, err = alice.try(wire.Send{ID: natter.NewMessageID(time.Now()), To: "bob", Body: []byte("file"), Chunks: []string{h1, h3}}, wire.TSendAck)
	wantCode(t, "Send with a chunk never uploaded", err, wire.CodeNoSuchChunk)

	alice.call(wire.Send{ID: natter.NewMessageID(time.Now()), To: "bob", Body: []byte("file"), Chunks: []string{h1, h2}}, wire.TSendAck)
	for _, c := range []struct {
		data []byte
		hash string
	}{{c1, h1}, {c2, h2}} {
		got := bob.call(wire.GetChunk{Hash: c.hash}, wire.TChunk).(*wire.Chunk)
		if got.Hash != c.hash || !bytes.Equal(got.Data, c.data) {
			t.Fatalf("bob's GetChunk(%.8s): %d bytes, hash %.8s", c.hash, len(got.Data), got.Hash)
		}
	}
	if got := have(t, bob, h1, h2, h3); !equal(got, h1, h2) {
		t.Fatalf("bob HaveChunks after the message = %.8q", got)
	}
	// carol uploaded h2 herself, but h1 is not hers: the same answer as
	// for a chunk that does not exist.
	_, err = carol.try(wire.GetChunk{Hash: h1}, wire.TChunk)
	wantCode(t, "carol fetching alice's chunk", err, wire.CodeNoSuchChunk)
	_, err = carol.try(wire.GetChunk{Hash: h3}, wire.TChunk)
	wantCode(t, "carol fetching a chunk that does not exist", err, wire.CodeNoSuchChunk)
	carol.call(wire.GetChunk{Hash: h2}, wire.TChunk)

	// Having received a chunk is not having uploaded it.
	_, err = bob.try(wire.Send{ID: natter.NewMessageID(time.Now()), To: "carol", Chunks: []string{h1}}, wire.TSendAck)
	wantCode(t, "bob forwarding a chunk he did not upload", err, wire.CodeNoSuchChunk)
}

func equal(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// TestFileRefusals: bad hashes, too large, quota, file size; the
// connection survives each.
func TestFileRefusals(t *testing.T) {
	in := servertest.Start(t, func(c *server.Config) {
		c.UserQuota = 3000
		c.MaxFileSize = 2500
	})
	alice, bob := signup(t, in, "alice"), signup(t, in, "bob")
	befriend(t, alice, bob)
	c1, h1 := sealedChunk(t, 1000)
	c2, h2 := sealedChunk(t, 1000)
	c3, h3 := sealedChunk(t, 1000)
	c4, h4 := sealedChunk(t, 1000)
	big, bigHash := sealedChunk(t, wire.MaxChunk+1)

	tests := []struct {
		name string
		req  any
		want wire.Code
	}{
		{"WrongHash", wire.PutChunk{Hash: h2, Data: c1}, wire.CodeBadRequest},
		{"UpperCaseHash", wire.PutChunk{Hash: strings.ToUpper(h1), Data: c1}, wire.CodeBadRequest},
		{"NoHash", wire.PutChunk{Data: c1}, wire.CodeBadRequest},
		{"TooLarge", wire.PutChunk{Hash: bigHash, Data: big}, wire.CodeTooLarge},
		{"HaveTooMany", wire.HaveChunks{Hashes: make([]string, wire.MaxHashes+1)}, wire.CodeTooLarge},
		{"HaveBadHash", wire.HaveChunks{Hashes: []string{"../../etc/passwd"}}, wire.CodeBadRequest},
		{"GetBadHash", wire.GetChunk{Hash: "x"}, wire.CodeBadRequest},
		{"SendBadHash", wire.Send{ID: "m-bad", To: "bob", Chunks: []string{"nope"}}, wire.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := alice.try(tt.req, wire.TOK)
			wantCode(t, tt.name, err, tt.want)
			alice.call(wire.Ping{}, wire.TPong)
		})
	}
	if files := blobFiles(t, in.DataDir); len(files) != 0 {
		t.Fatalf("refused uploads left files: %q", files)
	}

	// Quota 3000: three chunks of 1000 fit, the fourth does not; a
	// re-upload of a stored one still answers OK.
	for _, c := range [][]byte{c1, c2, c3} {
		if err := putChunk(t, alice, c, sha(c)); err != nil {
			t.Fatalf("PutChunk under the quota: %v", err)
		}
	}
	err := putChunk(t, alice, c4, h4)
	wantCode(t, "PutChunk over the quota", err, wire.CodeQuota)
	if !strings.Contains(err.Error(), "quota of 3000 bytes") {
		t.Fatalf("quota message %q does not say the quota", err)
	}
	if _, statErr := os.Stat(blobPath(in.DataDir, h4)); !errors.Is(statErr, fs.ErrNotExist) {
		t.Fatalf("a chunk refused for quota is on disk: %v", statErr)
	}
	if err := putChunk(t, alice, c1, h1); err != nil {
		t.Fatalf("re-upload at the quota: %v", err)
	}
	// bob has a quota of his own.
	if err := putChunk(t, bob, c4, h4); err != nil {
		t.Fatalf("bob's PutChunk: %v", err)
	}

	// Max file size 2500: two chunks are a file, three are too large.
	_, err = alice.try(wire.Send{ID: natter.NewMessageID(time.Now()), To: "bob", Chunks: []string{h1, h2, h3}}, wire.TSendAck)
	wantCode(t, "Send over the max file size", err, wire.CodeQuota)
	alice.call(wire.Send{ID: natter.NewMessageID(time.Now()), To: "bob", Chunks: []string{h1, h2}}, wire.TSendAck)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestFileRetention: with a short retention the sweeper forgets chunks and
// deletes their files.
func TestFileRetention(t *testing.T) {
	in := servertest.Start(t, func(c *server.Config) {
		c.FileRetention = 300 * time.Millisecond
		c.FileSweepEvery = 100 * time.Millisecond
	})
	alice, bob := signup(t, in, "alice"), signup(t, in, "bob")
	befriend(t, alice, bob)
	c1, h1 := sealedChunk(t, 5000)
	if err := putChunk(t, alice, c1, h1); err != nil {
		t.Fatal(err)
	}
	alice.call(wire.Send{ID: natter.NewMessageID(time.Now()), To: "bob", Chunks: []string{h1}}, wire.TSendAck)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := os.Stat(blobPath(in.DataDir, h1))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("blob still there 10 s after a 300 ms retention: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := have(t, alice, h1); len(got) != 0 {
		t.Fatalf("alice HaveChunks after the retention = %.8q", got)
	}
	_, err := bob.try(wire.GetChunk{Hash: h1}, wire.TChunk)
	wantCode(t, "GetChunk after the retention", err, wire.CodeNoSuchChunk)
	if got := metric(t, in, "natter_chunks_expired_total"); got < 1 {
		t.Fatalf("natter_chunks_expired_total = %v", got)
	}
	// The message itself stays, and the chunk can be uploaded again.
	if err := putChunk(t, alice, c1, h1); err != nil {
		t.Fatal(err)
	}
}

// TestFileChunksSIGKILL kills natterd with SIGKILL while a client pipelines
// uploads, restarts it, and checks that every chunk acknowledged before the
// kill is there and intact, and that no blob file is partial.
func TestFileChunksSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills natterd")
	}
	dir := t.TempDir()
	p := startProc(t, dir, "127.0.0.1:0")
	alice := p.signup(t, "alice")
	const n = 300
	chunks := make([][]byte, n)
	hashes := make([]string, n)
	for i := range n {
		chunks[i], hashes[i] = sealedChunk(t, 64<<10)
	}
	frames := make([][]byte, n)
	for i := range n {
		frames[i], _ = wire.Encode(wire.PutChunk{Ref: uint64(i + 1), Hash: hashes[i], Data: chunks[i]})
	}
	acked := pipelineAndKill(t, p, alice, 1, frames)

	p = startProc(t, dir, p.addr)
	r := p.hello(t)
	r.call(wire.Login{User: "alice", Password: "password-alice", Device: alice.device}, wire.TAuthed)
	r.drainLogin()
	got := map[string]bool{}
	for _, h := range have(t, r, hashes...) {
		got[h] = true
	}
	for i := range acked {
		if !got[hashes[i]] {
			t.Errorf("chunk %d was acknowledged before the kill but HaveChunks does not report it", i)
			continue
		}
		c := r.call(wire.GetChunk{Hash: hashes[i]}, wire.TChunk).(*wire.Chunk)
		if !bytes.Equal(c.Data, chunks[i]) {
			t.Errorf("chunk %d comes back different", i)
		}
	}
	// No file is partial: each is named by its content's hash; and the
	// restart removed temporary files.
	for _, f := range blobFiles(t, dir) {
		if strings.HasPrefix(f, "tmp"+string(filepath.Separator)) {
			t.Errorf("temporary file left after the restart: %s", f)
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "blobs", f))
		if err != nil {
			t.Fatal(err)
		}
		if sha(b) != filepath.Base(f) {
			t.Errorf("blob %s holds %d bytes that do not match its name", f, len(b))
		}
	}
	// What HaveChunks does not report, a client uploads again: it works.
	for i := range n {
		if !got[hashes[i]] {
			if err := putChunk(t, r, chunks[i], hashes[i]); err != nil {
				t.Fatalf("re-upload after the restart: %v", err)
			}
			break
		}
	}
}

// TestFileChunksDiskFull: on a real full disk an upload gets unavailable
// and leaves no partial blob; once there is room it works. Needs root to
// mount a small tmpfs.
func TestFileChunksDiskFull(t *testing.T) {
	dir := smallDisk(t, "4m")
	data := filepath.Join(dir, "data")
	in := servertest.Start(t, func(c *server.Config) { c.DataDir = data })
	// The refused writes are logged as errors, as an operator must see them.
	in.Log().Expect("disk is full", "no space left on device")
	alice := signup(t, in, "alice")
	c0, h0 := sealedChunk(t, 1000)
	if err := putChunk(t, alice, c0, h0); err != nil {
		t.Fatal(err)
	}

	filler := fillDisk(t, dir)
	var code wire.Code
	var refused []string
	for i := 0; i < 50 && code == ""; i++ {
		c, h := sealedChunk(t, 200<<10)
		code = errCode(putChunk(t, alice, c, h))
		if code != "" {
			refused = append(refused, h)
		}
	}
	if code != wire.CodeUnavailable {
		t.Fatalf("PutChunk on a full disk: code %q, want %s", code, wire.CodeUnavailable)
	}
	for _, h := range refused {
		if _, err := os.Stat(blobPath(data, h)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("refused chunk %.8s is on disk: %v", h, err)
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(data, "blobs", "tmp")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if got := have(t, alice, refused...); len(got) != 0 {
		t.Fatalf("HaveChunks reports a chunk refused for a full disk: %.8q", got)
	}
	alice.call(wire.GetChunk{Hash: h0}, wire.TChunk)

	os.Remove(filler)
	c, h := sealedChunk(t, 200<<10)
	var ok bool
	for i := 0; i < 50 && !ok; i++ {
		ok = putChunk(t, alice, c, h) == nil
		if !ok {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !ok {
		t.Fatal("uploads did not recover once the disk had room")
	}
}
