package pgstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/natterim/natter"
)

// lockUsers locks the rows of users (FOR NO KEY UPDATE, which foreign key
// checks of other writes do not wait for) in name order, and returns each
// one's inbox counter. Every write that changes a user's counters, quotas,
// keys or contacts begins with it: writes of one user then run one after
// the other, on whatever node, and two writes that lock the same users
// lock them in the same order, so they never deadlock on them. A user with
// no row is an error wrapping natter.ErrNoSuchUser.
func lockUsers(ctx context.Context, q querier, users ...natter.UserID) (map[natter.UserID]int64, error) {
	names := make([]string, 0, len(users))
	for _, u := range users {
		names = append(names, string(u))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	rows, err := q.Query(ctx,
		`SELECT name, inbox_seq FROM users WHERE name = ANY($1) ORDER BY name FOR NO KEY UPDATE`, names)
	if err != nil {
		return nil, fmt.Errorf("lock users: %w", err)
	}
	defer rows.Close()
	seqs := make(map[natter.UserID]int64, len(names))
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			return nil, fmt.Errorf("lock users: %w", err)
		}
		seqs[natter.UserID(name)] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock users: %w", err)
	}
	for _, u := range users {
		if _, ok := seqs[u]; !ok {
			return nil, fmt.Errorf("%w: %s", natter.ErrNoSuchUser, u)
		}
	}
	return seqs, nil
}

// userNames converts users for a text[] parameter.
func userNames(users []natter.UserID) []string {
	names := make([]string, len(users))
	for i, u := range users {
		names[i] = string(u)
	}
	return names
}
