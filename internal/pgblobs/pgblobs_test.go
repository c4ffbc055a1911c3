package pgblobs_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/pgblobs"
	"github.com/natterim/natter/internal/pgtest"
	"github.com/natterim/natter/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func chunk(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	s := sha256.Sum256(b)
	return b, hex.EncodeToString(s[:])
}

// TestNodesShareChunks opens two stores on one schema (two nodes, started
// at once so that both create the table): a chunk put through one is had,
// read and deleted through the other.
func TestNodesShareChunks(t *testing.T) {
	url := pgtest.Schema(t)
	ctx := t.Context()
	var a, b *pgblobs.Store
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { a, errA = pgblobs.Open(ctx, url, 2) })
	wg.Go(func() { b, errB = pgblobs.Open(ctx, url, 2) })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("open: %v, %v", errA, errB)
	}
	defer a.Close()
	defer b.Close()

	data, hash := chunk(t, 256<<10)
	if ok, err := b.Has(hash); err != nil || ok {
		t.Fatalf("Has before Put: %v, %v", ok, err)
	}
	if _, err := b.Get(ctx, hash); !errors.Is(err, natter.ErrNoSuchChunk) {
		t.Fatalf("Get before Put: %v, want ErrNoSuchChunk", err)
	}
	if err := a.Put(ctx, hash, data); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, hash, data); err != nil { // a second upload of the same chunk
		t.Fatalf("second Put: %v", err)
	}
	if ok, err := b.Has(hash); err != nil || !ok {
		t.Fatalf("Has through the other node: %v, %v", ok, err)
	}
	got, err := b.Get(ctx, hash)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get through the other node: %d bytes, %v", len(got), err)
	}
	if err := b.Delete(hash); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(hash); err != nil {
		t.Fatalf("deleting a missing chunk: %v", err)
	}
	if ok, err := a.Has(hash); err != nil || ok {
		t.Fatalf("Has after Delete: %v, %v", ok, err)
	}
}

// TestUnavailable: with the database unreachable, errors say so
// (natter.ErrStoreUnavailable), so that clients are told to retry.
func TestUnavailable(t *testing.T) {
	_, err := pgblobs.Open(t.Context(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", 1)
	if !errors.Is(err, natter.ErrStoreUnavailable) {
		t.Fatalf("open on a closed port: %v, want ErrStoreUnavailable", err)
	}
}
