package tui

import (
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/natterim/natter"
)

// look is what rendering needs besides the data: styles and time zone.
type look struct {
	st  styles
	loc *time.Location
	me  natter.UserID
}

// renderKey is everything an entry's rendering depends on: when it is the
// same, the cached lines are reused.
type renderKey struct {
	width, nameW int
	state        sendState
	day          bool // a date line goes before it
	marked       bool
}

// lines returns the rendered lines of entry i at width w, from the cache if
// nothing they depend on changed.
func (c *conv) lines(i, w int, lk *look) []string {
	e := c.entries[i]
	k := renderKey{width: w, nameW: c.nameW, state: c.stateOf(e), marked: e.id != "" && e.id == c.mark}
	k.day = i == 0 || !sameDay(c.entries[i-1].at.In(lk.loc), e.at.In(lk.loc))
	if e.lines != nil && e.key == k {
		return e.lines
	}
	e.key, e.lines = k, renderEntry(e, k, lk)
	for j, l := range e.lines { // exactly w cells, so that a frame need not measure them
		e.lines[j] = fit(l, w)
	}
	return e.lines
}

// renderEntry wraps and styles one entry:
//
//	15:04 alice  the text, wrapped under
//	             itself ✓✓ read
func renderEntry(e *entry, k renderKey, lk *look) []string {
	st := lk.st
	var out []string
	if k.day {
		out = append(out, dayLine(e.at.In(lk.loc), k.width, st))
	}
	tm := st.iDim.paint(e.at.In(lk.loc).Format("15:04"))
	if e.kind == kindNote {
		for j, l := range wrap(e.text, max(k.width-8, 8)) {
			head := tm + " "
			if j > 0 {
				head = "      "
			}
			out = append(out, head+st.iNote.paint("— "+l))
		}
		return out
	}
	prefixW := 6 + k.nameW + 1
	bodyW := k.width - prefixW
	indent := strings.Repeat(" ", prefixW)
	if bodyW < 16 { // too narrow for a column: the text goes under the name
		bodyW, indent = max(k.width-2, 4), "  "
	}
	nameInk := st.iPeer
	if e.out {
		nameInk = st.iMe
	}
	name := nameInk.paint(fit(string(e.from), k.nameW))
	body := wrap(e.text, bodyW)
	if k.marked {
		for j := range body {
			body[j] = st.iHighlight.paint(body[j])
		}
	}
	suffix := stateText(k.state, e.err, st)
	if suffix != "" {
		last := body[len(body)-1]
		if ansi.StringWidth(last)+1+ansi.StringWidth(suffix) <= bodyW {
			body[len(body)-1] = last + " " + suffix
		} else {
			body = append(body, suffix)
		}
	}
	if indent == "  " {
		out = append(out, tm+" "+name)
		for _, l := range body {
			out = append(out, indent+l)
		}
		return out
	}
	for j, l := range body {
		if j == 0 {
			out = append(out, tm+" "+name+" "+l)
		} else {
			out = append(out, indent+l)
		}
	}
	return out
}

// stateText is the mark after one of the user's messages.
func stateText(s sendState, err string, st styles) string {
	switch s {
	case stateSending:
		return st.iDim.paint("… sending")
	case stateSent:
		return st.iDim.paint("✓ sent")
	case stateDelivered:
		return st.iDim.paint("✓✓ delivered")
	case stateRead:
		return st.iRead.paint("✓✓ read")
	case stateFailed:
		return st.iErr.paint("✗ not sent: " + clean(err, false))
	}
	return ""
}

// dayLine separates the days of a conversation.
func dayLine(t time.Time, w int, st styles) string {
	label := " " + t.Format("Monday, 2 January 2006") + " "
	side := max((w-ansi.StringWidth(label))/2, 1)
	return st.iRule.paint(strings.Repeat("─", side) + label + strings.Repeat("─", max(w-side-ansi.StringWidth(label), 1)))
}

// bottom is the entry at the bottom edge and how many of its lines are
// below it.
func (c *conv) bottom() (int, int) {
	if c.follow {
		return len(c.entries) - 1, 0
	}
	return c.anchor, c.skip
}

// view returns the h lines of the dialog at width w, newest at the bottom,
// and the index of the topmost entry on screen.
func (c *conv) view(w, h int, lk *look) ([]string, int) {
	out := make([]string, 0, h)
	i, skip := c.bottom()
	top := i
	for ; i >= 0 && len(out) < h; i-- {
		ls := c.lines(i, w, lk)
		end := len(ls) - min(skip, len(ls)-1)
		skip = 0
		for j := end - 1; j >= 0 && len(out) < h; j-- {
			out = append(out, ls[j])
		}
		top = i
	}
	for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
		out[l], out[r] = out[r], out[l]
	}
	if pad := h - len(out); pad > 0 {
		blank := strings.Repeat(" ", w)
		top := make([]string, pad, h)
		for i := range top {
			top[i] = blank
		}
		out = append(top, out...)
	}
	return out, top
}

// scrollUp moves the dialog n lines back in time.
func (c *conv) scrollUp(n, w, h int, lk *look) {
	if len(c.entries) == 0 {
		return
	}
	if c.follow {
		c.anchor, c.skip, c.follow = len(c.entries)-1, 0, false
	}
	c.skip += n
	for c.anchor > 0 && c.skip >= len(c.lines(c.anchor, w, lk)) {
		c.skip -= len(c.lines(c.anchor, w, lk))
		c.anchor--
	}
	if c.anchor == 0 {
		c.skip = min(c.skip, len(c.lines(0, w, lk))-1)
	}
	// Keep the screen full: never scroll past the first line.
	total := 0
	for i := c.anchor; i >= 0 && total < h; i-- {
		total += len(c.lines(i, w, lk))
		if i == c.anchor {
			total -= c.skip
		}
	}
	if total < h {
		c.scrollDown(h-total, w, lk)
	}
}

// scrollDown moves the dialog n lines towards the newest message; reaching
// it makes the dialog follow new messages again.
func (c *conv) scrollDown(n, w int, lk *look) {
	if c.follow {
		return
	}
	c.skip -= n
	for c.skip < 0 && c.anchor < len(c.entries)-1 {
		c.anchor++
		c.skip += len(c.lines(c.anchor, w, lk))
	}
	if c.anchor >= len(c.entries)-1 && c.skip <= 0 {
		c.toBottom()
	}
	c.skip = max(c.skip, 0)
}

// toBottom shows the newest message and follows new ones.
func (c *conv) toBottom() {
	c.follow, c.skip, c.newBelow = true, 0, 0
}

// scrollTo puts entry i in the middle of the dialog.
func (c *conv) scrollTo(i, w, h int, lk *look) {
	c.follow, c.anchor, c.skip = false, i, 0
	c.scrollDown(h/2, w, lk)
	if !c.follow {
		c.scrollUp(0, w, h, lk)
	}
}
