package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/natterim/natter"
)

// loginTimeout bounds a login, the trust question included.
const loginTimeout = 3 * time.Minute

// fieldWidth is the width of the form's fields.
const fieldWidth = 32

// loginForm asks for the server, the user name and the password, and
// whether to sign up or log in; then, on a first connection, whether to
// trust the server's certificate.
type loginForm struct {
	fields [3]textinput.Model // server, user, password
	focus  int                // 0-2 a field, 3 the log in / sign up choice
	signup bool
	busy   bool
	run    *loginRun
	ask    *trustAsk // the question on screen
	err    string
	info   string
}

const (
	fieldServer = iota
	fieldUser
	fieldPassword
	fieldMode
)

func newLoginForm(server string, user natter.UserID) *loginForm {
	f := &loginForm{}
	for i, ph := range []string{"host:port", "your name", ""} {
		t := textinput.New()
		t.Prompt = ""
		t.Placeholder = ph
		t.SetVirtualCursor(false)
		t.SetWidth(fieldWidth - 1) // the input draws one cell more, for the cursor
		plain := lipgloss.NewStyle()
		state := textinput.StyleState{Text: plain, Placeholder: plain.Faint(true), Suggestion: plain.Faint(true), Prompt: plain}
		t.SetStyles(textinput.Styles{Focused: state, Blurred: state, Cursor: textinput.CursorStyle{Shape: tea.CursorBar}})
		t.CharLimit = 256
		f.fields[i] = t
	}
	f.fields[fieldPassword].EchoMode = textinput.EchoPassword
	f.fields[fieldPassword].EchoCharacter = '•'
	f.fields[fieldServer].SetValue(server)
	f.fields[fieldUser].SetValue(string(user))
	switch {
	case server == "":
		f.focus = fieldServer
	case user == "":
		f.focus = fieldUser
	default:
		f.focus = fieldPassword
	}
	return f
}

func (f *loginForm) init() tea.Cmd {
	return f.setFocus(f.focus)
}

func (f *loginForm) setFocus(i int) tea.Cmd {
	f.focus = (i + 4) % 4
	var cmd tea.Cmd
	for j := range f.fields {
		if j == f.focus {
			cmd = f.fields[j].Focus()
		} else {
			f.fields[j].Blur()
		}
	}
	return cmd
}

// key handles a key on the form.
func (f *loginForm) key(k tea.KeyPressMsg, login LoginFunc) tea.Cmd {
	if f.ask != nil {
		switch strings.ToLower(k.String()) {
		case "y", "n", "esc":
			q := f.ask
			f.ask = nil
			q.reply <- k.String() == "y" || k.String() == "Y"
			return f.run.wait()
		}
		return nil
	}
	if f.busy {
		return nil
	}
	switch k.String() {
	case "tab", "down":
		return f.setFocus(f.focus + 1)
	case "shift+tab", "up":
		return f.setFocus(f.focus - 1)
	case "enter":
		if f.focus < fieldPassword {
			return f.setFocus(f.focus + 1)
		}
		return f.submit(login)
	case "ctrl+t":
		f.signup = !f.signup
		return nil
	}
	if f.focus == fieldMode {
		switch k.String() {
		case "left", "right", "space", "h", "l":
			f.signup = !f.signup
		}
		return nil
	}
	var cmd tea.Cmd
	f.fields[f.focus], cmd = f.fields[f.focus].Update(k)
	return cmd
}

// paste pastes into the focused field.
func (f *loginForm) paste(p tea.PasteMsg) tea.Cmd {
	if f.focus > fieldPassword || f.busy || f.ask != nil {
		return nil
	}
	var cmd tea.Cmd
	f.fields[f.focus], cmd = f.fields[f.focus].Update(p)
	return cmd
}

// submit checks the form and starts the login.
func (f *loginForm) submit(login LoginFunc) tea.Cmd {
	f.err, f.info = "", ""
	server := strings.TrimSpace(f.fields[fieldServer].Value())
	user := strings.TrimSpace(f.fields[fieldUser].Value())
	pw := f.fields[fieldPassword].Value()
	switch {
	case login == nil:
		f.err = "this natter cannot log in from here: use natter login"
	case server == "":
		f.err = "which server? (host:port)"
		return f.setFocus(fieldServer)
	case natter.ValidateUserID(user) != nil:
		f.err = natter.ValidateUserID(user).Error()
		return f.setFocus(fieldUser)
	case pw == "":
		f.err = "the password is empty"
		return f.setFocus(fieldPassword)
	}
	if f.err != "" {
		return nil
	}
	f.busy = true
	req := LoginRequest{Server: server, User: natter.UserID(user), Password: pw, Signup: f.signup}
	return startLogin(login, req)
}

// loginRun is one login in progress: its trust questions and its end.
type loginRun struct {
	asks chan trustAsk
	done chan loginMsg
}

// trustAsk is the trust-on-first-use question; the answer goes to reply.
type trustAsk struct {
	server, fingerprint string
	reply               chan bool
}

// loginMsg is a step of a login: a question (ask) or its end.
type loginMsg struct {
	run  *loginRun
	ask  *trustAsk
	sess *Session
	err  error
}

// startLogin runs login on its own goroutine; its steps come back as
// loginMsgs.
func startLogin(login LoginFunc, req LoginRequest) tea.Cmd {
	return func() tea.Msg {
		r := &loginRun{asks: make(chan trustAsk), done: make(chan loginMsg, 1)}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
			defer cancel()
			trust := func(ctx context.Context, server, fp string) bool {
				q := trustAsk{server: server, fingerprint: fp, reply: make(chan bool, 1)}
				select {
				case r.asks <- q:
				case <-ctx.Done():
					return false
				}
				select {
				case ok := <-q.reply:
					return ok
				case <-ctx.Done():
					return false
				}
			}
			s, err := login(ctx, req, trust)
			r.done <- loginMsg{run: r, sess: s, err: err}
		}()
		return r.wait()()
	}
}

// wait returns the login's next step.
func (r *loginRun) wait() tea.Cmd {
	return func() tea.Msg {
		select {
		case q := <-r.asks:
			return loginMsg{run: r, ask: &q}
		case m := <-r.done:
			return m
		}
	}
}

// result takes a step of the login: the session once it is through.
func (f *loginForm) result(m loginMsg) (*Session, tea.Cmd) {
	f.run = m.run
	if m.ask != nil {
		f.ask = m.ask
		return nil, nil
	}
	f.busy = false
	if m.err != nil {
		f.err = m.err.Error()
		return nil, nil
	}
	if m.sess == nil {
		f.err = "the login gave no session"
		return nil, nil
	}
	return m.sess, nil
}

// view renders the form in w×h cells, with the cursor's position.
func (f *loginForm) view(w, h int, st styles) (string, *tea.Cursor) {
	const labelW = 11
	var lines []string
	var cur *tea.Cursor
	lines = append(lines, st.title.Render("natter"), st.dim.Render("sign up or log in"), "")
	labels := [3]string{"server", "user", "password"}
	for i := range f.fields {
		label := fit(labels[i], labelW)
		if i == f.focus && f.ask == nil {
			label = st.bold.Render(label)
			if c := f.fields[i].Cursor(); c != nil {
				cur = c
				cur.Y += len(lines)
				cur.X += labelW + 2
			}
		} else {
			label = st.dim.Render(label)
		}
		lines = append(lines, label+"[ "+fit(f.fields[i].View(), fieldWidth)+" ]")
	}
	login, signup := "( ) log in", "( ) sign up"
	if f.signup {
		signup = "(•) sign up"
	} else {
		login = "(•) log in"
	}
	mode := login + "   " + signup
	if f.focus == fieldMode {
		mode = st.sel.Render(mode)
	}
	lines = append(lines, strings.Repeat(" ", labelW)+mode, "")
	verb := "log in"
	if f.signup {
		verb = "sign up"
	}
	switch {
	case f.ask != nil:
		cur = nil
		lines = append(lines,
			st.warn.Render("First connection to "+clean(f.ask.server, false)+"."),
			"Its certificate's SHA-256 fingerprint is",
		)
		for _, l := range fingerprintLines(f.ask.fingerprint) {
			lines = append(lines, "  "+st.bold.Render(l))
		}
		lines = append(lines,
			"Compare it with the \"certificate sha256=\" line natterd logs at start.",
			st.bold.Render("Trust this server from now on? (y/n)"))
	case f.busy:
		lines = append(lines, st.dim.Render("connecting…"))
	default:
		lines = append(lines, st.dim.Render(fmt.Sprintf("enter: %s · tab: next field · ctrl-t: log in/sign up · ctrl-c: quit", verb)))
	}
	if f.info != "" {
		lines = append(lines, "", st.online.Render(clean(f.info, false)))
	}
	if f.err != "" {
		lines = append(lines, "", st.err.Render(clean(f.err, false)))
	}
	box := lipgloss.NewStyle().Padding(1, 2).Render(strings.Join(lines, "\n"))
	bw, bh := lipgloss.Size(box)
	x, y := max((w-bw)/2, 0), max((h-bh)/2, 0)
	if cur != nil {
		cur.X += x + 2
		cur.Y += y + 1
	}
	return lipgloss.Place(w, h, lipgloss.Left, lipgloss.Top, lipgloss.NewStyle().MarginLeft(x).MarginTop(y).Render(box)), cur
}

// fingerprintLines groups a hex fingerprint for reading aloud.
func fingerprintLines(fp string) []string {
	var groups []string
	for i := 0; i < len(fp); i += 4 {
		groups = append(groups, fp[i:min(i+4, len(fp))])
	}
	var out []string
	for i := 0; i < len(groups); i += 8 {
		out = append(out, strings.Join(groups[i:min(i+8, len(groups))], " "))
	}
	return out
}
