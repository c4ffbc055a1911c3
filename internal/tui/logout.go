package tui

import (
	"context"

	tea "charm.land/bubbletea/v2"
)

// loggedOutMsg is the result of /logout.
type loggedOutMsg struct {
	gen int
	err error
}

// logout ends the session on the server, then lets the app forget it.
func (a *App) logout() tea.Cmd {
	if a.loggingOut {
		return nil
	}
	a.loggingOut = true
	s, gen := a.sess, a.gen
	a.setNotice(false, "logging out…")
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := s.Backend.Logout(ctx); err != nil {
			return loggedOutMsg{gen: gen, err: err}
		}
		if s.End != nil {
			if err := s.End(ctx, true); err != nil {
				return loggedOutMsg{gen: gen, err: err}
			}
		}
		return loggedOutMsg{gen: gen}
	}
}

// loggedOut goes back to the login form once /logout is through.
func (a *App) loggedOut(err error) tea.Cmd {
	a.loggingOut = false
	if err != nil {
		a.setNotice(true, "log out: %v", err)
		return nil
	}
	s := a.sess
	a.sess = nil
	a.gen++
	a.login = newLoginForm(s.Server, s.User)
	a.login.info = "logged out " + string(s.User)
	return a.login.init()
}
