package pgstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/natterim/natter"
)

// TestMigrateConcurrently starts several stores at once on one new schema,
// as nodes starting together on a new database do: every Open must
// succeed, each migration must be applied once, and the stores must work.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	cfg, _ := newSchema(t)
	files, err := migrationList()
	if err != nil {
		t.Fatal(err)
	}
	const nodes = 6
	stores := make([]*Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range nodes {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = OpenConfig(t.Context(), cfg.Copy(), Options{MaxConns: 2})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: Open: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	var versions []int
	err = stores[0].read(t.Context(), "read migrations", func(ctx context.Context, q querier) error {
		rows, err := q.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				return err
			}
			versions = append(versions, v)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != len(files) || versions[len(versions)-1] != len(files) {
		t.Fatalf("schema_migrations holds versions %v, want 1 to %d once each", versions, len(files))
	}
	for i, s := range stores {
		if err := s.CreateUser(t.Context(), natter.UserID(fmt.Sprintf("user%d", i)), "hash", at(i)); err != nil {
			t.Errorf("node %d: CreateUser: %v", i, err)
		}
	}
}

// TestNewerSchemaRefused opens a store on a schema that a newer natter
// migrated: Open must refuse it rather than run on tables it does not know.
func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	cfg, _ := newSchema(t)
	s := openStore(t, cfg, Options{MaxConns: 2})
	err := s.write(t.Context(), "pretend a newer natter", func(ctx context.Context, q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (1000, '1000_future.sql')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := OpenConfig(t.Context(), cfg.Copy(), Options{MaxConns: 2}); err == nil {
		s.Close()
		t.Fatal("Open of a schema at version 1000 succeeded")
	}
}

// TestNodes runs concurrent writes through two Stores on one schema, as two
// natterd nodes sharing a database do, and checks what must hold across
// nodes: every conversation's and every inbox's sequence numbers are 1..n
// with none missing or given twice, every acknowledged message is stored,
// a retried send on the other node is a duplicate, and each one-time prekey
// is handed out once.
func TestNodes(t *testing.T) {
	t.Parallel()
	cfg, _ := newSchema(t)
	nodes := []*Store{openStore(t, cfg, Options{MaxConns: 4}), openStore(t, cfg, Options{MaxConns: 4})}
	ctx := t.Context()
	users := []natter.UserID{"ann", "ben", "cat", "dan"}
	for i, u := range users {
		if err := nodes[i%2].CreateUser(ctx, u, "hash", at(i)); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("appends", func(t *testing.T) {
		const goroutines, perG = 16, 20
		type sent struct {
			m               natter.Message
			toSeq, fromSeq  uint64
			convSeq         uint64
			node, goroutine int
		}
		var (
			mu   sync.Mutex
			acks []sent
			wg   sync.WaitGroup
		)
		start := make(chan struct{})
		for g := range goroutines {
			from, to := users[g%len(users)], users[(g/len(users)+g+1)%len(users)]
			if from == to {
				to = users[(g+1)%len(users)]
			}
			node := g % 2
			wg.Go(func() {
				<-start
				for i := range perG {
					m := natter.Message{ID: natter.MessageID(fmt.Sprintf("g%d-%d", g, i)), From: from, FromDevice: "d", To: to,
						Body: []byte(fmt.Sprintf("%d/%d", g, i)), SentAt: at(i)}
					a, err := nodes[node].AppendMessage(ctx, m)
					if err != nil {
						t.Errorf("node %d: AppendMessage: %v", node, err)
						return
					}
					if a.Duplicate {
						t.Errorf("node %d: message %s taken for a duplicate", node, m.ID)
					}
					mu.Lock()
					acks = append(acks, sent{m: m, toSeq: a.ToSeq, fromSeq: a.FromSeq, convSeq: a.Message.ConvSeq, node: node, goroutine: g})
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		// Inboxes: 1..n, each acknowledged entry where it was acknowledged.
		inboxSeqs := map[natter.UserID]map[uint64]natter.MessageID{}
		convSeqs := map[[2]natter.UserID]map[uint64]natter.MessageID{}
		put := func(what string, m map[uint64]natter.MessageID, seq uint64, id natter.MessageID) {
			if other, ok := m[seq]; ok {
				t.Errorf("%s: sequence number %d given to %s and %s", what, seq, other, id)
			}
			m[seq] = id
		}
		for _, a := range acks {
			for _, u := range []natter.UserID{a.m.From, a.m.To} {
				if inboxSeqs[u] == nil {
					inboxSeqs[u] = map[uint64]natter.MessageID{}
				}
			}
			put("inbox of "+string(a.m.To), inboxSeqs[a.m.To], a.toSeq, a.m.ID)
			put("inbox of "+string(a.m.From), inboxSeqs[a.m.From], a.fromSeq, a.m.ID)
			x, y := pair(a.m.From, a.m.To)
			k := [2]natter.UserID{x, y}
			if convSeqs[k] == nil {
				convSeqs[k] = map[uint64]natter.MessageID{}
			}
			put(fmt.Sprintf("conversation %s–%s", x, y), convSeqs[k], a.convSeq, a.m.ID)
		}
		for u, seqs := range inboxSeqs {
			got, err := nodes[0].Inbox(ctx, u, 0, len(seqs)+10)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(seqs) {
				t.Errorf("inbox of %s holds %d entries, %d were acknowledged", u, len(got), len(seqs))
			}
			for i, e := range got {
				if e.Seq != uint64(i+1) {
					t.Fatalf("inbox of %s: entry %d has sequence number %d, want %d", u, i, e.Seq, i+1)
				}
				if e.Message == nil || seqs[e.Seq] != e.Message.ID {
					t.Errorf("inbox of %s: entry %d is %+v, want message %s", u, e.Seq, e, seqs[e.Seq])
				}
			}
		}
		for k, seqs := range convSeqs {
			got, err := nodes[1].Conversation(ctx, k[0], k[1], 0, len(seqs)+10)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(seqs) {
				t.Errorf("conversation %s–%s holds %d messages, %d were acknowledged", k[0], k[1], len(got), len(seqs))
			}
			for i, m := range got {
				if m.ConvSeq != uint64(i+1) || seqs[m.ConvSeq] != m.ID {
					t.Errorf("conversation %s–%s: message %d is %s at %d, want %s at %d", k[0], k[1], i, m.ID, m.ConvSeq, seqs[uint64(i+1)], i+1)
				}
			}
		}
		// A retry of an acknowledged send, through the other node.
		first := acks[0]
		a, err := nodes[1-first.node].AppendMessage(ctx, first.m)
		if err != nil || !a.Duplicate || a.ToSeq != first.toSeq || a.Message.ConvSeq != first.convSeq {
			t.Errorf("retry of %s on the other node = %+v, %v; want the first copy, as a duplicate", first.m.ID, a, err)
		}
	})

	t.Run("prekey claims", func(t *testing.T) {
		const prekeys, claimers = 60, 8
		if _, err := nodes[0].PutBundle(ctx, "ann", "phone", []byte("bundle")); err != nil {
			t.Fatal(err)
		}
		var pks [][]byte
		for i := range prekeys {
			pks = append(pks, []byte(fmt.Sprintf("prekey %02d", i)))
		}
		if _, err := nodes[1].AddPrekeys(ctx, "ann", "phone", pks); err != nil {
			t.Fatal(err)
		}
		var (
			mu      sync.Mutex
			claimed []string
			wg      sync.WaitGroup
		)
		start := make(chan struct{})
		for c := range claimers {
			wg.Go(func() {
				<-start
				for range prekeys/claimers + 2 {
					ks, err := nodes[c%2].UserKeys(ctx, "ann", []natter.DeviceID{"phone"})
					if err != nil {
						t.Errorf("claimer %d: UserKeys: %v", c, err)
						return
					}
					if len(ks.Devices) == 1 && ks.Devices[0].Prekey != nil {
						mu.Lock()
						claimed = append(claimed, string(ks.Devices[0].Prekey))
						mu.Unlock()
					}
				}
			})
		}
		close(start)
		wg.Wait()
		slices.Sort(claimed)
		if len(claimed) != prekeys || len(slices.Compact(slices.Clone(claimed))) != prekeys {
			t.Fatalf("%d prekeys claimed, %d distinct; want each of the %d once", len(claimed), len(slices.Compact(slices.Clone(claimed))), prekeys)
		}
	})
}
