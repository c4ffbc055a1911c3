package session

import (
	"bytes"
	"encoding/binary"
	"net"
	"syscall"
	"testing"
)

// TestRecordConnStopsAtRecords checks that a RecordConn never hands out
// the start of the next record with the end of one: each Read returns at
// most the rest of a header or of a body.
func TestRecordConnStopsAtRecords(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bodies  []int
		bufSize int
	}{
		{"two records", []int{10, 300}, 4096},
		{"an empty body", []int{0, 7}, 4096},
		{"small reads", []int{100, 50}, 3},
		{"a large record", []int{16 << 10, 1}, 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var stream []byte
			var want [][2]int // record index, part: 0 header, 1 body
			for i, n := range tc.bodies {
				stream = append(stream, 23, 3, 3)
				stream = binary.BigEndian.AppendUint16(stream, uint16(n))
				stream = append(stream, bytes.Repeat([]byte{byte(i + 1)}, n)...)
				want = append(want, [2]int{i, 5}, [2]int{i, n})
			}
			go func() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					return
				}
				c.Write(stream)
				c.Close()
			}()
			nc, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			r := NewRecordConn(nc, nc.(syscall.Conn))
			buf := make([]byte, tc.bufSize)
			var got []byte
			for _, w := range want {
				part := 0
				for part < w[1] {
					n, err := r.Read(buf[:min(len(buf), 1<<20)])
					if err != nil {
						t.Fatalf("record %d: %v", w[0], err)
					}
					if part+n > w[1] {
						t.Fatalf("record %d: a read of %d bytes went past the part's %d", w[0], part+n, w[1])
					}
					part += n
					got = append(got, buf[:n]...)
				}
			}
			if !bytes.Equal(got, stream) {
				t.Fatal("bytes read differ from those sent")
			}
		})
	}
}
