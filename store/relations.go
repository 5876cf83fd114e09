package store

import (
	"context"
	"strings"

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
	w.and("tenant_id = " + w.arg(p.TenantID))
	in(w, "incident_id", ids)
	rows, err := x.s.query(ctx, `SELECT incident_id, component_id, impact, impact_type_id, severity FROM incident_affects WHERE `+w.String()+` ORDER BY component_id`, w.args...)
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
	w.and("tenant_id = " + w.arg(p.TenantID))
	in(w, "id", ids)
	got, err := x.s.queryComponents(ctx, x.s, `WHERE `+w.String(), w.args...)
	if err != nil {
		return nil, model.Internal(err, "load components")
	}
	out := make(map[string]*model.Component, len(got))
	for _, c := range got {
		out[c.ID] = c
	}
	return out, nil
}

func (x relations) AffectingOf(ctx context.Context, ids []string) (map[string][]model.AffectingIncident, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsRead)
	if err != nil {
		return nil, err
	}
	out, err := x.s.affectingOf(ctx, p.TenantID, ids)
	if err != nil {
		return nil, model.Internal(err, "load affecting incidents")
	}
	return out, nil
}

// affectingOf reads the open incidents affecting each of the tenant's
// components among ids, worst first.
func (s *Store) affectingOf(ctx context.Context, tenant string, ids []string) (map[string][]model.AffectingIncident, error) {
	w := &where{}
	w.and("a.tenant_id = " + w.arg(tenant))
	in(w, "a.component_id", ids)
	rows, err := s.query(ctx, `SELECT a.component_id, i.id, i.title, a.impact, a.impact_type_id, a.severity FROM incident_affects a
		JOIN incidents i ON i.id = a.incident_id AND i.tenant_id = a.tenant_id
		WHERE `+w.String()+` AND `+openIncident+`
		ORDER BY a.impact DESC, a.severity DESC, i.created_at DESC`, w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]model.AffectingIncident{}
	for rows.Next() {
		var comp string
		var a model.AffectingIncident
		var impact int
		if err := rows.Scan(&comp, &a.ID, &a.Title, &impact, &a.TypeID, &a.Severity); err != nil {
			return nil, err
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
	w.and("tenant_id = " + w.arg(p.TenantID))
	w.and("NOT is_deleted")
	in(w, "id", ids)
	rows, err := x.s.queryIncidents(ctx, x.s, "SELECT "+incidentColumns+" FROM incidents WHERE "+w.String(), w.args...)
	if err != nil {
		return nil, model.Internal(err, "load incidents")
	}
	out := make(map[string]*model.Incident, len(rows))
	for i := range rows {
		out[rows[i].ID] = rows[i].toModel()
	}
	return out, nil
}

func (x relations) UpdatesOf(ctx context.Context, ids []string, latest int) (map[string][]model.IncidentUpdate, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsRead)
	if err != nil {
		return nil, err
	}
	// The latest entries of each incident: a window per incident, since a
	// LIMIT would bound the batch, not each timeline.
	w := &where{}
	w.and("tenant_id = " + w.arg(p.TenantID))
	in(w, "incident_id", ids)
	rows, err := x.s.query(ctx, `SELECT incident_id, ord, display_name, description, created_at, created_by FROM (
		SELECT incident_id, ord, display_name, description, created_at, created_by,
			ROW_NUMBER() OVER (PARTITION BY incident_id ORDER BY ord DESC) AS rn
		FROM incident_updates WHERE `+w.String()+`) u
		WHERE rn <= `+w.arg(latest)+` ORDER BY incident_id, ord`, w.args...)
	if err != nil {
		return nil, model.Internal(err, "load updates")
	}
	defer rows.Close()
	out, err := scanUpdates(rows, false)
	if err != nil {
		return nil, model.Internal(err, "load updates")
	}
	return out, nil
}

// openIncident is the SQL condition "incident i is open": not deleted and
// not ended. Every read of the open incidents (affecting a component) uses it.
var openIncident = "NOT i.is_deleted AND " + openStatusOf("i.")

// openStatusOf is the condition "the incident has not ended", written once
// from the model's statuses, for a column prefix ("i.", or "").
func openStatusOf(prefix string) string {
	var open []string
	for _, st := range model.Statuses {
		if !st.Ended() {
			open = append(open, "'"+string(st)+"'")
		}
	}
	return prefix + "status IN (" + strings.Join(open, ", ") + ")"
}
