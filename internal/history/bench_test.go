package history

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter"
)

// benchWords are the vocabulary of the benchmark's messages, most frequent
// first: they are drawn with a Zipf distribution, as words in real text
// are, so that the first few are in most messages and the last in few.
var benchWords = strings.Fields(`
the to you i a and it is that of for in on me be are we this
my have at so just do was not can with what your get but be will
no all if now go up out like know see one about time good then
there how when think back today tomorrow tonight here come want
did going yes okay thanks please sorry really still need could
would should meet later home work call let soon maybe sure right
dinner lunch coffee train station meeting office weekend morning
evening night hour minutes late early party movie game music book
phone message email picture photo send sent got bring buy shop
store market bread milk cheese wine beer water tea pizza pasta
birthday holiday trip flight hotel beach mountain river park walk
run bike car bus ticket price money bank card pay paid cheap
expensive weather rain snow sun cold warm hot wind umbrella coat
kids school teacher class homework exam test grade doctor dentist
appointment medicine sick better tired sleep bed kitchen garden
dog cat walked fed vet neighbour door key window garage broken
fix fixed plumber electrician invoice contract deadline project
report slides presentation budget client colleague manager team
release deploy server database backup password laptop keyboard
printer charger cable adapter battery screen update version bug
concert festival museum gallery theatre ballet opera exhibition
recipe ingredients oven bake cake chocolate strawberry lemon
garlic onion tomato pepper salad soup sandwich breakfast brunch
marathon yoga swimming tennis football basketball climbing
saxophone violin piano guitar orchestra rehearsal audition
quarantine kaleidoscope xylophone zeppelin quixotic
`)

// benchMessages is how many messages BenchmarkSearch logs.
const benchMessages = 100_000

// fillBench logs n messages of generated sentences, between alice and 20
// contacts, a minute apart, in batches of 1,000 (one transaction each).
func fillBench(b *testing.B, l *Log, n int) {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 2, uint64(len(benchWords)-1))
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := make([]Entry, 0, 1000)
	for i := range n {
		words := make([]string, 3+rng.IntN(18))
		for j := range words {
			words[j] = benchWords[zipf.Uint64()]
		}
		peer := natter.UserID(fmt.Sprintf("friend%02d", rng.IntN(20)))
		e := Entry{
			ID: natter.NewMessageID(start), From: peer, To: "alice", FromDevice: "dev",
			Body: strings.Join(words, " "), SentAt: start.Add(time.Duration(i) * time.Minute),
			ConvSeq: uint64(i + 1), Path: "server", Direction: In,
		}
		if rng.IntN(2) == 0 {
			e.From, e.To, e.Direction = "alice", peer, Out
		}
		batch = append(batch, e)
		if len(batch) == cap(batch) || i == n-1 {
			if err := l.Add(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// BenchmarkSearch measures Search over 100,000 logged messages for queries
// from the most common word to one that matches nothing, 20 hits at most,
// as natter search asks. The messages are logged once, before the timed
// part; fill-s is how long that took (in batches of 1,000).
func BenchmarkSearch(b *testing.B) {
	l, err := Open(context.Background(), filepath.Join(b.TempDir(), "history.sqlite"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	fillBench(b, l, benchMessages)
	// Reported with each query's figures: a parent benchmark's logs show
	// only with -v.
	fill := time.Since(start).Seconds()

	for _, q := range []struct{ name, query string }{
		{"common word", "the"},    // in most messages
		{"mid word", "coffee"},    // in a few hundred
		{"rare word", "zeppelin"}, // in a handful
		{"two words", "coffee tomorrow"},
		{"short prefix", "t"}, // every word starting with t
		{"prefix", "pres"},    // presentation
		{"no match", "zebra"},
	} {
		b.Run(q.name, func(b *testing.B) {
			var hits int
			for b.Loop() {
				h, err := l.Search(context.Background(), q.query, 20)
				if err != nil {
					b.Fatal(err)
				}
				hits = len(h)
			}
			b.ReportMetric(float64(hits), "hits")
			b.ReportMetric(fill, "fill-s")
		})
	}
}
