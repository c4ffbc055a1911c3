package tui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
)

// transfer is a file being sent (shown in its conversation) or fetched
// (shown by /files), with its progress.
type transfer struct {
	id          int
	name        string
	done, total int64
}

// arrivedFile is a file a contact sent in this run.
type arrivedFile struct {
	id    natter.MessageID
	from  natter.UserID
	at    time.Time
	file  client.FileInfo
	fetch *transfer // while it is being fetched
	path  string    // where it was saved
	err   error
}

// transferMsg is progress, or the end, of a transfer. The transfer's
// goroutine sends them on ch, keeping only the latest progress.
type transferMsg struct {
	gen         int
	id          int
	peer        natter.UserID // a send
	file        *arrivedFile  // a fetch
	done, total int64
	final       bool
	res         client.SendResult
	info        *client.FileInfo
	path        string
	err         error
	ch          chan transferMsg
}

// progressTo returns a client.Progress that reports on ch without ever
// blocking the transfer: a report not taken yet is replaced.
func progressTo(ch chan transferMsg, base transferMsg) client.Progress {
	return func(done, total int64) {
		m := base
		m.done, m.total = done, total
		select {
		case ch <- m:
		default:
			select {
			case <-ch:
			default:
			}
			select {
			case ch <- m:
			default:
			}
		}
	}
}

// waitTransfer returns the next report of a transfer.
func waitTransfer(ch chan transferMsg) tea.Cmd {
	return func() tea.Msg { return <-ch }
}

// sendFile sends the file at path to c's peer: /send PATH.
func (a *App) sendFile(c *conv, path string) tea.Cmd {
	if c.keyChanged {
		a.setNotice(true, "%s's identity key changed: compare safety numbers with /verify first", c.peer)
		return nil
	}
	if strings.HasPrefix(path, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, path[2:])
		}
	}
	a.nextTransfer++
	t := &transfer{id: a.nextTransfer, name: filepath.Base(path)}
	c.transfers = append(c.transfers, t)
	b, local, peer := a.sess.Backend, a.sess.Local, c.peer
	ch := make(chan transferMsg, 1)
	base := transferMsg{gen: a.gen, id: t.id, peer: peer, ch: ch}
	return func() tea.Msg {
		go func() {
			res, info, err := b.SendFile(context.Background(), peer, path, progressTo(ch, base))
			if err == nil && local != nil {
				local.RecordSent(context.Background(), peer, fileText(info), res)
			}
			m := base
			m.final, m.res, m.info, m.err = true, res, info, err
			finish(ch, m)
		}()
		return <-ch
	}
}

// finish sends a transfer's final report, which must not be dropped: it
// makes room for it.
func finish(ch chan transferMsg, m transferMsg) {
	for {
		select {
		case ch <- m:
			return
		case <-ch:
		}
	}
}

// fetch fetches an arrived file into the session's files folder.
func (a *App) fetch(f *arrivedFile) tea.Cmd {
	a.nextTransfer++
	f.fetch, f.err = &transfer{id: a.nextTransfer, name: f.file.Name, total: f.file.Size}, nil
	b, dir := a.sess.Backend, a.sess.FilesDir
	ch := make(chan transferMsg, 1)
	base := transferMsg{gen: a.gen, id: f.fetch.id, file: f, ch: ch}
	info := f.file
	return func() tea.Msg {
		go func() {
			path, err := b.FetchFile(context.Background(), &info, dir, progressTo(ch, base))
			m := base
			m.final, m.path, m.err = true, path, err
			finish(ch, m)
		}()
		return <-ch
	}
}

// transferUpdate applies a transfer's report.
func (a *App) transferUpdate(m transferMsg) tea.Cmd {
	if m.gen != a.gen {
		return nil
	}
	if m.file != nil {
		f := m.file
		if !m.final {
			if f.fetch != nil {
				f.fetch.done, f.fetch.total = m.done, m.total
			}
			return waitTransfer(m.ch)
		}
		f.fetch, f.path, f.err = nil, m.path, m.err
		if m.err == nil {
			a.setNotice(false, "fetched %s → %s", clean(f.file.Name, false), clean(m.path, false))
		}
		return nil
	}
	c := a.conv(m.peer)
	for i, t := range c.transfers {
		if t.id != m.id {
			continue
		}
		if !m.final {
			t.done, t.total = m.done, m.total
			return waitTransfer(m.ch)
		}
		c.transfers = append(c.transfers[:i], c.transfers[i+1:]...)
		break
	}
	if !m.final {
		return waitTransfer(m.ch)
	}
	now := a.now()
	if m.err != nil {
		c.note(now, fmt.Sprintf("could not send the file: %s", sendErr(m.err, m.peer)))
		return nil
	}
	e := &entry{id: m.res.ID, from: a.sess.User, out: true, text: fileText(m.info), at: m.res.SentAt,
		convSeq: m.res.ConvSeq, path: m.res.Path, state: stateSent}
	if e.at.IsZero() {
		e.at = now
	}
	if m.res.Path == client.PathDirect || m.res.Path == client.PathRelayed {
		e.state = stateDelivered
	}
	c.add(e)
	c.note(now, "the file went "+pathText(m.res.Path))
	return nil
}

// pathText says which way something went.
func pathText(path string) string {
	switch path {
	case client.PathDirect:
		return "peer to peer (direct)"
	case client.PathRelayed:
		return "peer to peer (relayed by the server)"
	}
	return "through the server"
}

// bar draws a progress bar w cells wide.
func bar(done, total int64, w int) string {
	if w < 1 {
		return ""
	}
	n := 0
	if total > 0 {
		n = int(int64(w) * min(done, total) / total)
	}
	return strings.Repeat("█", n) + strings.Repeat("░", w-n)
}

// transferLine shows a transfer's progress in w cells.
func transferLine(t *transfer, verb string, w int, a *App) string {
	pct := 0
	if t.total > 0 {
		pct = int(100 * t.done / t.total)
	}
	head := fmt.Sprintf("%s %s ", verb, clean(t.name, false))
	tail := fmt.Sprintf(" %3d%% %s of %s", pct, sizeText(t.done), sizeText(t.total))
	bw := max(w-len([]rune(head))-len([]rune(tail)), 4)
	return fit(a.lk.st.dim.Render(head)+bar(t.done, t.total, bw)+a.lk.st.dim.Render(tail), w)
}

// filesLines lists the files that arrived, for the /files panel.
func (a *App) filesLines() []string {
	st := a.lk.st
	if len(a.arrived) == 0 {
		return []string{"", "no files have arrived since natter started (natter files lists the older ones)"}
	}
	out := []string{""}
	for _, f := range a.arrived {
		head := fmt.Sprintf("%s %s: %s (%s)", clock(f.at, a.now(), a.lk.loc), f.from, clean(client.SafeName(f.file.Name), false), sizeText(f.file.Size))
		out = append(out, head)
		switch {
		case f.fetch != nil:
			out = append(out, "    "+transferLine(f.fetch, "fetching", max(a.w/2, 30), a))
		case f.err != nil:
			out = append(out, "    "+st.err.Render("failed: "+clean(f.err.Error(), false)+" (/files tries again)"))
		case f.path != "":
			out = append(out, "    "+st.dim.Render("→ "+clean(f.path, false)))
		}
	}
	return out
}
