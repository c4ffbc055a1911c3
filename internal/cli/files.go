package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/human"
	"github.com/natterim/natter/wire"
)

// Files that arrive are noted in files-USER.jsonl (one line per file
// message, with its manifest: the key to open it) and fetched into the
// home's files folder by natter files. Chunks that contacts send over a
// peer-to-peer channel wait in the chunk cache until then.
const (
	filesDir      = "files"
	chunkCacheDir = "chunks"
)

func filesLog(user natter.UserID) string { return "files-" + string(user) + ".jsonl" }

// fileRecord is one line of the files log.
type fileRecord struct {
	ID     natter.MessageID `json:"id"`
	From   natter.UserID    `json:"from"`
	SentAt time.Time        `json:"sent_at"`
	File   client.FileInfo  `json:"file"`
}

// fileText describes a file message in one line.
func fileText(f *client.FileInfo) string {
	return fmt.Sprintf("[file] %s (%s)", client.SafeName(f.Name), sizeText(f.Size))
}

// sizeText is a byte count for people.
func sizeText(n int64) string { return human.Size(n) }

var filesMu sync.Mutex // one writer of the files log per process

// noteFiles appends the files that ev carries to the files log.
func (r *runner) noteFiles(user natter.UserID, ev client.Event) error {
	var recs []fileRecord
	add := func(m wire.Message) {
		if f, ok := client.FileOf(m.Body); ok && m.From != user {
			recs = append(recs, fileRecord{ID: m.ID, From: m.From, SentAt: m.SentAt, File: *f})
		}
	}
	switch ev := ev.(type) {
	case client.MessageEvent:
		add(ev.Message)
	case client.InboxEvent:
		for _, g := range ev.Groups {
			for _, m := range g.Messages {
				add(m.Message)
			}
		}
	}
	if len(recs) == 0 {
		return nil
	}
	filesMu.Lock()
	defer filesMu.Unlock()
	if err := r.home.ensure(); err != nil {
		return err
	}
	f, err := os.OpenFile(r.home.path(filesLog(user)), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	var b []byte
	for _, rec := range recs {
		line, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		b = append(append(b, line...), '\n')
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Sync()
}

// readFilesLog returns the files noted for user, once each, oldest first.
func (h home) readFilesLog(user natter.UserID) ([]fileRecord, error) {
	b, err := os.ReadFile(h.path(filesLog(user)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen := map[natter.MessageID]bool{}
	var out []fileRecord
	for _, line := range strings.Split(string(b), "\n") {
		var rec fileRecord
		if line == "" || json.Unmarshal([]byte(line), &rec) != nil || seen[rec.ID] {
			continue // a torn last line after a crash is skipped
		}
		seen[rec.ID] = true
		out = append(out, rec)
	}
	return out, nil
}

// progressPrinter prints a transfer's progress on stderr at most twice a
// second: bytes, rate, time left.
type progressPrinter struct {
	r     *runner
	what  string
	start time.Time
	last  time.Time
}

func (p *progressPrinter) update(done, total int64) {
	now := time.Now()
	if now.Sub(p.last) < 500*time.Millisecond && done < total {
		return
	}
	p.last = now
	el := now.Sub(p.start).Seconds()
	rate := float64(done) / max(el, 0.001)
	left := "?"
	if rate > 0 {
		left = (time.Duration(float64(total-done)/rate) * time.Second / time.Second).Round(time.Second).String()
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	fmt.Fprintf(p.r.stdio.Err, "%s: %s of %s (%.0f%%), %s/s, %s left\n", p.what, sizeText(done), sizeText(total), pct, sizeText(int64(rate)), left)
}

type jsonFileSent struct {
	ID     natter.MessageID `json:"id"`
	To     natter.UserID    `json:"to"`
	Name   string           `json:"name"`
	Size   int64            `json:"size"`
	SHA256 string           `json:"sha256"`
	Result string           `json:"result"`
	Path   string           `json:"path"` // how the file's message went: server, direct or relayed
}

// runSendFile sends a file.
func runSendFile(ctx context.Context, r *runner, args []string) error {
	if err := natter.ValidateUserID(args[0]); err != nil {
		return err
	}
	to, path := natter.UserID(args[0]), r.abs(args[1])
	if st, err := os.Stat(path); err != nil {
		return withCode("no_file", "%v", err)
	} else if !st.Mode().IsRegular() {
		return withCode("no_file", "%s is not a regular file", path)
	}
	r.direct = true
	return r.oneShot(ctx, nil, func(c *client.Client, s storedSession) error {
		if to == s.User {
			return withCode("self", "you cannot send a file to yourself")
		}
		p := &progressPrinter{r: r, what: "sending " + filepath.Base(path), start: time.Now()}
		res, f, err := c.SendFile(ctx, to, path, p.update)
		if err != nil {
			return keysErr(serverErr(fmt.Errorf("send file to %s: %w", to, err), to), to)
		}
		r.recordSent(ctx, s, to, fileText(f), res)
		result := resultStored
		if res.Online {
			result = resultSent
		}
		if r.g.json {
			r.emit(jsonFileSent{ID: res.ID, To: to, Name: f.Name, Size: f.Size, SHA256: f.SHA256, Result: result, Path: res.Path})
			return nil
		}
		how := "through the server"
		if res.Path != client.PathServer {
			how = "peer to peer" // the chunks went over the channel too
			if res.Path == client.PathRelayed {
				how += " (relayed)"
			}
		}
		r.printf("sent %s (%s) to %s, %s\n", f.Name, sizeText(f.Size), to, how)
		return nil
	})
}

type jsonFile struct {
	ID     natter.MessageID `json:"id"`
	From   natter.UserID    `json:"from"`
	Name   string           `json:"name"`
	Size   int64            `json:"size"`
	SentAt time.Time        `json:"sent_at"`
	Path   string           `json:"path,omitempty"`
	Error  string           `json:"error,omitempty"`
}

// runFiles fetches the files that arrived and are not fetched yet into the
// home's files folder, and lists them all.
func runFiles(ctx context.Context, r *runner, _ []string) error {
	s, err := r.home.session()
	if err != nil {
		return err
	}
	// Connect first: the SDK hands over what arrived meanwhile, which
	// noteFiles records, so that the list is current.
	var recs []fileRecord
	var failed error
	err = r.oneShot(ctx, nil, func(c *client.Client, s storedSession) error {
		time.Sleep(inboxGrace / 2) // let the inbox that follows the resume arrive
		var err error
		if recs, err = r.home.readFilesLog(s.User); err != nil {
			return err
		}
		dir := r.home.path(filesDir)
		fetched := r.home.fetchedFiles(s.User)
		for i, rec := range recs {
			if fetched[rec.ID] != "" {
				continue
			}
			f := rec.File
			p := &progressPrinter{r: r, what: "fetching " + client.SafeName(f.Name), start: time.Now()}
			path, err := c.FetchFile(ctx, &f, dir, p.update)
			if err != nil {
				fmt.Fprintf(r.stdio.Err, "natter: %s from %s: %v\n", f.Name, rec.From, err)
				failed = withCode("fetch", "some files could not be fetched: run natter files again to resume")
				continue
			}
			fetched[rec.ID] = path
			if err := r.home.noteFetched(s.User, rec.ID, path); err != nil {
				return err
			}
			_ = i
		}
		return nil
	})
	if err != nil {
		return err
	}
	fetched := r.home.fetchedFiles(s.User)
	if r.g.json {
		out := []jsonFile{}
		for _, rec := range recs {
			out = append(out, jsonFile{ID: rec.ID, From: rec.From, Name: rec.File.Name, Size: rec.File.Size, SentAt: utc(rec.SentAt), Path: fetched[rec.ID]})
		}
		r.emit(out)
		return failed
	}
	if len(recs) == 0 {
		r.printf("no files have arrived\n")
	}
	for _, rec := range recs {
		where := fetched[rec.ID]
		if where == "" {
			where = "not fetched yet"
		}
		r.printf("[%s] %s: %s (%s) → %s\n", when(rec.SentAt, r.now()), rec.From, client.SafeName(rec.File.Name), sizeText(rec.File.Size), where)
	}
	return failed
}

// fetchedFiles returns where each fetched file was saved, by message ID
// (fetched-USER.jsonl).
func (h home) fetchedFiles(user natter.UserID) map[natter.MessageID]string {
	out := map[natter.MessageID]string{}
	b, err := os.ReadFile(h.path("fetched-" + string(user) + ".jsonl"))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		var rec struct {
			ID   natter.MessageID `json:"id"`
			Path string           `json:"path"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.ID != "" {
			if _, err := os.Stat(rec.Path); err == nil {
				out[rec.ID] = rec.Path
			}
		}
	}
	return out
}

func (h home) noteFetched(user natter.UserID, id natter.MessageID, path string) error {
	f, err := os.OpenFile(h.path("fetched-"+string(user)+".jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	b, _ := json.Marshal(map[string]string{"id": string(id), "path": path})
	if _, err := f.Write(append(b, '\n')); err != nil {
		return err
	}
	return f.Sync()
}
