package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// The trim's cost on the disk, and what it saves. Run with a fixed count,
// for example:
//
//	go test ./internal/sqlite -run '^$' -bench 'Trim|StoreSize' -benchtime 20000x
//
// wal-B/msg is what the WAL grew by per message (checkpoints are held off
// for the benchmark, so every page a commit writes lands in the WAL once;
// a later checkpoint writes each changed page to the database file again,
// once however many commits changed it). io-B/msg is the process's write
// bytes (/proc/self/io) per message, fsyncs' data included.

const benchUsers = 100

// benchStore opens a store in a fresh folder with checkpoints held off and
// benchUsers users with one device each.
func benchStore(b *testing.B) (*DB, string) {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "natter.db")
	db, err := Open(ctx, path, Options{CheckpointInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	for i := range benchUsers {
		u := benchUser(i)
		if err := db.CreateUser(ctx, u, "hash", time.Now()); err != nil {
			b.Fatal(err)
		}
		if _, err := db.TouchDevice(ctx, u, "d", time.Now(), 0); err != nil {
			b.Fatal(err)
		}
	}
	return db, path
}

func benchUser(i int) natter.UserID { return natter.UserID(fmt.Sprintf("u%03d", i%benchUsers)) }

// appendBench appends n messages (64-byte bodies) between neighbouring
// users, from 16 goroutines so that they share commits as natterd's do,
// and returns the highest inbox seq of each user.
func appendBench(b *testing.B, db *DB, from, n int) map[natter.UserID]uint64 {
	return appendBodies(b, db, from, n, 64)
}

// appendBodies is appendBench with bodies of size bytes.
func appendBodies(b *testing.B, db *DB, from, n, size int) map[natter.UserID]uint64 {
	b.Helper()
	ctx := context.Background()
	type res struct {
		to, fr         natter.UserID
		toSeq, fromSeq uint64
		err            error
	}
	out := make(chan res, 64)
	next := make(chan int)
	for range 16 {
		go func() {
			for i := range next {
				a, err := db.AppendMessage(ctx, natter.Message{
					ID: natter.MessageID(fmt.Sprintf("m%09d", i)), From: benchUser(i), FromDevice: "d", To: benchUser(i + 1),
					Body: make([]byte, size), SentAt: time.Now(),
				})
				out <- res{benchUser(i + 1), benchUser(i), a.ToSeq, a.FromSeq, err}
			}
		}()
	}
	go func() {
		for i := from; i < from+n; i++ {
			next <- i
		}
		close(next)
	}()
	high := map[natter.UserID]uint64{}
	for range n {
		r := <-out
		if r.err != nil {
			b.Fatal(r.err)
		}
		high[r.to], high[r.fr] = max(high[r.to], r.toSeq), max(high[r.fr], r.fromSeq)
	}
	return high
}

// ackAll moves every user's one device to the end of its inbox.
func ackAll(b *testing.B, db *DB, high map[natter.UserID]uint64) {
	b.Helper()
	for u, s := range high {
		if err := db.AckInbox(context.Background(), u, "d", s); err != nil {
			b.Fatal(err)
		}
	}
}

// trimPass runs TrimInbox from "" to Done and returns the entries deleted.
func trimPass(b *testing.B, db *DB) int {
	b.Helper()
	n := 0
	for from := natter.UserID(""); ; {
		r, err := db.TrimInbox(context.Background(), from, time.Time{}, 256)
		if err != nil {
			b.Fatal(err)
		}
		n += r.Acked
		if r.Done {
			return n
		}
		from = r.Next
	}
}

// ioWritten returns the process's write_bytes from /proc/self/io (0 where
// there is none).
func ioWritten() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// BenchmarkTrim trims b.N messages (each an entry in two inboxes, then the
// body) that every device acknowledged, and reports the bytes written per
// message beside what appending them wrote.
func BenchmarkTrim(b *testing.B) {
	db, path := benchStore(b)
	defer db.Close()
	wal0, io0 := fileSize(path+"-wal"), ioWritten()
	high := appendBench(b, db, 0, b.N)
	wal1, io1 := fileSize(path+"-wal"), ioWritten()
	ackAll(b, db, high)
	wal2, io2 := fileSize(path+"-wal"), ioWritten()
	b.ResetTimer()
	n := trimPass(b, db)
	b.StopTimer()
	if n != 2*b.N {
		b.Fatalf("trimmed %d entries, want %d", n, 2*b.N)
	}
	wal3, io3 := fileSize(path+"-wal"), ioWritten()
	per := func(v int64) float64 { return float64(v) / float64(b.N) }
	b.ReportMetric(per(wal3-wal2), "trim-wal-B/msg")
	b.ReportMetric(per(io3-io2), "trim-io-B/msg")
	b.ReportMetric(per(wal1-wal0), "append-wal-B/msg")
	b.ReportMetric(per(io1-io0), "append-io-B/msg")
}

// BenchmarkStoreSize appends b.N messages in rounds of 1,000, every device
// acknowledging each round, with 64-byte bodies (natter-bench's texts) and
// 512-byte ones (a sealed message of a few lines). "kept" does nothing
// more; "trimmed" trims after each round (the rows stay, without bodies,
// for the idempotency of retries); "forgotten" also forgets what it
// trimmed, as ForgetTrimmed does once the retention has passed. It reports
// the database's pages in use per message at the end (the file does not
// shrink: trimmed pages are reused by later writes).
func BenchmarkStoreSize(b *testing.B) {
	for _, size := range []int{64, 512} {
		for _, mode := range []string{"kept", "trimmed", "forgotten"} {
			b.Run(fmt.Sprintf("%s/body=%d", mode, size), func(b *testing.B) {
				db, path := benchStore(b)
				defer db.Close()
				for i := 0; i < b.N; i += 1000 {
					ackAll(b, db, appendBodies(b, db, i, min(1000, b.N-i), size))
					if mode != "kept" {
						trimPass(b, db)
					}
					if mode == "forgotten" {
						for {
							n, err := db.ForgetTrimmed(context.Background(), time.Now(), 256)
							if err != nil {
								b.Fatal(err)
							}
							if n < 256 {
								break
							}
						}
					}
				}
				b.StopTimer()
				var pages, free, psize int64
				if err := db.rdb.QueryRow(`SELECT (SELECT page_count FROM pragma_page_count), (SELECT freelist_count FROM pragma_freelist_count), (SELECT page_size FROM pragma_page_size)`).Scan(&pages, &free, &psize); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64((pages-free)*psize)/float64(b.N), "used-B/msg")
				b.ReportMetric(float64(pages*psize)/float64(b.N), "file-B/msg")
				b.ReportMetric(float64(fileSize(path+"-wal"))/float64(b.N), "wal-B/msg")
			})
		}
	}
}
