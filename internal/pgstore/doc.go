// Package pgstore implements natter.Store on PostgreSQL with pgx, so that
// several natterd nodes share one store. See Open.
package pgstore

import "github.com/jackc/pgx/v5/pgxpool"

// pool is the connection pool type the store is built on.
type pool = pgxpool.Pool
