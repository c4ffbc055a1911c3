package history

import "errors"

var (
	// ErrEmptyQuery is returned by Search for a query with no word to
	// look for: empty, blank, or only punctuation.
	ErrEmptyQuery = errors.New("nothing to search for")
	// ErrBadCursor is returned by Page for a cursor it did not make.
	ErrBadCursor = errors.New("not a history cursor")
)
