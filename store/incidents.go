package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/incidentd/incidentd/model"
)

// incidentRow is an incident as stored, and as events carry it (JSON).
type incidentRow struct {
	ID           string     `json:"id"`
	TenantID     string     `json:"tenantId"`
	Title        string     `json:"title"`
	Description  *string    `json:"description"`
	Severity     string     `json:"severity"`
	SeverityRank int        `json:"-"`
	Status       string     `json:"status"`
	StatusRank   int        `json:"-"`
	Service      *string    `json:"service"`
	Tags         stringList `json:"tags"`
	OccurredAt   dbTime     `json:"occurredAt"`
	ResolvedAt   *dbTime    `json:"resolvedAt"`
	CreatedAt    dbTime     `json:"createdAt"`
	UpdatedAt    dbTime     `json:"updatedAt"`
	CreatedBy    string     `json:"createdBy"`
	UpdatedBy    string     `json:"updatedBy"`
	IsDeleted    bool       `json:"isDeleted"`
	PhaseGen     *int       `json:"phaseGeneration,omitempty"`
	PhaseOrder   *int       `json:"phaseOrder,omitempty"`
}

// columns are the scan destinations of incidentColumns.
func (r *incidentRow) columns() []any {
	return []any{&r.ID, &r.TenantID, &r.Title, &r.Description, &r.Severity, &r.SeverityRank, &r.Status, &r.StatusRank,
		&r.Service, &r.Tags, &r.OccurredAt, &r.ResolvedAt, &r.CreatedAt, &r.UpdatedAt, &r.CreatedBy, &r.UpdatedBy,
		&r.IsDeleted, &r.PhaseGen, &r.PhaseOrder}
}

// outerIncidentColumns is incidentColumns of alias for a row that an
// outer join may leave empty: the columns that are never NULL then read
// as placeholders, so that the row scans (the caller ignores it).
func outerIncidentColumns(alias string) string {
	defaults := map[string]string{"id": "''", "tenant_id": "''", "title": "''", "severity": "''", "severity_rank": "0",
		"status": "''", "status_rank": "0", "tags": "'[]'", "occurred_at": placeholderTime, "created_at": placeholderTime,
		"updated_at": placeholderTime, "created_by": "''", "updated_by": "''", "is_deleted": "false"}
	cols := strings.Split(incidentColumns, ", ")
	for i, c := range cols {
		if d, ok := defaults[c]; ok {
			cols[i] = "COALESCE(" + alias + "." + c + ", " + d + ")"
		} else {
			cols[i] = alias + "." + c
		}
	}
	return strings.Join(cols, ", ")
}

// placeholderTime is a constant both stores read as a time.
const placeholderTime = "'1970-01-01T00:00:00.000000Z'"

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

// queryIncidents runs a SELECT of incidentColumns on db (the pool or a
// transaction). Rows are scanned by hand: reflective mapping was a third of
// a list's CPU.
func (s *Store) queryIncidents(ctx context.Context, db querier, q string, args ...any) ([]incidentRow, error) {
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanIncidents(rows)
}

// scanIncidents reads rows of incidentColumns.
func scanIncidents(rows rows) ([]incidentRow, error) {
	out, _, err := scanIncidentsWith(rows, false)
	return out, err
}

// scanIncidentsWith reads rows of incidentColumns, followed by
// affectsColumn when affects is set.
func scanIncidentsWith(rows rows, affects bool) ([]incidentRow, [][]model.Affect, error) {
	var out []incidentRow
	var as [][]model.Affect
	for rows.Next() {
		var r incidentRow
		var raw sql.NullString
		dest := r.columns()
		if affects {
			dest = append(dest, &raw)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, err
		}
		out = append(out, r)
		if affects {
			a, err := decodeAffects(raw.String)
			if err != nil {
				return nil, nil, err
			}
			as = append(as, a)
		}
	}
	return out, as, rows.Err()
}

// Incidents returns the incident service.
func (s *Store) Incidents() model.IncidentService { return incidents{s} }

type incidents struct{ s *Store }

func (x incidents) Create(ctx context.Context, in model.IncidentCreate) (*model.Incident, []model.Affect, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsWrite)
	if err != nil {
		return nil, nil, err
	}
	var inc *model.Incident
	var affects []model.Affect
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		if inc, affects, err = x.insertTx(ctx, t, p, in); err != nil {
			return err
		}
		return x.s.appendChange(ctx, t, model.EventIncidentCreated, nil, inc, nil)
	})
	if err != nil {
		return nil, nil, domainOrInternal(err, "create incident")
	}
	return inc, affects, nil
}

// insertTx stores a new incident with its affects and audit row in t;
// the caller records its event (callers that write more to the incident
// in the same transaction record one event at the end).
func (x incidents) insertTx(ctx context.Context, t *txn, p *model.Principal, in model.IncidentCreate) (*model.Incident, []model.Affect, error) {
	inc, err := model.NewIncident(in, model.NewID("inc", 12), p.TenantID, p.ActorID, x.s.clock.Now())
	if err != nil {
		return nil, nil, err
	}
	if inc.Phase != nil {
		if err := x.s.checkPhase(ctx, t, p.TenantID, *inc.Phase); err != nil {
			return nil, nil, err
		}
	}
	affects, _, err := x.s.checkAffects(ctx, t, p.TenantID, in.Affects)
	if err != nil {
		return nil, nil, err
	}
	r := toRow(inc)
	if err := t.exec(ctx, "insert incident", `INSERT INTO incidents (`+incidentColumns+`, title_fold, description_fold)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
		r.ID, r.TenantID, r.Title, r.Description, r.Severity, r.SeverityRank, r.Status, r.StatusRank, r.Service, r.Tags,
		r.OccurredAt, nullTime(r.ResolvedAt), r.CreatedAt, r.UpdatedAt, r.CreatedBy, r.UpdatedBy, r.IsDeleted, r.PhaseGen, r.PhaseOrder,
		model.Fold(r.Title), foldPtr(r.Description)); err != nil {
		return nil, nil, err
	}
	if err := x.s.insertAffects(ctx, t, p.TenantID, inc.ID, affects); err != nil {
		return nil, nil, err
	}
	changes := model.IncidentChanges(nil, inc)
	if len(affects) > 0 {
		changes["affects"] = model.Change{After: model.AffectsChange(affects)}
	}
	if err := x.s.audit(ctx, t, p, model.AuditIncidentCreate, "incident", inc.ID, changes); err != nil {
		return nil, nil, err
	}
	return inc, affects, nil
}

func (x incidents) Get(ctx context.Context, id string) (*model.Incident, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsRead)
	if err != nil {
		return nil, err
	}
	rows, err := x.s.queryIncidents(ctx, x.s, "SELECT "+incidentColumns+" FROM incidents WHERE id = $1 AND tenant_id = $2 AND NOT is_deleted", id, p.TenantID)
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
	r, affects, err := x.s.incidentWithAffects(ctx, x.s, p.TenantID, id, false)
	if err != nil {
		return nil, nil, domainOrInternal(err, "get incident")
	}
	return r.toModel(), affects, nil
}

// incidentWithAffects reads a live incident with its affects in one
// statement (the affects ride along as one JSON array column), locking its
// row on PostgreSQL when lock is set (db is then a write transaction).
func (s *Store) incidentWithAffects(ctx context.Context, db querier, tenant, id string, lock bool) (*incidentRow, []model.Affect, error) {
	q := `SELECT ` + incidentColumns + `, ` + s.affectsColumn() + `
		FROM incidents WHERE id = $1 AND tenant_id = $2 AND NOT is_deleted`
	if lock && s.pg {
		q += " FOR UPDATE"
	}
	var r incidentRow
	var affects sql.NullString
	err := db.queryRow(ctx, q, id, tenant).Scan(append(r.columns(), &affects)...)
	if isNoRows(err) {
		return nil, nil, model.NotFound("Incident", id)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read incident: %w", err)
	}
	out, err := decodeAffects(affects.String)
	if err != nil {
		return nil, nil, err
	}
	return &r, out, nil
}

// affectsColumn is a column of the incidents row's affects as one JSON
// array of [component, level, type, severity] (see decodeAffects).
func (s *Store) affectsColumn() string {
	agg := `json_agg(json_build_array(a.component_id, a.impact, a.impact_type_id, a.severity))::text`
	if !s.pg {
		agg = `json_group_array(json_array(a.component_id, a.impact, a.impact_type_id, a.severity))`
	}
	return `(SELECT ` + agg + ` FROM incident_affects a WHERE a.incident_id = incidents.id AND a.tenant_id = incidents.tenant_id)`
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
func (x incidents) lockLive(ctx context.Context, t *txn, tenant, id string) (*incidentRow, error) {
	rows, err := x.s.lockIncidents(ctx, t, tenant, id)
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
func (s *Store) lockIncidents(ctx context.Context, t *txn, tenant string, ids ...string) ([]incidentRow, error) {
	w := &where{}
	w.and("tenant_id = " + w.arg(tenant))
	w.and("NOT is_deleted")
	in(w, "id", ids)
	q := "SELECT " + incidentColumns + " FROM incidents WHERE " + w.String() + " ORDER BY id"
	if s.pg {
		q += " FOR UPDATE" // rows are locked as they come, in id order
	}
	rows, err := s.queryIncidents(ctx, t, q, w.args...)
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

func (x incidents) Update(ctx context.Context, id string, patch model.IncidentPatch) (*model.Incident, []model.Affect, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsWrite)
	if err != nil {
		return nil, nil, err
	}
	if errs := patch.Validate(); len(errs) > 0 {
		return nil, nil, model.Invalid("Invalid request body", errs...)
	}
	var out *model.Incident
	var affects []model.Affect
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		row, before, err := x.s.incidentWithAffects(ctx, t, p.TenantID, id, true)
		if err != nil {
			return err
		}
		cur := row.toModel()
		if err := x.s.checkVersion(ctx, t, p.TenantID, cur.Version()); err != nil {
			return err
		}
		a, err := x.applyTx(ctx, t, p, cur, before, patch)
		if out, affects = a.next, a.affects; err != nil || !a.changed {
			return err
		}
		if err := x.s.appendUpdates(ctx, t, p, id, false, a.entries); err != nil {
			return err
		}
		return x.s.appendChange(ctx, t, model.EventIncidentUpdated, cur, a.next, a.components)
	})
	if err != nil {
		return nil, nil, domainOrInternal(err, "update incident")
	}
	return out, affects, nil
}

// applied is what applyTx did: the incident after the patch (and its
// affects, when the caller passed them or the patch set them), the
// timeline entries the change calls for, and the components whose affect
// it moved.
type applied struct {
	next       *model.Incident
	affects    []model.Affect
	changed    bool
	entries    []model.UpdateInput
	components []string
}

// applyTx writes a patch to cur, an incident the caller has locked, with its
// audit row; the caller appends the entries and the event. before are
// cur's affects when the caller has read them (nil: read here if needed).
func (x incidents) applyTx(ctx context.Context, t *txn, p *model.Principal, cur *model.Incident, before []model.Affect, patch model.IncidentPatch) (applied, error) {
	id := cur.ID
	now := x.s.clock.Now()
	next, patched, err := model.ApplyPatch(cur, patch, p.ActorID, now)
	if err != nil {
		return applied{}, err
	}
	var diff model.AffectsDiff
	var names map[string]string
	after := before
	if patch.Affects.Set {
		if after, names, err = x.s.checkAffects(ctx, t, p.TenantID, patch.Affects.Value); err != nil {
			return applied{}, err
		}
		if before == nil {
			if before, err = x.s.affectsOf(ctx, t, p.TenantID, id); err != nil {
				return applied{}, err
			}
		}
		diff = model.DiffAffects(before, after)
	}
	if !patched && diff.Empty() {
		return applied{next: cur, affects: before}, nil
	}
	if next.Phase != nil && (cur.Phase == nil || *cur.Phase != *next.Phase) {
		if err := x.s.checkPhase(ctx, t, p.TenantID, *next.Phase); err != nil {
			return applied{}, err
		}
	}
	if !patched { // only the affects change; the incident is updated all the same
		n := *cur
		n.UpdatedAt, n.UpdatedBy = model.NormalizeTime(now), p.ActorID
		next = &n
	}
	r := toRow(next)
	err = t.exec(ctx, "update incident", `UPDATE incidents SET title = $1, description = $2, severity = $3, severity_rank = $4,
		status = $5, status_rank = $6, service = $7, tags = $8, occurred_at = $9, resolved_at = $10, updated_at = $11, updated_by = $12,
		is_deleted = $13, phase_generation = $14, phase_order = $15, title_fold = $16, description_fold = $17 WHERE id = $18 AND tenant_id = $19`,
		r.Title, r.Description, r.Severity, r.SeverityRank, r.Status, r.StatusRank, r.Service, r.Tags, r.OccurredAt, nullTime(r.ResolvedAt),
		r.UpdatedAt, r.UpdatedBy, r.IsDeleted, r.PhaseGen, r.PhaseOrder, model.Fold(r.Title), foldPtr(r.Description), id, p.TenantID)
	if err != nil {
		return applied{}, err
	}
	if err := x.s.writeAffects(ctx, t, p.TenantID, id, diff); err != nil {
		return applied{}, err
	}
	changes := model.IncidentChanges(cur, next)
	if !diff.Empty() {
		changes["affects"] = model.Change{Before: model.AffectsChange(before), After: model.AffectsChange(after)}
	}
	if err := x.s.audit(ctx, t, p, model.AuditIncidentUpdate, "incident", id, changes); err != nil {
		return applied{}, err
	}
	var failed error
	entries := model.AutoUpdates(cur, next, x.s.phaseNamer(ctx, t, p.TenantID, &failed))
	if failed != nil {
		return applied{}, failed
	}
	if !diff.Empty() {
		if err := x.s.nameRemoved(ctx, t, p.TenantID, diff.Removed, names); err != nil {
			return applied{}, err
		}
		entries = append(entries, model.AffectsUpdate(diff, func(id string) string { return names[id] }))
	}
	return applied{next: next, affects: after, changed: true, entries: entries, components: diff.Components()}, nil
}

// nameRemoved adds the display names of removed components to names.
func (s *Store) nameRemoved(ctx context.Context, t *txn, tenant string, removed []model.Affect, names map[string]string) error {
	var ids []string
	for _, a := range removed {
		ids = append(ids, a.ComponentID)
	}
	got, err := s.namesOf(ctx, t, "components", tenant, ids, false)
	if err != nil {
		return fmt.Errorf("name components: %w", err)
	}
	maps.Copy(names, got)
	return nil
}

// appendUpdates adds entries to an incident's timeline, numbered after the
// last (fresh: the incident was created in this transaction, so it has none).
func (s *Store) appendUpdates(ctx context.Context, t *txn, p *model.Principal, incident string, fresh bool, entries []model.UpdateInput) error {
	if len(entries) == 0 {
		return nil
	}
	at := newDBTime(s.clock.Now())
	w := &where{}
	var values []string
	if s.pg && !fresh {
		// Every row's subquery reads the statement's snapshot, which does not
		// hold the rows this statement inserts (SQLite's would: it numbers
		// from a separate read below). No RETURNING, so it can be queued.
		inc, tenant := w.arg(incident), w.arg(p.TenantID)
		for i, u := range entries {
			values = append(values, "("+tenant+", "+inc+", (SELECT COALESCE(MAX(ord) + 1, 0) FROM incident_updates WHERE incident_id = "+inc+
				" AND tenant_id = "+tenant+") + "+w.arg(i)+", "+w.arg(u.DisplayName)+", "+w.arg(u.Description)+", "+w.arg(at)+", "+w.arg(p.ActorID)+")")
		}
	} else {
		base := 0
		if !fresh {
			if err := t.queryRow(ctx, `SELECT COALESCE(MAX(ord) + 1, 0) FROM incident_updates WHERE incident_id = $1 AND tenant_id = $2`,
				incident, p.TenantID).Scan(&base); err != nil {
				return fmt.Errorf("append updates: %w", err)
			}
		}
		for i, u := range entries {
			values = append(values, "("+w.arg(p.TenantID)+", "+w.arg(incident)+", "+w.arg(base+i)+", "+w.arg(u.DisplayName)+", "+
				w.arg(u.Description)+", "+w.arg(at)+", "+w.arg(p.ActorID)+")")
		}
	}
	return t.exec(ctx, "append updates", `INSERT INTO incident_updates (tenant_id, incident_id, ord, display_name, description, created_at, created_by) VALUES `+
		strings.Join(values, ", "), w.args...)
}

// appendUpdate adds an entry to an incident's timeline, numbered after the last.
func (s *Store) appendUpdate(ctx context.Context, t *txn, p *model.Principal, incident string, in model.UpdateInput) (*model.IncidentUpdate, error) {
	now := model.NormalizeTime(s.clock.Now())
	var ord int
	// VALUES, not INSERT ... SELECT: bind parameters take their types from the columns.
	err := t.queryRow(ctx, `INSERT INTO incident_updates (tenant_id, incident_id, ord, display_name, description, created_at, created_by)
		VALUES ($1, $2, (SELECT COALESCE(MAX(ord) + 1, 0) FROM incident_updates WHERE incident_id = $2 AND tenant_id = $1), $3, $4, $5, $6) RETURNING ord`,
		p.TenantID, incident, in.DisplayName, in.Description, newDBTime(now), p.ActorID).Scan(&ord)
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
	got, err := x.s.updatesOf(ctx, x.s, p.TenantID, []string{id}, 0)
	if err != nil {
		return nil, model.Internal(err, "list updates")
	}
	if out := got[id]; out != nil {
		return out, nil
	}
	return []model.IncidentUpdate{}, nil
}

// updatesOf reads the timelines of incidents (ids of tenant), in order; with
// latest > 0, only the latest entries (of one incident).
func (s *Store) updatesOf(ctx context.Context, db querier, tenant string, ids []string, latest int) (map[string][]model.IncidentUpdate, error) {
	st := updatesStmt(tenant, ids, latest)
	rows, err := db.query(ctx, st.sql, st.args...)
	if err != nil {
		return nil, fmt.Errorf("load updates: %w", err)
	}
	defer rows.Close()
	return scanUpdates(rows, latest > 0)
}

func updatesStmt(tenant string, ids []string, latest int) stmt {
	w := &where{}
	w.and("tenant_id = " + w.arg(tenant))
	in(w, "incident_id", ids)
	q := `SELECT incident_id, ord, display_name, description, created_at, created_by FROM incident_updates WHERE ` + w.String() + ` ORDER BY incident_id, ord`
	if latest > 0 {
		q = `SELECT incident_id, ord, display_name, description, created_at, created_by FROM incident_updates WHERE ` + w.String() +
			` ORDER BY incident_id, ord DESC LIMIT ` + w.arg(latest)
	}
	return stmt{q, w.args}
}

// scanUpdates reads rows of updatesStmt (newest first when reversed: put
// back in order).
func scanUpdates(rows rows, reversed bool) (map[string][]model.IncidentUpdate, error) {
	out := map[string][]model.IncidentUpdate{}
	for rows.Next() {
		var inc string
		var u model.IncidentUpdate
		var at dbTime
		if err := rows.Scan(&inc, &u.Order, &u.DisplayName, &u.Description, &at, &u.CreatedBy); err != nil {
			return nil, fmt.Errorf("load updates: %w", err)
		}
		u.CreatedAt = at.Time
		out[inc] = append(out[inc], u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load updates: %w", err)
	}
	if reversed {
		for _, us := range out {
			slices.Reverse(us)
		}
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
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		row, err := x.lockLive(ctx, t, p.TenantID, id)
		if err != nil {
			return err
		}
		if out, err = x.s.appendUpdate(ctx, t, p, id, in); err != nil {
			return err
		}
		// A committed change is an event, so that live viewers of the
		// timeline (public status, widgets) learn of it at once.
		cur := row.toModel()
		if err := x.s.appendEvent(ctx, t, model.EventIncidentUpdateAdded, cur, cur, nil); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditIncidentUpdate, "incident", id,
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
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		row, err := x.lockLive(ctx, t, p.TenantID, id)
		if err != nil {
			return err
		}
		cur := row.toModel()
		if err := x.s.checkVersion(ctx, t, p.TenantID, cur.Version()); err != nil {
			return err
		}
		gone := *cur
		gone.IsDeleted, gone.UpdatedAt, gone.UpdatedBy = true, model.NormalizeTime(x.s.clock.Now()), p.ActorID
		if err := t.exec(ctx, "delete incident", `UPDATE incidents SET is_deleted = $1, updated_at = $2, updated_by = $3 WHERE id = $4 AND tenant_id = $5`,
			true, newDBTime(gone.UpdatedAt), p.ActorID, id, p.TenantID); err != nil {
			return err
		}
		if err := x.s.audit(ctx, t, p, model.AuditIncidentDelete, "incident", id, model.IncidentChanges(cur, &gone)); err != nil {
			return err
		}
		return x.s.appendChange(ctx, t, model.EventIncidentDeleted, cur, &gone, nil)
	})
	return domainOrInternal(err, "delete incident")
}
