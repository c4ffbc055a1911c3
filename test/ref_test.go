package test

import (
	"reflect"
	"testing"
)

// setRef sets the Ref field of the request in *v.
func setRef(t *testing.T, v *any, ref uint64) {
	t.Helper()
	p := reflect.New(reflect.TypeOf(*v))
	p.Elem().Set(reflect.ValueOf(*v))
	f := p.Elem().FieldByName("Ref")
	if !f.IsValid() {
		t.Fatalf("%T has no Ref", *v)
	}
	f.SetUint(ref)
	*v = p.Interface()
}

// refOf returns an answer's Ref (0 if it has none).
func refOf(v any) uint64 {
	e := reflect.ValueOf(v)
	if e.Kind() == reflect.Pointer {
		e = e.Elem()
	}
	if f := e.FieldByName("Ref"); f.IsValid() {
		return f.Uint()
	}
	return 0
}
