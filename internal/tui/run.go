package tui

import (
	"context"
	"errors"
	"fmt"

	tea "charm.land/bubbletea/v2"
)

// Run runs the terminal UI until the user quits (Ctrl-C, /quit) or ctx
// ends. When it returns, the live session (if any) has been ended with
// Session.End(ctx, false): the app's session stays stored, and the next run
// goes straight to the contact list.
func Run(ctx context.Context, cfg Config) error {
	a := New(cfg)
	opts := []tea.ProgramOption{tea.WithContext(ctx)}
	if cfg.Input != nil {
		opts = append(opts, tea.WithInput(cfg.Input))
	}
	if cfg.Output != nil {
		opts = append(opts, tea.WithOutput(cfg.Output))
	}
	opts = append(opts, cfg.ProgramOptions...)
	_, err := tea.NewProgram(a, opts...).Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		err = nil // cancelled: a normal way to leave
	}
	if s := a.Session(); s != nil && s.End != nil {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		defer cancel()
		if eerr := s.End(ectx, false); eerr != nil && err == nil {
			err = fmt.Errorf("close the session: %w", eerr)
		}
	}
	return err
}
