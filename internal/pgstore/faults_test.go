package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/natterim/natter"
)

// terminate ends every PostgreSQL backend whose application_name is app
// (the connections of the stores of one test: newSchema names them after
// the schema) and waits until they are gone. It returns how many it ended.
func terminate(t *testing.T, app string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), testURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	var n int
	// With a timeout, pg_terminate_backend waits for the backend to exit.
	err = conn.QueryRow(t.Context(),
		`SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000))
		 FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`, app).Scan(&n)
	if err != nil {
		t.Fatalf("terminate backends: %v", err)
	}
	return n
}

// TestConnectionsTerminated ends the store's PostgreSQL connections
// (pg_terminate_backend, as an operator or a failover does) while writers
// append messages, then again while it is idle. A write in flight may fail,
// but only with natter.ErrStoreUnavailable; the store must recover by
// itself (the pool opens new connections, and a write whose connection was
// lost before COMMIT is tried again), so every write after the cut
// succeeds, and the inbox holds every acknowledged message, numbered 1..n.
func TestConnectionsTerminated(t *testing.T) {
	t.Parallel()
	cfg, schema := newSchema(t)
	s := openStore(t, cfg, Options{MaxConns: 4})
	ctx := t.Context()
	for i, u := range []natter.UserID{"alice", "bob"} {
		if err := s.CreateUser(ctx, u, "hash", at(i)); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu       sync.Mutex
		acked    = map[natter.MessageID]bool{}
		failed   int
		n        atomic.Int64
		wg       sync.WaitGroup
		stop     = make(chan struct{})
		progress = make(chan struct{}, 1)
	)
	send := func(id string) error {
		_, err := s.AppendMessage(ctx, natter.Message{ID: natter.MessageID(id), From: "alice", FromDevice: "d", To: "bob",
			Body: []byte(id), SentAt: at(0)})
		return err
	}
	for g := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("g%d-%d", g, i)
				err := send(id)
				mu.Lock()
				if err == nil {
					acked[natter.MessageID(id)] = true
				} else {
					failed++
					if !errors.Is(err, natter.ErrStoreUnavailable) {
						t.Errorf("a write cut short failed with %v, want one wrapping %v", err, natter.ErrStoreUnavailable)
					}
				}
				mu.Unlock()
				n.Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
	}
	waitWrites := func(k int64) {
		for target := n.Load() + k; n.Load() < target; {
			<-progress
		}
	}
	waitWrites(30)
	if k := terminate(t, schema); k == 0 {
		t.Fatal("no backend of the store to terminate")
	}
	waitWrites(60) // the writers go on after the cut
	close(stop)
	wg.Wait()

	// Idle now: every pooled connection is dead, and the next writes and
	// reads must find live ones by themselves.
	terminate(t, schema)
	for i := range 10 {
		id := fmt.Sprintf("after-%d", i)
		if err := send(id); err != nil {
			t.Fatalf("write after the connections were cut: %v", err)
		}
		acked[natter.MessageID(id)] = true
	}
	terminate(t, schema)
	got, err := s.Inbox(ctx, "bob", 0, len(acked)+failed+10)
	if err != nil {
		t.Fatalf("read after the connections were cut: %v", err)
	}
	stored := map[natter.MessageID]bool{}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("inbox entry %d has sequence number %d, want %d", i, e.Seq, i+1)
		}
		stored[e.Message.ID] = true
	}
	for id := range acked {
		if !stored[id] {
			t.Errorf("acknowledged message %s is not in the inbox", id)
		}
	}
	t.Logf("%d writes acknowledged, %d failed (unavailable), %d stored", len(acked), failed, len(got))
}

// proxy forwards TCP connections to a PostgreSQL server, and can stand for
// that server going down (refusing connections, cutting the open ones) and
// coming back on the same address.
type proxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// newProxy starts a proxy to target on a free port of 127.0.0.1.
func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	p.up()
	t.Cleanup(p.down)
	return p
}

// up listens (again) on the proxy's address.
func (p *proxy) up() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, s) {
				return
			}
			for _, pair := range [][2]net.Conn{{c, s}, {s, c}} {
				p.wg.Go(func() {
					io.Copy(pair[0], pair[1])
					pair[0].Close()
					pair[1].Close()
				})
			}
		}
	})
}

// track records the connections c and s of one forwarded connection,
// unless the proxy is down (then it closes them and reports false).
func (p *proxy) track(c, s net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		c.Close()
		s.Close()
		return false
	}
	p.conns[c], p.conns[s] = true, true
	return true
}

// down stops listening and cuts every forwarded connection.
func (p *proxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
}

// TestDatabaseDown runs a store through a proxy that goes down and comes
// back, as the database server does when it restarts: while it is down
// every operation fails with natter.ErrStoreUnavailable (so that sends are
// refused with "unavailable", not lost), and once it is back the store
// works again without being reopened. Open also says unavailable.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	cfg, _ := newSchema(t)
	target := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
	p := newProxy(t, target)
	host, port, _ := net.SplitHostPort(p.addr)
	portN, _ := strconv.Atoi(port)
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = host, uint16(portN)
	cfg.ConnConfig.Fallbacks = nil
	s := openStore(t, cfg, Options{MaxConns: 4})
	ctx := t.Context()
	for i, u := range []natter.UserID{"alice", "bob"} {
		if err := s.CreateUser(ctx, u, "hash", at(i)); err != nil {
			t.Fatal(err)
		}
	}
	msg := func(id string) natter.Message {
		return natter.Message{ID: natter.MessageID(id), From: "alice", FromDevice: "d", To: "bob", Body: []byte(id), SentAt: at(1)}
	}
	if _, err := s.AppendMessage(ctx, msg("before")); err != nil {
		t.Fatal(err)
	}

	p.down()
	for _, tt := range []struct {
		name string
		op   func() error
	}{
		{"AppendMessage", func() error { _, err := s.AppendMessage(ctx, msg("while down")); return err }},
		{"CreateUser", func() error { return s.CreateUser(ctx, "carol", "hash", at(2)) }},
		{"Inbox", func() error { _, err := s.Inbox(ctx, "bob", 0, 10); return err }},
		{"UserKeys", func() error { _, err := s.UserKeys(ctx, "bob", nil); return err }},
		{"Open", func() error {
			s, err := OpenConfig(ctx, cfg.Copy(), Options{MaxConns: 1})
			if err == nil {
				s.Close()
			}
			return err
		}},
	} {
		if err := tt.op(); !errors.Is(err, natter.ErrStoreUnavailable) {
			t.Errorf("%s while the database is down: %v, want an error wrapping %v", tt.name, err, natter.ErrStoreUnavailable)
		}
	}

	p.up()
	a, err := s.AppendMessage(ctx, msg("after"))
	if err != nil {
		t.Fatalf("AppendMessage once the database is back: %v", err)
	}
	if a.ToSeq != 2 || a.Message.ConvSeq != 2 {
		t.Errorf("the message after is at inbox %d, conversation %d; want 2 and 2 (nothing stored while down)", a.ToSeq, a.Message.ConvSeq)
	}
}

// TestLostBeforeCommit cuts a write's connection in the middle of its
// transaction (the write ends its own backend, as pg_terminate_backend from
// an operator would): the write never committed, so run tries it again on
// another connection and it succeeds, once. A read is tried again the same
// way.
func TestLostBeforeCommit(t *testing.T) {
	t.Parallel()
	cfg, _ := newSchema(t)
	s := openStore(t, cfg, Options{MaxConns: 2})
	ctx := t.Context()
	for _, tt := range []struct {
		name string
		txo  *pgx.TxOptions
	}{
		{"write", &writeTx},
		{"read", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tries := 0
			err := s.run(ctx, "cut short", tt.txo, func(ctx context.Context, q querier) error {
				tries++
				if tt.txo != nil {
					if _, err := q.Exec(ctx, `INSERT INTO users (name, password_hash) VALUES ($1, 'h')`, "user-"+tt.name); err != nil {
						return err
					}
				}
				if tries == 1 {
					_, err := q.Exec(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
					return err
				}
				return nil
			})
			if err != nil || tries != 2 {
				t.Fatalf("run = %v after %d tries, want success on the second", err, tries)
			}
		})
	}
	if ok, err := s.UserExists(ctx, "user-write"); err != nil || !ok {
		t.Fatalf("UserExists(user-write) = %v, %v; want the second try committed", ok, err)
	}
}
