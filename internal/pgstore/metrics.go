package pgstore

import (
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// registerMetrics registers the pool's figures (pgxpool.Stat) with reg, read
// at each scrape: natter_pg_pool_*. Acquisitions that had to wait, and how
// long they waited in all, tell whether Options.MaxConns is too small for
// the node's load; connections opened and closed tell whether they are
// lost (a database restarting, a proxy cutting idle connections).
func registerMetrics(reg prometheus.Registerer, pool *pgxpool.Pool) error {
	gauge := func(name, help string, f func(*pgxpool.Stat) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(pool.Stat()) })
	}
	counter := func(name, help string, f func(*pgxpool.Stat) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(pool.Stat()) })
	}
	cs := []prometheus.Collector{
		gauge("natter_pg_pool_max_conns", "The PostgreSQL pool's size (--store's pool_max_conns).",
			func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }),
		gauge("natter_pg_pool_conns", "PostgreSQL connections open (in use, idle or being opened).",
			func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }),
		gauge("natter_pg_pool_acquired_conns", "PostgreSQL connections running a statement or transaction.",
			func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }),
		gauge("natter_pg_pool_idle_conns", "PostgreSQL connections open and idle.",
			func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) }),
		counter("natter_pg_pool_acquires_total", "Connections taken from the PostgreSQL pool.",
			func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) }),
		counter("natter_pg_pool_empty_acquires_total", "Connections taken from the PostgreSQL pool that had to wait for one (none idle).",
			func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) }),
		counter("natter_pg_pool_acquire_seconds_total", "Time spent waiting for PostgreSQL pool connections.",
			func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() }),
		counter("natter_pg_pool_canceled_acquires_total", "Waits for a PostgreSQL pool connection given up (the caller's context ended).",
			func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) }),
		counter("natter_pg_pool_new_conns_total", "PostgreSQL connections opened.",
			func(s *pgxpool.Stat) float64 { return float64(s.NewConnsCount()) }),
	}
	var errs []error
	for _, c := range cs {
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}
