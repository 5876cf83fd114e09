package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/uptrace/bun"

	"github.com/incidentd/incidentd/model"
)

type incidentRow struct {
	bun.BaseModel `bun:"table:incidents"`

	ID           string     `bun:"id,pk" json:"id"`
	TenantID     string     `bun:"tenant_id" json:"tenantId"`
	Title        string     `bun:"title" json:"title"`
	Description  *string    `bun:"description" json:"description"`
	Severity     string     `bun:"severity" json:"severity"`
	SeverityRank int        `bun:"severity_rank" json:"-"`
	Status       string     `bun:"status" json:"status"`
	StatusRank   int        `bun:"status_rank" json:"-"`
	Service      *string    `bun:"service" json:"service"`
	Tags         stringList `bun:"tags" json:"tags"`
	OccurredAt   dbTime     `bun:"occurred_at" json:"occurredAt"`
	ResolvedAt   *dbTime    `bun:"resolved_at" json:"resolvedAt"`
	CreatedAt    dbTime     `bun:"created_at" json:"createdAt"`
	UpdatedAt    dbTime     `bun:"updated_at" json:"updatedAt"`
	CreatedBy    string     `bun:"created_by" json:"createdBy"`
	UpdatedBy    string     `bun:"updated_by" json:"updatedBy"`
	IsDeleted    bool       `bun:"is_deleted" json:"isDeleted"`
	PhaseGen     *int       `bun:"phase_generation" json:"phaseGeneration,omitempty"`
	PhaseOrder   *int       `bun:"phase_order" json:"phaseOrder,omitempty"`
}

// columns are the scan destinations of incidentColumns.
func (r *incidentRow) columns() []any {
	return []any{&r.ID, &r.TenantID, &r.Title, &r.Description, &r.Severity, &r.SeverityRank, &r.Status, &r.StatusRank,
		&r.Service, &r.Tags, &r.OccurredAt, &r.ResolvedAt, &r.CreatedAt, &r.UpdatedAt, &r.CreatedBy, &r.UpdatedBy,
		&r.IsDeleted, &r.PhaseGen, &r.PhaseOrder}
}

// incidentColumns lists incidentRow's columns for hand-written queries.
const incidentColumns = "id, tenant_id, title, description, severity, severity_rank, status, status_rank, service, tags, " +
	"occurred_at, resolved_at, created_at, updated_at, created_by, updated_by, is_deleted, phase_generation, phase_order"

func toRow(i *model.Incident) *incidentRow {
	r := &incidentRow{
		ID: i.ID, TenantID: i.TenantID, Title: i.Title, Description: i.Description,
		Severity: string(i.Severity), SeverityRank: i.Severity.Rank(),
		Status: string(i.Status), StatusRank: i.Status.Rank(),
		Service: i.Service, Tags: stringList(i.Tags),
		OccurredAt: newDBTime(i.OccurredAt), ResolvedAt: newDBTimePtr(i.ResolvedAt),
		CreatedAt: newDBTime(i.CreatedAt), UpdatedAt: newDBTime(i.UpdatedAt),
		CreatedBy: i.CreatedBy, UpdatedBy: i.UpdatedBy, IsDeleted: i.IsDeleted,
	}
	if i.Phase != nil {
		g, o := i.Phase.Generation, i.Phase.Order
		r.PhaseGen, r.PhaseOrder = &g, &o
	}
	return r
}

func (r *incidentRow) toModel() *model.Incident {
	tags := []string(r.Tags)
	if tags == nil {
		tags = []string{}
	}
	inc := &model.Incident{
		ID: r.ID, TenantID: r.TenantID, Title: r.Title, Description: r.Description,
		Severity: model.Severity(r.Severity), Status: model.Status(r.Status),
		Service: r.Service, Tags: tags,
		OccurredAt: r.OccurredAt.Time, ResolvedAt: r.ResolvedAt.ptr(),
		CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time,
		CreatedBy: r.CreatedBy, UpdatedBy: r.UpdatedBy, IsDeleted: r.IsDeleted,
	}
	if r.PhaseGen != nil && r.PhaseOrder != nil {
		inc.Phase = &model.PhaseRef{Generation: *r.PhaseGen, Order: *r.PhaseOrder}
	}
	return inc
}

// Incidents returns the incident service.
func (s *Store) Incidents() model.IncidentService { return incidents{s} }

type incidents struct{ s *Store }

func (x incidents) Create(ctx context.Context, in model.IncidentCreate) (*model.Incident, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsWrite)
	if err != nil {
		return nil, err
	}
	var inc *model.Incident
	err = x.s.txBatched(ctx, func(ctx context.Context, tx bun.Tx) error {
		inc, err = x.createTx(ctx, tx, p, in)
		return err
	})
	if err != nil {
		return nil, domainOrInternal(err, "create incident")
	}
	x.s.committed()
	return inc, nil
}

// createTx stores a new incident with its affects and bookkeeping
// (counters, generation, audit row, outbox event) in tx; callers run
// x.s.committed() after commit.
func (x incidents) createTx(ctx context.Context, tx bun.Tx, p *model.Principal, in model.IncidentCreate) (*model.Incident, error) {
	inc, err := x.insertTx(ctx, tx, p, in)
	if err != nil {
		return nil, err
	}
	return inc, x.s.appendEvent(ctx, tx, model.EventIncidentCreated, nil, inc)
}

// insertTx is createTx without the event, for callers that write more to
// the incident in the same transaction and record one event at the end.
func (x incidents) insertTx(ctx context.Context, tx bun.Tx, p *model.Principal, in model.IncidentCreate) (*model.Incident, error) {
	inc, err := model.NewIncident(in, model.NewID("inc", 12), p.TenantID, p.ActorID, x.s.clock.Now())
	if err != nil {
		return nil, err
	}
	if inc.Phase != nil {
		if err := x.s.checkPhase(ctx, tx, p.TenantID, *inc.Phase); err != nil {
			return nil, err
		}
	}
	affects, _, err := x.s.checkAffects(ctx, tx, p.TenantID, in.Affects)
	if err != nil {
		return nil, err
	}
	r := toRow(inc)
	if _, err := x.s.bound(tx).ExecContext(ctx, `INSERT INTO incidents (`+incidentColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.TenantID, r.Title, r.Description, r.Severity, r.SeverityRank, r.Status, r.StatusRank, r.Service, r.Tags,
		r.OccurredAt, nullTime(r.ResolvedAt), r.CreatedAt, r.UpdatedAt, r.CreatedBy, r.UpdatedBy, r.IsDeleted, r.PhaseGen, r.PhaseOrder); err != nil {
		return nil, fmt.Errorf("insert incident: %w", err)
	}
	if err := x.s.insertAffects(ctx, tx, p.TenantID, inc.ID, affects); err != nil {
		return nil, err
	}
	if err := x.s.bookkeep(ctx, tx, p.TenantID, nil, inc); err != nil {
		return nil, err
	}
	changes := model.IncidentChanges(nil, inc)
	if len(affects) > 0 {
		changes["affects"] = model.Change{After: model.AffectsChange(affects)}
	}
	if err := x.s.audit(ctx, tx, p, model.AuditIncidentCreate, "incident", inc.ID, changes); err != nil {
		return nil, err
	}
	return inc, nil
}

func (x incidents) Get(ctx context.Context, id string) (*model.Incident, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsRead)
	if err != nil {
		return nil, err
	}
	rows, err := x.s.queryIncidents(ctx, "SELECT "+incidentColumns+" FROM incidents WHERE id = ? AND tenant_id = ? AND NOT is_deleted", id, p.TenantID)
	if err != nil {
		return nil, model.Internal(err, "get incident")
	}
	if len(rows) == 0 {
		return nil, model.NotFound("Incident", id)
	}
	return rows[0].toModel(), nil
}

func (x incidents) GetWithAffects(ctx context.Context, id string) (*model.Incident, []model.Affect, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsRead)
	if err != nil {
		return nil, nil, err
	}
	// The affects ride along as one JSON array column, so that the most
	// common read stays one round trip.
	agg := `json_agg(json_build_array(a.component_id, a.impact, a.impact_type_id, a.severity))::text`
	if !x.s.pg {
		agg = `json_group_array(json_array(a.component_id, a.impact, a.impact_type_id, a.severity))`
	}
	var r incidentRow
	var affects sql.NullString
	err = x.s.bound(x.s.db).QueryRowContext(ctx, `SELECT `+incidentColumns+`,
			(SELECT `+agg+` FROM incident_affects a WHERE a.incident_id = incidents.id AND a.tenant_id = incidents.tenant_id)
		FROM incidents WHERE id = ? AND tenant_id = ? AND NOT is_deleted`, id, p.TenantID).Scan(append(r.columns(), &affects)...)
	if isNoRows(err) {
		return nil, nil, model.NotFound("Incident", id)
	}
	if err != nil {
		return nil, nil, model.Internal(err, "get incident")
	}
	out, err := decodeAffects(affects.String)
	if err != nil {
		return nil, nil, model.Internal(err, "get incident")
	}
	return r.toModel(), out, nil
}

// decodeAffects reads a JSON array of [component, level, type, severity]
// (empty or null: none), ordered by component id.
func decodeAffects(raw string) ([]model.Affect, error) {
	out := []model.Affect{}
	if raw == "" || raw == "null" {
		return out, nil
	}
	var rows [][4]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &rows); err != nil {
		return nil, fmt.Errorf("decode affects: %w", err)
	}
	for _, row := range rows {
		var a model.Affect
		var level int
		for i, dst := range []any{&a.ComponentID, &level, &a.TypeID, &a.Severity} {
			if err := json.Unmarshal(row[i], dst); err != nil {
				return nil, fmt.Errorf("decode affects: %w", err)
			}
		}
		a.Impact = model.Impact(level)
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b model.Affect) int { return strings.Compare(a.ComponentID, b.ComponentID) })
	return out, nil
}

// lockLive loads a live incident of tenant in a write transaction, locking
// its row on PostgreSQL (SQLite's IMMEDIATE transaction already holds the
// database write lock).
func (x incidents) lockLive(ctx context.Context, tx bun.Tx, tenant, id string) (*incidentRow, error) {
	rows, err := x.s.lockIncidents(ctx, tx, tenant, id)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, model.NotFound("Incident", id)
	}
	return &rows[0], nil
}

// lockIncidents loads the live incidents among ids in one statement,
// locking their rows in id order on PostgreSQL; missing ones are absent.
func (s *Store) lockIncidents(ctx context.Context, tx bun.Tx, tenant string, ids ...string) ([]incidentRow, error) {
	w := &where{}
	w.and("tenant_id = ?", tenant)
	w.and("NOT is_deleted")
	in(w, "id", ids)
	q := "SELECT " + incidentColumns + " FROM incidents WHERE " + w.String() + " ORDER BY id"
	if s.pg {
		q += " FOR UPDATE" // rows are locked as they come, in id order
	}
	rows, err := s.queryIncidentsOn(ctx, tx, q, w.args...)
	if err != nil {
		return nil, model.Internal(err, "lock incidents")
	}
	return rows, nil
}

// nullTime passes a nullable time as a bind parameter.
func nullTime(t *dbTime) any {
	if t == nil {
		return nil
	}
	return *t
}

func (x incidents) Update(ctx context.Context, id string, patch model.IncidentPatch) (*model.Incident, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsWrite)
	if err != nil {
		return nil, err
	}
	if errs := patch.Validate(); len(errs) > 0 {
		return nil, model.Invalid("Invalid request body", errs...)
	}
	var out *model.Incident
	changed := false
	err = x.s.txBatched(ctx, func(ctx context.Context, tx bun.Tx) error {
		out, changed, err = x.updateTx(ctx, tx, p, id, patch)
		return err
	})
	if err != nil {
		return nil, domainOrInternal(err, "update incident")
	}
	if changed {
		x.s.committed()
	}
	return out, nil
}

// updateTx applies a patch with its bookkeeping in tx; changed is false for a
// patch that changes nothing. Callers run x.s.committed() after commit.
func (x incidents) updateTx(ctx context.Context, tx bun.Tx, p *model.Principal, id string, patch model.IncidentPatch) (*model.Incident, bool, error) {
	row, err := x.lockLive(ctx, tx, p.TenantID, id)
	if err != nil {
		return nil, false, err
	}
	cur := row.toModel()
	w, err := x.applyTx(ctx, tx, p, cur, patch)
	if err != nil || !w.changed {
		return w.next, false, err
	}
	if err := x.s.appendUpdates(ctx, tx, p, id, false, w.entries); err != nil {
		return nil, false, err
	}
	return w.next, true, x.s.appendEventTouching(ctx, tx, model.EventIncidentUpdated, cur, w.next, w.components)
}

// applied is what applyTx did: the incident after the patch, the timeline
// entries the change calls for, and the components whose affect it moved.
type applied struct {
	next       *model.Incident
	changed    bool
	entries    []model.UpdateInput
	components []string
}

// applyTx writes a patch to cur, an incident the caller has locked, with its
// bookkeeping and audit row; the caller appends the entries and the event.
func (x incidents) applyTx(ctx context.Context, tx bun.Tx, p *model.Principal, cur *model.Incident, patch model.IncidentPatch) (applied, error) {
	id := cur.ID
	now := x.s.clock.Now()
	next, patched, err := model.ApplyPatch(cur, patch, p.ActorID, now)
	if err != nil {
		return applied{}, err
	}
	var diff model.AffectsDiff
	var names map[string]string
	var before, after []model.Affect
	if patch.Affects.Set {
		if after, names, err = x.s.checkAffects(ctx, tx, p.TenantID, patch.Affects.Value); err != nil {
			return applied{}, err
		}
		if before, err = x.s.affectsOf(ctx, tx, p.TenantID, id); err != nil {
			return applied{}, err
		}
		diff = model.DiffAffects(before, after)
	}
	if !patched && diff.Empty() {
		return applied{next: cur}, nil
	}
	if next.Phase != nil && (cur.Phase == nil || *cur.Phase != *next.Phase) {
		if err := x.s.checkPhase(ctx, tx, p.TenantID, *next.Phase); err != nil {
			return applied{}, err
		}
	}
	if !patched { // only the affects change; the incident is updated all the same
		n := *cur
		n.UpdatedAt, n.UpdatedBy = model.NormalizeTime(now), p.ActorID
		next = &n
	}
	r := toRow(next)
	_, err = x.s.bound(tx).ExecContext(ctx, `UPDATE incidents SET title = ?, description = ?, severity = ?, severity_rank = ?,
		status = ?, status_rank = ?, service = ?, tags = ?, occurred_at = ?, resolved_at = ?, updated_at = ?, updated_by = ?,
		is_deleted = ?, phase_generation = ?, phase_order = ? WHERE id = ? AND tenant_id = ?`,
		r.Title, r.Description, r.Severity, r.SeverityRank, r.Status, r.StatusRank, r.Service, r.Tags, r.OccurredAt, nullTime(r.ResolvedAt),
		r.UpdatedAt, r.UpdatedBy, r.IsDeleted, r.PhaseGen, r.PhaseOrder, id, p.TenantID)
	if err != nil {
		return applied{}, fmt.Errorf("update incident: %w", err)
	}
	if err := x.s.writeAffects(ctx, tx, p.TenantID, id, diff); err != nil {
		return applied{}, err
	}
	if err := x.s.bookkeep(ctx, tx, p.TenantID, cur, next); err != nil {
		return applied{}, err
	}
	changes := model.IncidentChanges(cur, next)
	if !diff.Empty() {
		changes["affects"] = model.Change{Before: model.AffectsChange(before), After: model.AffectsChange(after)}
	}
	if err := x.s.audit(ctx, tx, p, model.AuditIncidentUpdate, "incident", id, changes); err != nil {
		return applied{}, err
	}
	var failed error
	entries := model.AutoUpdates(cur, next, x.s.phaseNamer(ctx, tx, p.TenantID, &failed))
	if failed != nil {
		return applied{}, failed
	}
	if !diff.Empty() {
		if err := x.s.nameRemoved(ctx, tx, p.TenantID, diff.Removed, names); err != nil {
			return applied{}, err
		}
		entries = append(entries, model.AffectsUpdate(diff, func(id string) string { return names[id] }))
	}
	return applied{next: next, changed: true, entries: entries, components: diff.Components()}, nil
}

// nameRemoved adds the display names of removed components to names.
func (s *Store) nameRemoved(ctx context.Context, tx bun.Tx, tenant string, removed []model.Affect, names map[string]string) error {
	var ids []string
	for _, a := range removed {
		ids = append(ids, a.ComponentID)
	}
	got, err := s.namesOf(ctx, tx, "components", tenant, ids, false)
	if err != nil {
		return fmt.Errorf("name components: %w", err)
	}
	maps.Copy(names, got)
	return nil
}

// appendUpdates adds entries to an incident's timeline, numbered after the
// last (fresh: the incident was created in this transaction, so it has none).
func (s *Store) appendUpdates(ctx context.Context, tx bun.Tx, p *model.Principal, incident string, fresh bool, entries []model.UpdateInput) error {
	if len(entries) == 0 {
		return nil
	}
	if len(entries) == 1 && !fresh && !s.pg {
		_, err := s.appendUpdate(ctx, tx, p, incident, entries[0])
		return err
	}
	at := newDBTime(s.clock.Now())
	q := `INSERT INTO incident_updates (tenant_id, incident_id, ord, display_name, description, created_at, created_by) VALUES `
	var args []any
	if s.pg && !fresh {
		// Every row's subquery reads the statement's snapshot, which does not
		// hold the rows this statement inserts (SQLite's would: it numbers
		// from a separate read below). No RETURNING, so it can be batched.
		for i, u := range entries {
			if i > 0 {
				q += ", "
			}
			q += "(?, ?, (SELECT COALESCE(MAX(ord) + 1, 0) FROM incident_updates WHERE incident_id = ? AND tenant_id = ?) + ?, ?, ?, ?, ?)"
			args = append(args, p.TenantID, incident, incident, p.TenantID, i, u.DisplayName, u.Description, at, p.ActorID)
		}
		if _, err := s.bound(tx).ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("append updates: %w", err)
		}
		return nil
	}
	base := 0
	if !fresh {
		if err := s.bound(tx).QueryRowContext(ctx, `SELECT COALESCE(MAX(ord) + 1, 0) FROM incident_updates WHERE incident_id = ? AND tenant_id = ?`, incident, p.TenantID).Scan(&base); err != nil {
			return fmt.Errorf("append updates: %w", err)
		}
	}
	for i, u := range entries {
		if i > 0 {
			q += ", "
		}
		q += "(?, ?, ?, ?, ?, ?, ?)"
		args = append(args, p.TenantID, incident, base+i, u.DisplayName, u.Description, at, p.ActorID)
	}
	if _, err := s.bound(tx).ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("append updates: %w", err)
	}
	return nil
}

// appendUpdate adds an entry to an incident's timeline, numbered after the last.
func (s *Store) appendUpdate(ctx context.Context, tx bun.Tx, p *model.Principal, incident string, in model.UpdateInput) (*model.IncidentUpdate, error) {
	now := model.NormalizeTime(s.clock.Now())
	var ord int
	// VALUES, not INSERT ... SELECT: bind parameters take their types from the columns.
	err := s.bound(tx).QueryRowContext(ctx, `INSERT INTO incident_updates (tenant_id, incident_id, ord, display_name, description, created_at, created_by)
		VALUES (?, ?, (SELECT COALESCE(MAX(ord) + 1, 0) FROM incident_updates WHERE incident_id = ? AND tenant_id = ?), ?, ?, ?, ?) RETURNING ord`,
		p.TenantID, incident, incident, p.TenantID, in.DisplayName, in.Description, newDBTime(now), p.ActorID).Scan(&ord)
	if err != nil {
		return nil, fmt.Errorf("append update: %w", err)
	}
	return &model.IncidentUpdate{Order: ord, DisplayName: in.DisplayName, Description: in.Description, CreatedAt: now, CreatedBy: p.ActorID}, nil
}

func (x incidents) Updates(ctx context.Context, id string) ([]model.IncidentUpdate, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsRead)
	if err != nil {
		return nil, err
	}
	if _, err := x.Get(ctx, id); err != nil {
		return nil, err
	}
	x.s.stmts.Add(1)
	rows, err := x.s.db.DB.QueryContext(ctx, x.s.rebind(`SELECT ord, display_name, description, created_at, created_by
		FROM incident_updates WHERE incident_id = ? AND tenant_id = ? ORDER BY ord`), id, p.TenantID)
	if err != nil {
		return nil, model.Internal(err, "list updates")
	}
	defer rows.Close()
	out := []model.IncidentUpdate{}
	for rows.Next() {
		var u model.IncidentUpdate
		var at dbTime
		if err := rows.Scan(&u.Order, &u.DisplayName, &u.Description, &at, &u.CreatedBy); err != nil {
			return nil, model.Internal(err, "list updates")
		}
		u.CreatedAt = at.Time
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, model.Internal(err, "list updates")
	}
	return out, nil
}

func (x incidents) AddUpdate(ctx context.Context, id string, in model.UpdateInput) (*model.IncidentUpdate, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsWrite)
	if err != nil {
		return nil, err
	}
	if errs := in.Validate(); len(errs) > 0 {
		return nil, model.Invalid("Invalid request body", errs...)
	}
	var out *model.IncidentUpdate
	err = x.s.txBatched(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := x.lockLive(ctx, tx, p.TenantID, id); err != nil {
			return err
		}
		if out, err = x.s.appendUpdate(ctx, tx, p, id, in); err != nil {
			return err
		}
		return x.s.audit(ctx, tx, p, model.AuditIncidentUpdate, "incident", id,
			map[string]model.Change{"updates": {After: in.DisplayName}})
	})
	if err != nil {
		return nil, domainOrInternal(err, "add update")
	}
	return out, nil
}

func (x incidents) Delete(ctx context.Context, id string) error {
	p, err := model.Authorize(ctx, model.ScopeIncidentsWrite)
	if err != nil {
		return err
	}
	err = x.s.txBatched(ctx, func(ctx context.Context, tx bun.Tx) error {
		row, err := x.lockLive(ctx, tx, p.TenantID, id)
		if err != nil {
			return err
		}
		cur := row.toModel()
		gone := *cur
		gone.IsDeleted, gone.UpdatedAt, gone.UpdatedBy = true, model.NormalizeTime(x.s.clock.Now()), p.ActorID
		_, err = x.s.bound(tx).ExecContext(ctx, `UPDATE incidents SET is_deleted = ?, updated_at = ?, updated_by = ? WHERE id = ? AND tenant_id = ?`,
			true, newDBTime(gone.UpdatedAt), p.ActorID, id, p.TenantID)
		if err != nil {
			return fmt.Errorf("delete incident: %w", err)
		}
		if err := x.s.bookkeep(ctx, tx, p.TenantID, cur, nil); err != nil {
			return err
		}
		if err := x.s.audit(ctx, tx, p, model.AuditIncidentDelete, "incident", id, model.IncidentChanges(cur, &gone)); err != nil {
			return err
		}
		return x.s.appendEvent(ctx, tx, model.EventIncidentDeleted, cur, &gone)
	})
	if err != nil {
		return domainOrInternal(err, "delete incident")
	}
	x.s.committed()
	return nil
}

// domainOrInternal passes domain errors through and wraps everything else.
func domainOrInternal(err error, context string) error {
	if err == nil {
		return nil
	}
	var e *model.Error
	if errors.As(err, &e) {
		return e
	}
	return model.Internal(err, context)
}

// bookkeep records a write of an incident (before nil: created, after nil:
// deleted): the shard's generation row first, then its counters, so that
// every writer takes these rows in one order and none can deadlock.
func (s *Store) bookkeep(ctx context.Context, tx bun.Tx, tenant string, before, after *model.Incident) error {
	shard := shardOf(ctx)
	if err := s.bumpGeneration(ctx, tx, tenant, shard); err != nil {
		return err
	}
	return s.adjustCounts(ctx, tx, tenant, shard, before, after)
}

// adjustCounts moves an incident between the (status, severity) counters of
// one shard: before nil is a creation, after nil a deletion. Rows are touched
// in key order, after the shard's generation row, so that concurrent writers
// cannot deadlock.
func (s *Store) adjustCounts(ctx context.Context, db bun.IDB, tenant string, shard int, before, after *model.Incident) error {
	type delta struct {
		status, severity string
		n                int
	}
	var ds []delta
	if before != nil {
		ds = append(ds, delta{string(before.Status), string(before.Severity), -1})
	}
	if after != nil {
		ds = append(ds, delta{string(after.Status), string(after.Severity), 1})
	}
	if len(ds) == 2 && ds[0].status == ds[1].status && ds[0].severity == ds[1].severity {
		return nil
	}
	slices.SortFunc(ds, func(a, b delta) int {
		return strings.Compare(a.status+"/"+a.severity, b.status+"/"+b.severity)
	})
	// One statement; its rows are written (and locked) in the sorted order.
	values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?), ", len(ds)), ", ")
	var args []any
	for _, d := range ds {
		args = append(args, tenant, d.status, d.severity, shard, d.n)
	}
	_, err := s.bound(db).ExecContext(ctx, `INSERT INTO incident_counts (tenant_id, status, severity, shard, n) VALUES `+values+`
		ON CONFLICT (tenant_id, status, severity, shard) DO UPDATE SET n = incident_counts.n + excluded.n`, args...)
	if err != nil {
		return fmt.Errorf("adjust counts: %w", err)
	}
	return nil
}
