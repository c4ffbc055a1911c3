package seal

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/natterim/natter"
)

// The decoders of what comes from the network (envelopes, bundles,
// prekeys) have fuzz targets; their seed corpus under testdata/fuzz holds
// real envelopes and bundles, written by
//
//	go test ./seal -run TestFuzzCorpus -update
//	go test ./seal -fuzz FuzzParseEnvelope -fuzztime 30s

var update = flag.Bool("update", false, "rewrite the seed corpus in testdata/fuzz")

// FuzzParseEnvelope: never panics, and what it accepts encodes back to an
// envelope that decodes the same.
func FuzzParseEnvelope(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parseEnvelope(data)
		if err != nil {
			return
		}
		e2, err := parseEnvelope(e.marshal())
		if err != nil {
			t.Fatalf("re-encoded envelope does not parse: %v", err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed the envelope:\n%+v\n%+v", e, e2)
		}
	})
}

// FuzzOpen feeds arbitrary envelopes to a real keyring: errors only.
func FuzzOpen(f *testing.F) {
	w := newWorld(&testing.T{})
	w.add("alice", "phone")
	b := w.add("bob", "phone")
	f.Fuzz(func(t *testing.T, data []byte) {
		w.t = t
		id := natter.MessageID("0190d1a2b3c4d5e6f7a8b9c0d1e2f3a4")
		if o, err := b.Open(id, "alice", "bob", data, w.lookup(b)); err == nil && o == nil {
			t.Fatal("nil result without error")
		}
	})
}

// FuzzParseBundle: never panics; an accepted bundle names the device asked
// for.
func FuzzParseBundle(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data, "alice", "phone")
		if err != nil {
			return
		}
		if b.User != "alice" || b.Device != "phone" {
			t.Fatalf("accepted a bundle of %s/%s", b.User, b.Device)
		}
		if _, err := ParsePrekey(data, b); err == nil {
			t.Fatal("a bundle parsed as a prekey")
		}
	})
}

// corpus makes real inputs for the fuzz targets.
func corpus(t *testing.T) map[string][][]byte {
	w := newWorld(t)
	a := w.add("alice", "phone")
	w.add("alice", "laptop")
	b := w.add("bob", "phone")
	var envs [][]byte
	for _, s := range []string{"hi", "", "a longer message with some text in it"} {
		id, env := w.seal(a, "bob", s)
		envs = append(envs, env)
		if s == "hi" {
			_, _ = w.open(b, id, "alice", "bob", env)
			rid, renv := w.seal(b, "alice", "reply")
			_, _ = w.open(a, rid, "bob", "alice", renv)
			envs = append(envs, renv)
		}
	}
	bundle, _ := a.Bundle()
	_, pk, _ := a.dev.newPrekey(7)
	laptop := w.devices["alice"][1]
	_ = a.NewArchiveKey()
	wrapped, _ := a.WrapArchiveKey(w.bundleOf(laptop))
	return map[string][][]byte{
		"FuzzParseEnvelope":    envs,
		"FuzzOpen":             envs,
		"FuzzParseBundle":      {bundle, pk, []byte("{}" + string(make([]byte, 64)))},
		"FuzzUnwrapArchiveKey": {wrapped, bundle},
	}
}

// TestFuzzCorpus checks the committed seed corpus is there and, with
// -update, writes a fresh one (keys are random, so it cannot be compared
// byte for byte).
func TestFuzzCorpus(t *testing.T) {
	for target, inputs := range corpus(t) {
		dir := filepath.Join("testdata", "fuzz", target)
		if *update {
			os.RemoveAll(dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i, in := range inputs {
				body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", in)
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		got, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
		if len(got) < len(inputs) {
			t.Errorf("%s: %d seeds committed, want %d: run go test ./seal -run TestFuzzCorpus -update", dir, len(got), len(inputs))
		}
	}
}
