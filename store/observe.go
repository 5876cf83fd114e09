package store

import (
	"database/sql"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/incidentd/incidentd/model"
)

// PoolStat returns the PostgreSQL pool's statistics (for metrics), or nil
// on SQLite.
func (s *Store) PoolStat() *pgxpool.Stat {
	if s.pool == nil {
		return nil
	}
	return s.pool.Stat()
}

// DBStats returns database/sql's statistics of the SQLite connections (for
// metrics); on PostgreSQL, of the database/sql view that migrations use.
func (s *Store) DBStats() sql.DBStats { return s.sqldb.Stats() }

// IngestMaintenance is the decision of a report that an active maintenance
// window answered: the ingestion rules were not consulted.
const IngestMaintenance = "maintenance"

// ingestDecisions names model.DecideIngest's actions.
var ingestDecisions = map[model.IngestAction]string{
	model.IngestNoChange: "no_change", model.IngestCreate: "create", model.IngestAdd: "add",
	model.IngestMove: "move", model.IngestMoveToNew: "move_to_new", model.IngestRaise: "raise",
}

// OnIngestDecision registers f to be told, after each monitoring report
// succeeded, what it decided: no_change, create, add, move, move_to_new,
// raise (model.DecideIngest's actions) or maintenance.
func (s *Store) OnIngestDecision(f func(decision string)) { s.onIngest.Store(&f) }

// OnPublication sets a function told of every change made through this
// store that may change a tenant's public status without an event: its
// publication, its components, its maintenance (the public streams follow
// at once; other instances' within their refresh interval).
func (s *Store) OnPublication(f func(tenant string)) { s.onPublication.Store(&f) }

// publicChanged tells the OnPublication hook.
func (s *Store) publicChanged(tenant string) {
	if f := s.onPublication.Load(); f != nil {
		(*f)(tenant)
	}
}

// noteIngest tells the OnIngestDecision hook what a report decided.
func (s *Store) noteIngest(res *model.IngestResult, a model.IngestAction) {
	f := s.onIngest.Load()
	if f == nil {
		return
	}
	if res != nil && res.Maintenance != nil {
		(*f)(IngestMaintenance)
		return
	}
	(*f)(ingestDecisions[a])
}
