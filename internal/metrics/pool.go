package metrics

import (
	"database/sql"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// PoolSource reads the store's connection pool on each scrape: PostgreSQL's
// pgxpool statistics when PG returns some, else database/sql's (SQLite).
type PoolSource struct {
	PG  func() *pgxpool.Stat
	SQL func() sql.DBStats
}

// WatchPool exports the store's connection pool as incidentd_db_pool_*,
// read on each scrape (nothing is sampled in between).
func (m *Metrics) WatchPool(src PoolSource) {
	m.reg.MustRegister(poolCollector{src})
}

func poolDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("incidentd_db_pool_"+name, help, nil, nil)
}

var (
	poolAcquired = poolDesc("acquired_connections", "Connections in use by a query or transaction now.")
	poolIdle     = poolDesc("idle_connections", "Open connections waiting for work now.")
	poolTotal    = poolDesc("total_connections", "Open connections now (acquired, idle and being opened).")
	poolMax      = poolDesc("max_connections", "The pool's size limit.")
	// PostgreSQL only: database/sql does not count acquisitions.
	poolAcquires        = poolDesc("acquires_total", "Connections handed out by the pool (PostgreSQL).")
	poolAcquireSeconds  = poolDesc("acquire_duration_seconds_total", "Time spent acquiring connections, waits included (PostgreSQL).")
	poolEmptyAcquires   = poolDesc("empty_acquires_total", "Acquisitions that found no idle connection and waited for one (PostgreSQL; SQLite: waits for a connection).")
	poolCanceledAcquire = poolDesc("canceled_acquires_total", "Acquisitions given up because their context ended (PostgreSQL).")
)

type poolCollector struct{ src PoolSource }

func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquired, poolIdle, poolTotal, poolMax,
		poolAcquires, poolAcquireSeconds, poolEmptyAcquires, poolCanceledAcquire} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	if c.src.PG != nil {
		if s := c.src.PG(); s != nil {
			gauge(poolAcquired, float64(s.AcquiredConns()))
			gauge(poolIdle, float64(s.IdleConns()))
			gauge(poolTotal, float64(s.TotalConns()))
			gauge(poolMax, float64(s.MaxConns()))
			counter(poolAcquires, float64(s.AcquireCount()))
			counter(poolAcquireSeconds, s.AcquireDuration().Seconds())
			counter(poolEmptyAcquires, float64(s.EmptyAcquireCount()))
			counter(poolCanceledAcquire, float64(s.CanceledAcquireCount()))
			return
		}
	}
	if c.src.SQL != nil {
		s := c.src.SQL()
		gauge(poolAcquired, float64(s.InUse))
		gauge(poolIdle, float64(s.Idle))
		gauge(poolTotal, float64(s.OpenConnections))
		gauge(poolMax, float64(s.MaxOpenConnections))
		counter(poolEmptyAcquires, float64(s.WaitCount))
	}
}
