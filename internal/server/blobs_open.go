package server

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/natterim/natter/internal/blobs"
	"github.com/natterim/natter/internal/hub"
	"github.com/natterim/natter/internal/pgblobs"
)

// blobConns is the pool size of the PostgreSQL chunk store: chunk uploads
// and fetches are few next to messages, and each holds a connection only
// for one statement.
const blobConns = 4

// openBlobs opens where file chunks' bytes are kept: the blobs folder in
// cfg.DataDir for a node on its own (SQLite), or PostgreSQL when the store
// is PostgreSQL, so that every node of a cluster serves every chunk. The
// function returned closes it.
func openBlobs(ctx context.Context, cfg Config) (hub.Blobs, func(), error) {
	if cfg.Store == "" {
		b, err := blobs.Open(filepath.Join(cfg.DataDir, "blobs"))
		if err != nil {
			return nil, nil, err
		}
		return b, func() {}, nil
	}
	b, err := pgblobs.Open(ctx, cfg.Store, blobConns)
	if err != nil {
		return nil, nil, fmt.Errorf("--store: file chunks: %w", err)
	}
	return b, b.Close, nil
}
