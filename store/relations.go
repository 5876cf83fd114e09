package store

import (
	"context"

	"github.com/incidentd/incidentd/model"
)

// Relations returns the batch loaders' service.
func (s *Store) Relations() model.RelationService { return relations{s} }

type relations struct{ s *Store }

func (x relations) AffectsOf(ctx context.Context, ids []string) (map[string][]model.Affect, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsRead)
	if err != nil {
		return nil, err
	}
	out := map[string][]model.Affect{}
	w := &where{}
	w.and("tenant_id = ?", p.TenantID)
	in(w, "incident_id", ids)
	x.s.stmts.Add(1)
	rows, err := x.s.db.DB.QueryContext(ctx, x.s.rebind(`SELECT incident_id, component_id, impact, impact_type_id, severity FROM incident_affects WHERE `+w.String()+` ORDER BY component_id`), w.args...)
	if err != nil {
		return nil, model.Internal(err, "load affects")
	}
	defer rows.Close()
	for rows.Next() {
		var inc string
		var a model.Affect
		var impact int
		if err := rows.Scan(&inc, &a.ComponentID, &impact, &a.TypeID, &a.Severity); err != nil {
			return nil, model.Internal(err, "load affects")
		}
		a.Impact = model.Impact(impact)
		out[inc] = append(out[inc], a)
	}
	return out, rows.Err()
}

func (x relations) ComponentsByID(ctx context.Context, ids []string) (map[string]*model.Component, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsRead)
	if err != nil {
		return nil, err
	}
	w := &where{}
	w.and("tenant_id = ?", p.TenantID)
	in(w, "id", ids)
	x.s.stmts.Add(1)
	rows, err := x.s.db.DB.QueryContext(ctx, x.s.rebind(`SELECT id, tenant_id, display_name, name_key, labels, created_at, updated_at, created_by, updated_by
		FROM components WHERE `+w.String()), w.args...)
	if err != nil {
		return nil, model.Internal(err, "load components")
	}
	defer rows.Close()
	out := map[string]*model.Component{}
	for rows.Next() {
		var r componentRow
		if err := rows.Scan(&r.ID, &r.TenantID, &r.DisplayName, &r.NameKey, &r.Labels, &r.CreatedAt, &r.UpdatedAt, &r.CreatedBy, &r.UpdatedBy); err != nil {
			return nil, model.Internal(err, "load components")
		}
		out[r.ID] = r.toModel()
	}
	return out, rows.Err()
}

func (x relations) AffectingOf(ctx context.Context, ids []string) (map[string][]model.AffectingIncident, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsRead)
	if err != nil {
		return nil, err
	}
	w := &where{}
	w.and("a.tenant_id = ?", p.TenantID)
	in(w, "a.component_id", ids)
	x.s.stmts.Add(1)
	rows, err := x.s.db.DB.QueryContext(ctx, x.s.rebind(`SELECT a.component_id, i.id, i.title, a.impact, a.impact_type_id, a.severity FROM incident_affects a
		JOIN incidents i ON i.id = a.incident_id AND i.tenant_id = a.tenant_id
		WHERE `+w.String()+` AND NOT i.is_deleted AND i.status IN ('open', 'investigating')
		ORDER BY a.impact DESC, a.severity DESC, i.created_at DESC`), w.args...)
	if err != nil {
		return nil, model.Internal(err, "load affecting incidents")
	}
	defer rows.Close()
	out := map[string][]model.AffectingIncident{}
	for rows.Next() {
		var comp string
		var a model.AffectingIncident
		var impact int
		if err := rows.Scan(&comp, &a.ID, &a.Title, &impact, &a.TypeID, &a.Severity); err != nil {
			return nil, model.Internal(err, "load affecting incidents")
		}
		a.Impact = model.Impact(impact)
		out[comp] = append(out[comp], a)
	}
	return out, rows.Err()
}

func (x relations) IncidentsByID(ctx context.Context, ids []string) (map[string]*model.Incident, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsRead)
	if err != nil {
		return nil, err
	}
	w := &where{}
	w.and("tenant_id = ?", p.TenantID)
	w.and("NOT is_deleted")
	in(w, "id", ids)
	rows, err := x.s.queryIncidents(ctx, "SELECT "+incidentColumns+" FROM incidents WHERE "+w.String(), w.args...)
	if err != nil {
		return nil, model.Internal(err, "load incidents")
	}
	out := make(map[string]*model.Incident, len(rows))
	for i := range rows {
		out[rows[i].ID] = rows[i].toModel()
	}
	return out, nil
}

func (x relations) UpdatesOf(ctx context.Context, ids []string) (map[string][]model.IncidentUpdate, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsRead)
	if err != nil {
		return nil, err
	}
	w := &where{}
	w.and("tenant_id = ?", p.TenantID)
	in(w, "incident_id", ids)
	x.s.stmts.Add(1)
	rows, err := x.s.db.DB.QueryContext(ctx, x.s.rebind(`SELECT incident_id, ord, display_name, description, created_at, created_by
		FROM incident_updates WHERE `+w.String()+` ORDER BY incident_id, ord`), w.args...)
	if err != nil {
		return nil, model.Internal(err, "load updates")
	}
	defer rows.Close()
	out := map[string][]model.IncidentUpdate{}
	for rows.Next() {
		var inc string
		var u model.IncidentUpdate
		var at dbTime
		if err := rows.Scan(&inc, &u.Order, &u.DisplayName, &u.Description, &at, &u.CreatedBy); err != nil {
			return nil, model.Internal(err, "load updates")
		}
		u.CreatedAt = at.Time
		out[inc] = append(out[inc], u)
	}
	return out, rows.Err()
}
