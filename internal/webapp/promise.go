//go:build js

package webapp

import (
	"context"
	"errors"
	"syscall/js"

	"github.com/natterim/natter/client"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// promise runs f in a goroutine and returns a JavaScript Promise of its
// result (a value js.ValueOf takes) or its error.
func promise(f func(ctx context.Context) (any, error)) js.Value {
	exec := js.FuncOf(func(this js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			v, err := f(context.Background())
			if err != nil {
				reject.Invoke(jsError(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	p := js.Global().Get("Promise").New(exec) // runs exec at once
	exec.Release()
	return p
}

// await waits for a JavaScript Promise from a goroutine (never from a
// function JavaScript called: that would block the page's thread).
func await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var then, catch js.Func
	then = js.FuncOf(func(this js.Value, args []js.Value) any {
		ch <- result{v: arg(args)}
		return nil
	})
	catch = js.FuncOf(func(this js.Value, args []js.Value) any {
		e := arg(args)
		msg := "JavaScript error"
		if e.Type() == js.TypeObject && e.Get("message").Type() == js.TypeString {
			msg = e.Get("message").String()
		} else if e.Type() == js.TypeString {
			msg = e.String()
		}
		ch <- result{err: errors.New(msg)}
		return nil
	})
	p.Call("then", then, catch)
	r := <-ch
	then.Release()
	catch.Release()
	return r.v, r.err
}

func arg(args []js.Value) js.Value {
	if len(args) == 0 {
		return js.Undefined()
	}
	return args[0]
}

// jsError is err as a JavaScript Error with a code (docs/web.md).
func jsError(err error) js.Value {
	e := js.Global().Get("Error").New(err.Error())
	if c := errCode(err); c != "" {
		e.Set("code", c)
	}
	return e
}

// errCode is the protocol's error code of err, or one of the browser
// client's own.
func errCode(err error) string {
	var we *wire.Err
	switch {
	case errors.Is(err, errOffline):
		return "offline"
	case errors.Is(err, client.ErrDeviceNotApproved):
		return "not_approved"
	case errors.Is(err, seal.ErrKeyChanged):
		return "key_changed"
	case errors.As(err, &we):
		return string(we.Code)
	case errors.Is(err, client.ErrConnLost):
		return "offline"
	}
	return ""
}
