package membus

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/natterim/natter"
)

// Registry is the in-process natter.Registry: a map of live sessions in
// memory, lost when the process exits (which also ends every session, so
// nothing is lost that should survive). The zero value is not usable: call
// NewRegistry.
//
// Sessions are copied on the way in and on the way out, so neither the
// caller of Put nor the caller of Sessions can change what the registry
// holds by changing a Reach slice afterwards.
type Registry struct {
	mu    sync.RWMutex
	users map[natter.UserID]map[natter.DeviceID]natter.LiveSession
}

var _ natter.Registry = (*Registry)(nil)

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{users: make(map[natter.UserID]map[natter.DeviceID]natter.LiveSession)}
}

// Put records or replaces the live session of (s.User, s.Device). A session
// without a user or device is refused with natter.ErrBadRequest.
func (r *Registry) Put(ctx context.Context, s natter.LiveSession) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("membus: put session %s/%s: %w", s.User, s.Device, err)
	}
	if s.User == "" || s.Device == "" {
		return fmt.Errorf("membus: put session %q/%q: %w: user and device are required", s.User, s.Device, natter.ErrBadRequest)
	}
	s.Reach = slices.Clone(s.Reach)
	r.mu.Lock()
	defer r.mu.Unlock()
	devs := r.users[s.User]
	if devs == nil {
		devs = make(map[natter.DeviceID]natter.LiveSession)
		r.users[s.User] = devs
	}
	devs[s.Device] = s
	return nil
}

// Delete removes the live session of (user, device) if its Conn is conn,
// and reports whether it removed it.
func (r *Registry) Delete(ctx context.Context, user natter.UserID, device natter.DeviceID, conn string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("membus: delete session %s/%s: %w", user, device, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	devs := r.users[user]
	s, ok := devs[device]
	if !ok || s.Conn != conn {
		return false, nil
	}
	delete(devs, device)
	if len(devs) == 0 {
		delete(r.users, user)
	}
	return true, nil
}

// Sessions returns user's live sessions ordered by device, or an empty
// slice if the user has none.
func (r *Registry) Sessions(ctx context.Context, user natter.UserID) ([]natter.LiveSession, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("membus: sessions of %s: %w", user, err)
	}
	r.mu.RLock()
	devs := r.users[user]
	out := make([]natter.LiveSession, 0, len(devs))
	for _, s := range devs {
		s.Reach = slices.Clone(s.Reach)
		out = append(out, s)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b natter.LiveSession) int { return cmp.Compare(a.Device, b.Device) })
	return out, nil
}
