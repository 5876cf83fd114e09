package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/uptrace/bun"

	"github.com/incidentd/incidentd/model"
)

// Ingest returns the monitoring ingestion service.
func (s *Store) Ingest() model.IngestService { return ingest{s} }

type ingest struct{ s *Store }

// Report runs seed 001's rules in one transaction under a per-tenant lock
// (PostgreSQL advisory lock; SQLite's single writer), so that concurrent
// reports see each other's effects: twenty reports of one component open one
// incident, and an escalation never leaves a component in two incidents.
func (g ingest) Report(ctx context.Context, r model.ComponentReport) (*model.IngestResult, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return nil, err
	}
	if !p.Has(model.ScopeIncidentsWrite) {
		return nil, model.Forbidden("this credential lacks the scope incidents:write")
	}
	if errs := r.Validate(); len(errs) > 0 {
		return nil, model.Invalid("Invalid request body", errs...)
	}
	if r.Text == "" {
		r.Text = "Incident"
	}
	res, comp, err := g.fastPath(ctx, p, r)
	if err != nil || res != nil {
		return res, domainOrInternal(err, "ingest component status")
	}
	inc := incidents(g)
	var target string
	var created bool
	wrote := false
	err = g.s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if g.s.pg {
			if _, err := g.s.bound(tx).ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, "ingest:"+p.TenantID); err != nil {
				return fmt.Errorf("lock ingestion: %w", err)
			}
		}
		// The component was found by the fast path; what follows is decided
		// again under the lock, from the current state.
		// An active maintenance covering the component: change nothing, answer it.
		if m, err := (maintenance(g)).activeFor(ctx, tx, p.TenantID, comp.ID); err != nil || m != nil {
			if m != nil {
				res = &model.IngestResult{Maintenance: m, Impact: model.ImpactMaintenance, AffectCount: 1,
					Affects: []model.Affect{model.MonitoringAffect(comp.ID, model.ImpactMaintenance)}}
			}
			return err
		}
		open, err := g.openIncidents(ctx, tx, p.TenantID, comp.ID, r.Impact)
		if err != nil {
			return err
		}
		d := model.DecideIngest(open, comp.ID, r.Impact)
		target = d.Target
		// Lock the incidents this decision writes, in id order, before any
		// write: the events lock and the bookkeeping rows come after row locks
		// in every transaction, so none can wait on another in a cycle.
		involved := slices.Compact(slices.Sorted(slices.Values([]string{d.Source, d.Target})))
		for _, id := range involved {
			if id == "" {
				continue
			}
			if _, err := (incidents(g)).lockLive(ctx, tx, p.TenantID, id); err != nil {
				return err
			}
		}
		switch d.Action {
		case model.IngestNoChange:
		case model.IngestCreate, model.IngestMoveToNew:
			if d.Source != "" {
				if err := g.detach(ctx, tx, p, d.Source, comp, r.Impact, false); err != nil {
					return err
				}
			}
			created, err := inc.createTx(ctx, tx, p, model.IncidentCreate{Title: r.Text, Severity: r.Impact.Severity(),
				Tags: []string{"monitoring"}, OccurredAt: g.s.clock.Now()})
			if err != nil {
				return err
			}
			target = created.ID
			if err := g.attach(ctx, tx, p, target, comp, r.Impact, "Incident opened by monitoring"); err != nil {
				return err
			}
		case model.IngestAdd:
			if err := g.attach(ctx, tx, p, target, comp, r.Impact, "Component added by monitoring"); err != nil {
				return err
			}
		case model.IngestMove:
			if err := g.detach(ctx, tx, p, d.Source, comp, r.Impact, d.CloseSource); err != nil {
				return err
			}
			if err := g.attach(ctx, tx, p, target, comp, r.Impact, "Component moved here by monitoring"); err != nil {
				return err
			}
		case model.IngestRaise:
			a := model.MonitoringAffect(comp.ID, r.Impact)
			if _, err := g.s.bound(tx).ExecContext(ctx, `UPDATE incident_affects SET impact = ?, impact_type_id = ?, severity = ? WHERE incident_id = ? AND component_id = ? AND tenant_id = ?`,
				int(a.Impact), a.TypeID, a.Severity, target, comp.ID, p.TenantID); err != nil {
				return fmt.Errorf("raise impact: %w", err)
			}
			// The severity follows the impact up, never down (a person may have set it higher).
			var sev string
			if err := g.s.bound(tx).QueryRowContext(ctx, `SELECT severity FROM incidents WHERE id = ? AND tenant_id = ?`, target, p.TenantID).Scan(&sev); err != nil {
				return fmt.Errorf("raise: %w", err)
			}
			patch := model.IncidentPatch{}
			if r.Impact.Severity().Rank() > model.Severity(sev).Rank() {
				patch.Severity = model.Some(r.Impact.Severity())
			}
			if _, _, err := inc.updateTx(ctx, tx, p, target, patch); err != nil {
				return err
			}
			if err := g.touch(ctx, tx, p, target); err != nil {
				return err
			}
			if err := g.appendUpdate(ctx, tx, p, target, "Impact raised by monitoring",
				fmt.Sprintf("%s is now at impact %s", comp.DisplayName, r.Impact)); err != nil {
				return err
			}
		}
		wrote = d.Action != model.IngestNoChange
		created = d.Action == model.IngestCreate || d.Action == model.IngestMoveToNew
		return nil
	})
	if err != nil {
		return nil, domainOrInternal(err, "ingest component status")
	}
	if wrote {
		g.s.committed()
	}
	if res != nil { // a maintenance answered under the lock
		return res, nil
	}
	// Read the answer after commit, outside the lock: it is the state just
	// after this report (or a moment later), and the lock stays short.
	res, err = g.result(ctx, g.s.db, p.TenantID, target)
	if err != nil {
		return nil, model.Internal(err, "ingest result")
	}
	res.Created = created
	return res, nil
}

// findComponent returns the one component with the report's name whose
// labels include every attribute.
func (g ingest) findComponent(ctx context.Context, db bun.IDB, tenant string, r model.ComponentReport) (*model.Component, error) {
	rows, err := g.s.bound(db).QueryContext(ctx, `SELECT id, tenant_id, display_name, name_key, labels, created_at, updated_at, created_by, updated_by
		FROM components WHERE tenant_id = ? AND name_key = ?`, tenant, model.NameKey(r.Name))
	if err != nil {
		return nil, fmt.Errorf("find component: %w", err)
	}
	defer rows.Close()
	var found []*model.Component
	for rows.Next() {
		var row componentRow
		if err := rows.Scan(&row.ID, &row.TenantID, &row.DisplayName, &row.NameKey, &row.Labels, &row.CreatedAt, &row.UpdatedAt, &row.CreatedBy, &row.UpdatedBy); err != nil {
			return nil, fmt.Errorf("find component: %w", err)
		}
		c := row.toModel()
		if c.DisplayName != r.Name {
			continue
		}
		match := true
		for k, v := range r.Attributes {
			if got, ok := c.Labels[k]; !ok || got != v {
				match = false
			}
		}
		if match {
			found = append(found, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find component: %w", err)
	}
	switch len(found) {
	case 0:
		return nil, model.Invalid("Invalid request body", model.FieldError{Field: "name",
			Message: fmt.Sprintf("no component named %q with attributes %s", r.Name, describeLabels(r.Attributes))})
	case 1:
		return found[0], nil
	}
	return nil, model.Invalid("Invalid request body", model.FieldError{Field: "attributes",
		Message: fmt.Sprintf("%d components are named %q with these attributes: give more attributes", len(found), r.Name)})
}

func describeLabels(m map[string]string) string {
	if len(m) == 0 {
		return "(none)"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}

// openIncidents gathers what the decision looks at, in three targeted
// queries rather than every open incident's components: the open incident
// affecting the component (with its size), and the newest open incident
// whose impact is the requested one.
func (g ingest) openIncidents(ctx context.Context, tx bun.Tx, tenant, component string, impact model.Impact) ([]model.OpenIncident, error) {
	var open []model.OpenIncident
	var cur string
	var curImpact, size int
	err := g.s.bound(tx).QueryRowContext(ctx, `SELECT a.incident_id, a.impact FROM incident_affects a
		JOIN incidents i ON i.id = a.incident_id AND i.tenant_id = a.tenant_id
		WHERE a.tenant_id = ? AND a.component_id = ? AND NOT i.is_deleted AND i.status IN ('open', 'investigating')
		ORDER BY a.impact DESC LIMIT 1`, tenant, component).Scan(&cur, &curImpact)
	switch {
	case err == nil:
		if err := g.s.bound(tx).QueryRowContext(ctx, `SELECT count(*) FROM incident_affects WHERE incident_id = ? AND tenant_id = ?`, cur, tenant).Scan(&size); err != nil {
			return nil, fmt.Errorf("incident size: %w", err)
		}
		open = append(open, model.OpenIncident{ID: cur, Size: size, Components: map[string]model.Impact{component: model.Impact(curImpact)}})
	case !isNoRows(err):
		return nil, fmt.Errorf("current incident: %w", err)
	}
	rows, err := g.s.bound(tx).QueryContext(ctx, `SELECT i.id FROM incidents i JOIN incident_affects a ON a.incident_id = i.id AND a.tenant_id = i.tenant_id
		WHERE i.tenant_id = ? AND NOT i.is_deleted AND i.status IN ('open', 'investigating')
		GROUP BY i.id, i.created_at HAVING MAX(a.impact) = ? ORDER BY i.created_at DESC, i.id DESC LIMIT 2`, tenant, int(impact))
	if err != nil {
		return nil, fmt.Errorf("incident of the impact: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("incident of the impact: %w", err)
		}
		if id != cur {
			// The decision takes the first incident of the impact it meets: put it first.
			open = append([]model.OpenIncident{{ID: id, Components: map[string]model.Impact{"": impact}}}, open...)
			break
		}
	}
	return open, rows.Err()
}

// touch locks an incident's row (REST writes lock it too, so timeline
// numbering and status checks cannot race), checks that it is still open,
// and records an incident.updated event so that live clients see the change.
func (g ingest) touch(ctx context.Context, tx bun.Tx, p *model.Principal, incident string) error {
	row, err := (incidents(g)).lockLive(ctx, tx, p.TenantID, incident)
	if err != nil {
		return err
	}
	cur := row.toModel()
	if cur.Status.Ended() {
		return model.Conflict("incident " + incident + " was closed meanwhile; send the report again")
	}
	return g.s.appendEvent(ctx, tx, model.EventIncidentUpdated, cur, cur)
}

func (g ingest) attach(ctx context.Context, tx bun.Tx, p *model.Principal, incident string, c *model.Component, impact model.Impact, title string) error {
	if err := g.touch(ctx, tx, p, incident); err != nil {
		return err
	}
	if err := g.s.insertAffects(ctx, tx, p.TenantID, incident, []model.Affect{model.MonitoringAffect(c.ID, impact)}); err != nil {
		return fmt.Errorf("attach component: %w", err)
	}
	return g.appendUpdate(ctx, tx, p, incident, title, fmt.Sprintf("%s %s at impact %s", c.DisplayName, describeLabels(c.Labels), impact))
}

func (g ingest) detach(ctx context.Context, tx bun.Tx, p *model.Principal, incident string, c *model.Component, impact model.Impact, closeIt bool) error {
	if err := g.touch(ctx, tx, p, incident); err != nil {
		return err
	}
	if _, err := g.s.bound(tx).ExecContext(ctx, `DELETE FROM incident_affects WHERE incident_id = ? AND component_id = ? AND tenant_id = ?`,
		incident, c.ID, p.TenantID); err != nil {
		return fmt.Errorf("detach component: %w", err)
	}
	if err := g.appendUpdate(ctx, tx, p, incident, "Component moved by monitoring",
		fmt.Sprintf("%s moved to an incident of impact %s", c.DisplayName, impact)); err != nil {
		return err
	}
	if !closeIt {
		return nil
	}
	if _, _, err := (incidents(g)).updateTx(ctx, tx, p, incident, model.IncidentPatch{Status: model.Some(model.StatusClosed)}); err != nil {
		return err
	}
	return g.appendUpdate(ctx, tx, p, incident, "Closed by system", "its last component moved to another incident")
}

func (g ingest) appendUpdate(ctx context.Context, tx bun.Tx, p *model.Principal, incident, title, text string) error {
	_, err := g.s.appendUpdate(ctx, tx, p, incident, model.UpdateInput{DisplayName: title, Description: text})
	return err
}

// Answers carry at most this many components and the latest this many
// updates (with the full counts); a report about one component should not
// ship an incident of a thousand.
const (
	reportComponents = 100
	reportUpdates    = 20
)

func (g ingest) result(ctx context.Context, db bun.IDB, tenant, id string) (*model.IngestResult, error) {
	incs, err := g.s.queryIncidentsOn(ctx, db, "SELECT "+incidentColumns+" FROM incidents WHERE id = ? AND tenant_id = ?", id, tenant)
	if err != nil {
		return nil, fmt.Errorf("load incident: %w", err)
	}
	if len(incs) == 0 {
		return nil, fmt.Errorf("load incident: %s not found", id)
	}
	res := &model.IngestResult{Incident: incs[0].toModel(), Impact: -1}
	var worst *int
	if err := g.s.bound(db).QueryRowContext(ctx, `SELECT MAX(impact), COUNT(*) FROM incident_affects WHERE incident_id = ? AND tenant_id = ?`, id, tenant).
		Scan(&worst, &res.AffectCount); err != nil {
		return nil, fmt.Errorf("load impact: %w", err)
	}
	if worst != nil {
		res.Impact = model.Impact(*worst)
	}
	rows, err := g.s.bound(db).QueryContext(ctx, `SELECT component_id, impact, impact_type_id, severity FROM incident_affects WHERE incident_id = ? AND tenant_id = ? ORDER BY component_id LIMIT ?`,
		id, tenant, reportComponents)
	if err != nil {
		return nil, fmt.Errorf("load affects: %w", err)
	}
	for rows.Next() {
		var a model.Affect
		var impact int
		if err := rows.Scan(&a.ComponentID, &impact, &a.TypeID, &a.Severity); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load affects: %w", err)
		}
		a.Impact = model.Impact(impact)
		res.Affects = append(res.Affects, a)
	}
	rows.Close()
	urows, err := g.s.bound(db).QueryContext(ctx, `SELECT ord, display_name, description, created_at, created_by FROM incident_updates
		WHERE incident_id = ? AND tenant_id = ? ORDER BY ord DESC LIMIT ?`, id, tenant, reportUpdates)
	if err != nil {
		return nil, fmt.Errorf("load updates: %w", err)
	}
	defer urows.Close()
	for urows.Next() {
		var u model.IncidentUpdate
		var at dbTime
		if err := urows.Scan(&u.Order, &u.DisplayName, &u.Description, &at, &u.CreatedBy); err != nil {
			return nil, fmt.Errorf("load updates: %w", err)
		}
		u.CreatedAt = at.Time
		res.Updates = append(res.Updates, u)
	}
	slices.Reverse(res.Updates)
	if n := len(res.Updates); n > 0 {
		res.UpdateCount = res.Updates[n-1].Order + 1 // orders run 0, 1, 2, ...
	}
	return res, urows.Err()
}

// fastPath answers the common report, "still down at the same impact", with
// reads only and no lock: maintenance covering the component, or an open
// incident already affecting it at the same or a higher impact. Anything else
// goes to the locked path, which decides again from scratch.
func (g ingest) fastPath(ctx context.Context, p *model.Principal, r model.ComponentReport) (*model.IngestResult, *model.Component, error) {
	comp, err := g.findComponent(ctx, g.s.db, p.TenantID, r)
	if err != nil {
		return nil, nil, err
	}
	if m, err := (maintenance(g)).activeFor(ctx, g.s.db, p.TenantID, comp.ID); err != nil || m != nil {
		if m == nil {
			return nil, nil, err
		}
		return &model.IngestResult{Maintenance: m, Impact: model.ImpactMaintenance, AffectCount: 1,
			Affects: []model.Affect{model.MonitoringAffect(comp.ID, model.ImpactMaintenance)}}, comp, nil
	}
	var incident string
	var impact int
	err = g.s.bound(g.s.db).QueryRowContext(ctx, `SELECT a.incident_id, a.impact FROM incident_affects a
		JOIN incidents i ON i.id = a.incident_id AND i.tenant_id = a.tenant_id
		WHERE a.tenant_id = ? AND a.component_id = ? AND NOT i.is_deleted AND i.status IN ('open', 'investigating')
		ORDER BY a.impact DESC LIMIT 1`, p.TenantID, comp.ID).Scan(&incident, &impact)
	if isNoRows(err) || (err == nil && model.Impact(impact) < r.Impact) {
		return nil, comp, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("fast path: %w", err)
	}
	res, err := g.result(ctx, g.s.db, p.TenantID, incident)
	return res, comp, err
}

func (g ingest) Status(ctx context.Context, q model.ComponentQuery) ([]model.ComponentState, int, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsRead)
	if err != nil {
		return nil, 0, err
	}
	if !p.Has(model.ScopeIncidentsRead) { // the answer names incidents
		return nil, 0, model.Forbidden("this credential lacks the scope incidents:read")
	}
	page, err := components(g).List(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	out := make([]model.ComponentState, len(page.Items))
	if len(page.Items) == 0 {
		return out, page.TotalCount, nil
	}
	index := map[string]int{}
	w := &where{}
	w.and("a.tenant_id = ?", p.TenantID)
	ids := make([]string, len(page.Items))
	for i, c := range page.Items {
		out[i].Component = c
		index[c.ID] = i
		ids[i] = c.ID
	}
	in(w, "a.component_id", ids)
	g.s.stmts.Add(1)
	rows, err := g.s.db.DB.QueryContext(ctx, g.s.rebind(`SELECT a.component_id, i.id, i.title, a.impact, a.impact_type_id, a.severity FROM incident_affects a
		JOIN incidents i ON i.id = a.incident_id AND i.tenant_id = a.tenant_id
		WHERE `+w.String()+` AND NOT i.is_deleted AND i.status IN ('open', 'investigating')
		ORDER BY a.impact DESC, a.severity DESC, i.created_at DESC`), w.args...)
	if err != nil {
		return nil, 0, model.Internal(err, "component status")
	}
	defer rows.Close()
	for rows.Next() {
		var comp string
		var a model.AffectingIncident
		var impact int
		if err := rows.Scan(&comp, &a.ID, &a.Title, &impact, &a.TypeID, &a.Severity); err != nil {
			return nil, 0, model.Internal(err, "component status")
		}
		a.Impact = model.Impact(impact)
		out[index[comp]].Incidents = append(out[index[comp]].Incidents, a)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, model.Internal(err, "component status")
	}
	return out, page.TotalCount, nil
}
