//go:build js

package p2p

import (
	"context"
	"errors"
	"syscall/js"
)

// await waits for a JavaScript promise to settle, or for ctx to end. It
// blocks only the calling goroutine, never the JS event loop: the
// promise's then and catch callbacks feed a channel. Call it from a
// goroutine, never from a JS callback.
func await(ctx context.Context, promise js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1) // one of the callbacks runs, once
	var then, catch js.Func
	settle := func(r result) {
		ch <- r
		then.Release()
		catch.Release()
	}
	then = js.FuncOf(func(_ js.Value, args []js.Value) any {
		settle(result{v: arg0(args)})
		return nil
	})
	catch = js.FuncOf(func(_ js.Value, args []js.Value) any {
		settle(result{err: jsError(arg0(args))})
		return nil
	})
	promise.Call("then", then, catch)
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		// The callbacks release themselves if the promise settles later.
		return js.Undefined(), ctx.Err()
	}
}

func arg0(args []js.Value) js.Value {
	if len(args) == 0 {
		return js.Undefined()
	}
	return args[0]
}

// jsError makes an error of a promise's rejection reason, which may be
// an Error, a DOMException or any other value.
func jsError(reason js.Value) error {
	if reason.Type() == js.TypeObject {
		if msg := reason.Get("message"); msg.Type() == js.TypeString {
			name := reason.Get("name")
			if name.Type() == js.TypeString {
				return errors.New(name.String() + ": " + msg.String())
			}
			return errors.New(msg.String())
		}
	}
	return errors.New(reason.String())
}
