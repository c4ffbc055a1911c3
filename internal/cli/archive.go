package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// natter archive: the user's server-side history (docs/history.md). The
// position up to which this device fetched it is kept in the home, so
// that natter archive fetch brings in only what is new.

func archiveCursorFile(user natter.UserID) string { return "archive-" + string(user) + ".json" }

// archiveSpoolDir names the folder where the records of user's archive
// that a command could not put before it exited wait for the next one
// (client.Options.ArchiveSpool).
func archiveSpoolDir(user natter.UserID) string { return "archive-spool-" + string(user) }

// archiveFlushWait bounds how long natter archive waits for this device's
// waiting records to be put, so that what it reports includes them.
const archiveFlushWait = 30 * time.Second

type archiveCursor struct {
	After int64 `json:"after"`
}

type jsonArchive struct {
	On         bool              `json:"on"`
	HasKey     bool              `json:"has_key"`
	KeyDevices []natter.DeviceID `json:"key_devices,omitempty"`
	Put        int               `json:"put,omitempty"`     // on: messages of the local history put
	Fetched    int               `json:"fetched,omitempty"` // fetch: messages fetched
}

func runArchive(ctx context.Context, r *runner, args []string) error {
	op := "status"
	if len(args) == 1 {
		op = args[0]
	}
	switch op {
	case "status", "on", "off", "fetch":
	default:
		return usagef(r.cmd, "archive: use natter archive [status|on|off|fetch]")
	}
	return r.oneShot(ctx, nil, func(c *client.Client, s storedSession) error {
		out := jsonArchive{}
		var err error
		switch op {
		case "on":
			if err := c.SetArchive(ctx, true); err != nil && !errors.Is(err, client.ErrArchiveKeyPending) {
				return archiveErr(err)
			}
			if out.Put, err = r.backfillArchive(ctx, c, s.User); err != nil && !errors.Is(err, client.ErrArchiveKeyPending) {
				return archiveErr(err)
			}
		case "off":
			if err := c.SetArchive(ctx, false); err != nil {
				return archiveErr(err)
			}
			os.Remove(r.home.path(archiveCursorFile(s.User)))
		case "fetch":
			if out.Fetched, err = r.fetchArchive(ctx, c, s.User); err != nil {
				return archiveErr(err)
			}
		}
		fctx, cancel := context.WithTimeout(ctx, archiveFlushWait)
		err = c.FlushArchive(fctx)
		cancel()
		if err != nil {
			return archiveErr(fmt.Errorf("put this device's waiting records: %w", err))
		}
		st, err := c.ArchiveStatus(ctx)
		if err != nil {
			return archiveErr(err)
		}
		out.On, out.HasKey, out.KeyDevices = st.On, st.HasKey, st.KeyDevices
		if r.g.json {
			r.emit(out)
			return nil
		}
		switch {
		case !st.On:
			r.printf("server-side history: off (the server keeps no copy of your conversations)\n")
		case !st.HasKey:
			r.printf("server-side history: on, but this device cannot read it yet: a device of yours that can must be online after this one was approved (natter devices approve)\n")
		default:
			r.printf("server-side history: on, sealed for %d of your devices (this one included)\n", len(st.KeyDevices))
		}
		if op == "on" && st.HasKey {
			r.printf("put %d messages of this device's history in it\n", out.Put)
		}
		if op == "fetch" {
			r.printf("fetched %d messages into this device's history\n", out.Fetched)
		}
		return nil
	})
}

func archiveErr(err error) error {
	if errors.Is(err, natter.ErrArchiveOff) {
		return withCode(string(wire.CodeArchiveOff), "server-side history is off: natter archive on turns it on")
	}
	if errors.Is(err, client.ErrArchiveKeyPending) {
		return withCode("archive_key_pending", "this device cannot read your server-side history yet: a device of yours that can must be online after this one was approved (natter devices approve)")
	}
	return serverErr(err, "")
}

// backfillArchive puts the opened messages of the local history in the
// archive and returns how many.
func (r *runner) backfillArchive(ctx context.Context, c *client.Client, me natter.UserID) (int, error) {
	l, err := r.home.openHistory(ctx, me)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	n := 0
	var after int64
	for {
		entries, next, err := l.Opened(ctx, after, wire.MaxArchiveBatch)
		if err != nil || len(entries) == 0 {
			return n, err
		}
		after = next
		var msgs []client.ArchivedMessage
		for _, e := range entries {
			msgs = append(msgs, client.ArchivedMessage{Path: e.Path, Message: wire.Message{ID: e.ID, From: e.From,
				FromDevice: e.FromDevice, To: e.To, SentAt: e.SentAt, ConvSeq: e.ConvSeq, Body: []byte(e.Body)}})
		}
		if err := c.Archive(ctx, msgs); err != nil {
			return n, err
		}
		n += len(msgs)
	}
}

// fetchArchive brings what the archive holds past this device's cursor
// into the local history (and notes the files), and returns how many
// messages it fetched.
func (r *runner) fetchArchive(ctx context.Context, c *client.Client, me natter.UserID) (int, error) {
	var cur archiveCursor
	if b, err := os.ReadFile(r.home.path(archiveCursorFile(me))); err == nil {
		_ = json.Unmarshal(b, &cur)
	}
	n := 0
	for {
		msgs, next, more, err := c.FetchArchive(ctx, cur.After, wire.MaxArchiveBatch)
		if err != nil {
			return n, err
		}
		for _, m := range msgs {
			// As if it had just arrived: logged once (the history is
			// unique by sender and ID) and files noted for natter files.
			r.recordEvent(ctx, me, client.MessageEvent{Message: m.Message, Path: m.Path, File: m.File})
		}
		if err := r.historyErr(); err != nil {
			return n, err
		}
		n += len(msgs)
		cur.After = next
		b, _ := json.Marshal(cur)
		if err := r.home.writeFile(archiveCursorFile(me), b); err != nil {
			return n, err
		}
		if !more {
			return n, nil
		}
	}
}
