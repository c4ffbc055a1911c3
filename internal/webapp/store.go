//go:build js

package webapp

import (
	"fmt"
	"syscall/js"
)

// store is IndexedDB through web/dist/idb.js (globalThis.natterIDB): the
// stores "kv", "messages" and "words", string values.
type store struct{ idb js.Value }

// op is one write of a transaction: a put, or a delete when del is set.
type op struct {
	store string
	key   []any
	value string
	del   bool
}

func keyOf(parts []any) js.Value {
	if len(parts) == 1 {
		return js.ValueOf(parts[0])
	}
	return js.ValueOf(parts)
}

func (s store) open() error {
	_, err := await(s.idb.Call("open"))
	if err != nil {
		return fmt.Errorf("open the browser's storage: %w", err)
	}
	return nil
}

// get returns the value at key in st, and whether there is one.
func (s store) get(st string, key ...any) (string, bool, error) {
	v, err := await(s.idb.Call("get", st, keyOf(key)))
	if err != nil {
		return "", false, fmt.Errorf("storage: get %s: %w", st, err)
	}
	if v.Type() != js.TypeString {
		return "", false, nil
	}
	return v.String(), true, nil
}

// write applies ops in one transaction.
func (s store) write(ops ...op) error {
	arr := make([]any, len(ops))
	for i, o := range ops {
		if o.del {
			arr[i] = []any{o.store, keyOf(o.key)}
		} else {
			arr[i] = []any{o.store, keyOf(o.key), o.value}
		}
	}
	if _, err := await(s.idb.Call("write", arr)); err != nil {
		return fmt.Errorf("storage: write: %w", err)
	}
	return nil
}

func (s store) put(st, value string, key ...any) error {
	return s.write(op{store: st, key: key, value: value})
}

// entry is one key and value a range read returned; key is the array key's
// parts (strings).
type entry struct {
	key   []string
	value string
}

// rangeOf reads the entries of st with keys in [lower, upper], newest first
// if reverse, at most limit (0: all).
func (s store) rangeOf(st string, lower, upper []any, reverse bool, limit int) ([]entry, error) {
	lo, hi := js.Null(), js.Null()
	if lower != nil {
		lo = js.ValueOf(lower)
	}
	if upper != nil {
		hi = js.ValueOf(upper)
	}
	v, err := await(s.idb.Call("range", st, lo, hi, reverse, limit))
	if err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", st, err)
	}
	out := make([]entry, v.Length())
	for i := range out {
		e := v.Index(i)
		k := e.Get("key")
		parts := make([]string, k.Length())
		for j := range parts {
			parts[j] = k.Index(j).String()
		}
		out[i].key = parts
		if val := e.Get("value"); val.Type() == js.TypeString {
			out[i].value = val.String()
		}
	}
	return out, nil
}
