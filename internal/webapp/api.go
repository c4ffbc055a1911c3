//go:build js

package webapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"syscall/js"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

// API returns the natter object of docs/web.md. Its functions stay
// registered for the page's life.
func (a *App) API() js.Value {
	api := js.Global().Get("Object").New()
	async := func(name string, f func(ctx context.Context, args []js.Value) (any, error)) {
		api.Set(name, js.FuncOf(func(this js.Value, args []js.Value) any {
			return promise(func(ctx context.Context) (any, error) { return f(ctx, args) })
		}))
	}
	sync := func(name string, f func(args []js.Value) any) {
		api.Set(name, js.FuncOf(func(this js.Value, args []js.Value) any { return f(args) }))
	}
	str := func(args []js.Value, i int) string {
		if i < len(args) && args[i].Type() == js.TypeString {
			return args[i].String()
		}
		return ""
	}
	withClient := func(f func(ctx context.Context, c *client.Client, args []js.Value) (any, error)) func(context.Context, []js.Value) (any, error) {
		return func(ctx context.Context, args []js.Value) (any, error) {
			c, err := a.client()
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			return f(ctx, c, args)
		}
	}
	api.Set("version", Version)
	// debugStacks returns every goroutine's stack, for bug reports.
	sync("debugStacks", func([]js.Value) any {
		buf := make([]byte, 1<<20)
		return string(buf[:runtime.Stack(buf, true)])
	})

	async("start", func(ctx context.Context, args []js.Value) (any, error) { return a.start(ctx, arg(args)) })
	async("signup", func(ctx context.Context, args []js.Value) (any, error) {
		return a.auth(ctx, str(args, 0), str(args, 1), true)
	})
	async("login", func(ctx context.Context, args []js.Value) (any, error) {
		return a.auth(ctx, str(args, 0), str(args, 1), false)
	})
	async("logout", a.logoutJS)
	sync("me", func([]js.Value) any { return js.ValueOf(a.meJS()) })

	async("contacts", func(context.Context, []js.Value) (any, error) { return a.contactsJS(), nil })
	for name, op := range map[string]natter.ContactOp{"add": natter.OpAdd, "accept": natter.OpAccept,
		"refuse": natter.OpRefuse, "remove": natter.OpRemove, "block": natter.OpBlock, "unblock": natter.OpUnblock} {
		async(name, withClient(func(ctx context.Context, c *client.Client, args []js.Value) (any, error) {
			return nil, c.ContactOp(ctx, op, natter.UserID(str(args, 0)))
		}))
	}
	async("setPresence", withClient(func(ctx context.Context, c *client.Client, args []js.Value) (any, error) {
		st, text := natter.Status(str(args, 0)), str(args, 1)
		if err := c.SetPresence(ctx, st, text); err != nil {
			return nil, err
		}
		a.mu.Lock()
		a.status, a.text = st, text
		user := a.user
		a.mu.Unlock()
		b, _ := json.Marshal(map[string]string{"status": string(st), "text": text})
		return nil, a.s.put("kv", string(b), "status/"+string(user))
	}))

	async("send", withClient(func(ctx context.Context, c *client.Client, args []js.Value) (any, error) {
		to, text := natter.UserID(str(args, 0)), str(args, 1)
		if strings.TrimSpace(text) == "" {
			return nil, errors.New("nothing to send")
		}
		res, err := c.Send(ctx, to, []byte(text))
		if err != nil {
			return nil, err
		}
		return a.sent(to, res, text, nil)
	}))
	async("typing", withClient(func(ctx context.Context, c *client.Client, args []js.Value) (any, error) {
		return nil, c.SendTyping(ctx, natter.UserID(str(args, 0)))
	}))
	async("markRead", withClient(a.markRead))
	async("history", func(ctx context.Context, args []js.Value) (any, error) {
		h, err := a.loggedInHistory()
		if err != nil {
			return nil, err
		}
		limit := limitArg(args, 2)
		recs, before, err := h.page(str(args, 0), str(args, 1), limit)
		if err != nil {
			return nil, err
		}
		msgs := make([]any, len(recs))
		for i, r := range recs {
			msgs[i] = recordJS(r)
		}
		var cursor any
		if before != "" {
			cursor = before
		}
		return map[string]any{"messages": msgs, "before": cursor}, nil
	})
	async("search", func(ctx context.Context, args []js.Value) (any, error) {
		h, err := a.loggedInHistory()
		if err != nil {
			return nil, err
		}
		limit := limitArg(args, 1)
		hits, err := h.search(str(args, 0), limit)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(hits))
		for i, x := range hits {
			out[i] = map[string]any{"peer": x.peer, "message": recordJS(x.rec)}
		}
		return out, nil
	})
	sync("path", func(args []js.Value) any {
		c, err := a.client()
		if err != nil {
			return js.ValueOf(map[string]any{"path": client.PathServer, "rtt": 0})
		}
		p, rtt := c.PathTo(natter.UserID(str(args, 0)))
		return js.ValueOf(map[string]any{"path": p, "rtt": float64(rtt.Microseconds()) / 1000})
	})
	async("openDirect", withClient(func(ctx context.Context, c *client.Client, args []js.Value) (any, error) {
		p, rtt, err := c.OpenDirect(ctx, natter.UserID(str(args, 0)))
		if err != nil {
			return nil, err
		}
		return map[string]any{"path": p, "rtt": float64(rtt.Microseconds()) / 1000}, nil
	}))

	async("sendFile", func(ctx context.Context, args []js.Value) (any, error) {
		c, err := a.client()
		if err != nil {
			return nil, err
		}
		if len(args) < 2 || args[1].Type() != js.TypeObject {
			return nil, errors.New("sendFile: give a File")
		}
		to, f := natter.UserID(str(args, 0)), args[1]
		var progress client.Progress
		if len(args) > 2 && args[2].Type() == js.TypeFunction {
			cb := args[2]
			progress = func(done, total int64) { cb.Invoke(float64(done), float64(total)) }
		}
		res, info, err := c.SendFileFrom(ctx, to, f.Get("name").String(), f.Get("type").String(),
			jsFile{f}, int64(f.Get("size").Float()), progress)
		if err != nil {
			return nil, err
		}
		return a.sent(to, res, "", info)
	})
	async("fetchFile", a.fetchFile)

	async("safety", withClient(func(ctx context.Context, c *client.Client, args []js.Value) (any, error) {
		number, verified, err := c.SafetyNumber(ctx, natter.UserID(str(args, 0)))
		if err != nil {
			return nil, err
		}
		svg, err := qrSVG(number)
		if err != nil {
			return nil, err
		}
		return map[string]any{"number": number, "verified": verified, "qr": svg}, nil
	}))
	async("verify", withClient(func(ctx context.Context, c *client.Client, args []js.Value) (any, error) {
		return nil, c.MarkVerified(ctx, natter.UserID(str(args, 0)), str(args, 1))
	}))
	async("devices", withClient(func(ctx context.Context, c *client.Client, args []js.Value) (any, error) {
		devs, err := c.Devices(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(devs))
		for i, d := range devs {
			out[i] = map[string]any{"id": string(d.Device), "approved": d.Approved, "current": d.This}
		}
		return out, nil
	}))
	async("approveDevice", withClient(func(ctx context.Context, c *client.Client, args []js.Value) (any, error) {
		return nil, c.ApproveDevice(ctx, natter.DeviceID(str(args, 0)))
	}))
	async("removeDevice", withClient(func(ctx context.Context, c *client.Client, args []js.Value) (any, error) {
		return nil, c.RemoveDevice(ctx, natter.DeviceID(str(args, 0)))
	}))
	return api
}

func (a *App) logoutJS(ctx context.Context, _ []js.Value) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return a.logout(ctx)
}

// sent keeps a message this browser sent and returns it for the page.
func (a *App) sent(to natter.UserID, res client.SendResult, text string, file *client.FileInfo) (any, error) {
	a.mu.Lock()
	self := a.user
	a.mu.Unlock()
	at := res.SentAt
	if at.IsZero() {
		at = time.Now()
	}
	r := record{ID: string(res.ID), From: string(self), To: string(to), Text: text, At: at.UnixMilli(),
		State: "sent", Path: res.Path, Seq: res.ConvSeq, File: file}
	if r.Path == "" {
		r.Path = client.PathServer
	}
	if err := a.keep(to, r); err != nil {
		return nil, err
	}
	// A receipt that arrived before this record was written.
	a.mu.Lock()
	var early []client.ReceiptEvent
	for _, st := range []natter.ReceiptState{natter.ReceiptDelivered, natter.ReceiptRead} {
		if e, ok := a.receipts[to][st]; ok && e.Covers(res.ID, res.ConvSeq) {
			early = append(early, e)
			r.State = string(st)
		}
	}
	a.mu.Unlock()
	for _, e := range early {
		a.applyReceipt(e)
	}
	return recordJS(r), nil
}

// markRead sends the read receipt for the newest message from peer and
// clears its unread count.
func (a *App) markRead(ctx context.Context, c *client.Client, args []js.Value) (any, error) {
	peer := natter.UserID("")
	if len(args) > 0 && args[0].Type() == js.TypeString {
		peer = natter.UserID(args[0].String())
	}
	a.mu.Lock()
	h := a.hist
	a.mu.Unlock()
	key := "read/" + h.owner + "/" + string(peer)
	last, _, err := a.s.get("kv", key)
	if err != nil {
		return nil, err
	}
	n, newest, err := h.unread(string(peer), last)
	if err != nil || n == 0 {
		return nil, err
	}
	if err := c.MarkReadID(ctx, peer, natter.MessageID(newest)); err != nil {
		return nil, err
	}
	if err := a.s.put("kv", newest, key); err != nil {
		return nil, err
	}
	a.countUnread(peer, true)
	return nil, nil
}

// fetchFile fetches the file message id carries and returns it as a Blob.
func (a *App) fetchFile(ctx context.Context, args []js.Value) (any, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	if len(args) == 0 || args[0].Type() != js.TypeString {
		return nil, errors.New("fetchFile: give a message ID")
	}
	id := args[0].String()
	a.mu.Lock()
	h := a.hist
	a.mu.Unlock()
	peer, ok, err := a.s.get("kv", "file/"+h.owner+"/"+id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no file message %s in this browser's history", id)
	}
	r, err := h.get(peer, id)
	if err != nil || r == nil || r.File == nil {
		return nil, fmt.Errorf("no file message %s in this browser's history", id)
	}
	f := r.File
	sink, err := newIDBSink(a.s, f.SHA256, f.Size)
	if err != nil {
		return nil, err
	}
	var progress client.Progress
	if len(args) > 1 && args[1].Type() == js.TypeFunction {
		cb := args[1]
		progress = func(done, total int64) { cb.Invoke(float64(done), float64(total)) }
	}
	if err := c.FetchFileTo(ctx, f, sink, progress); err != nil {
		if errors.Is(err, client.ErrFileMismatch) {
			sink.drop()
		}
		return nil, err
	}
	typ := f.Type
	if typ == "" {
		typ = "application/octet-stream"
	}
	// The chunks stay, so the file opens again without the network; they
	// go with the history (natter keeps no other copy in the browser).
	return sink.blob(typ)
}

// loggedInHistory returns the history of the user whose session this is.
func (a *App) loggedInHistory() (history, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hist.owner == "" {
		return history{}, client.ErrNotLoggedIn
	}
	return a.hist, nil
}

// limitArg is the page size the page asked for in args[i]: 50 if none,
// within 1 to 500.
func limitArg(args []js.Value, i int) int {
	if len(args) > i && args[i].Type() == js.TypeNumber {
		return max(1, min(500, args[i].Int()))
	}
	return 50
}
