package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/incidentd/incidentd/model"
)

// checkAffects resolves an affects list against the tenant: every component
// and impact type must exist (a missing one is a business-rule violation
// naming the item). On PostgreSQL the rows are locked FOR SHARE until
// commit, so that a concurrent delete of one waits for this write and then
// sees its affects. It returns the affects and the components' names.
func (s *Store) checkAffects(ctx context.Context, t *txn, tenant string, inputs []model.AffectInput) ([]model.Affect, map[string]string, error) {
	if len(inputs) == 0 {
		return []model.Affect{}, map[string]string{}, nil
	}
	var compIDs, typeIDs []string
	for _, a := range inputs {
		compIDs = append(compIDs, a.ComponentID)
		if _, ok := model.BuiltInImpactType(a.TypeID); !ok {
			typeIDs = append(typeIDs, a.TypeID)
		}
	}
	names, err := s.namesOf(ctx, t, "components", tenant, compIDs, true)
	if err != nil {
		return nil, nil, fmt.Errorf("check components: %w", err)
	}
	types, err := s.namesOf(ctx, t, "impact_types", tenant, typeIDs, true)
	if err != nil {
		return nil, nil, fmt.Errorf("check impact types: %w", err)
	}
	var errs []model.FieldError
	for i, a := range inputs {
		field := "affects[" + strconv.Itoa(i) + "]"
		if _, ok := names[a.ComponentID]; !ok {
			errs = append(errs, model.FieldError{Field: field + ".reference", Message: "no component " + a.ComponentID + " in this tenant"})
		}
		_, builtIn := model.BuiltInImpactType(a.TypeID)
		if _, ok := types[a.TypeID]; !builtIn && !ok {
			errs = append(errs, model.FieldError{Field: field + ".type", Message: "no impact type " + a.TypeID + " in this tenant"})
		}
	}
	if len(errs) > 0 {
		return nil, nil, model.BusinessRule("affects must name components and impact types of this tenant", errs...)
	}
	return model.ResolveAffects(inputs), names, nil
}

// namesOf returns the display names of the tenant's rows of table (components
// or impact_types) among ids; share locks them FOR SHARE on PostgreSQL, in
// id order.
func (s *Store) namesOf(ctx context.Context, db querier, table, tenant string, ids []string, share bool) (map[string]string, error) {
	names := map[string]string{}
	if len(ids) == 0 {
		return names, nil
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	w := &where{}
	w.and("tenant_id = " + w.arg(tenant))
	in(w, "id", ids)
	q := `SELECT id, display_name FROM ` + table + ` WHERE ` + w.String() + ` ORDER BY id`
	if share && s.pg {
		q += " FOR SHARE"
	}
	rows, err := db.query(ctx, q, w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		names[id] = name
	}
	return names, rows.Err()
}

// checkPhase checks that ref points into an existing generation.
func (s *Store) checkPhase(ctx context.Context, t *txn, tenant string, ref model.PhaseRef) error {
	l, err := s.phases(ctx, t, tenant, ref.Generation)
	if err != nil {
		return err
	}
	if l == nil {
		cur, err := s.phases(ctx, t, tenant, 0)
		if err != nil {
			return err
		}
		return model.BusinessRule("phase must point into an existing phase generation", model.FieldError{Field: "phase.generation",
			Message: fmt.Sprintf("no phase generation %d (the newest is %d)", ref.Generation, cur.Generation)})
	}
	if ref.Order >= len(l.Phases) {
		return model.BusinessRule("phase.order is outside its generation", model.FieldError{Field: "phase.order",
			Message: fmt.Sprintf("phase.order must be between 0 and %d in generation %d", len(l.Phases)-1, ref.Generation)})
	}
	return nil
}

// phaseNamer names phase refs for timeline entries, reading each generation
// once. A failed read (it also sends the transaction's queued writes) is
// kept in *failed for the caller to return.
func (s *Store) phaseNamer(ctx context.Context, t *txn, tenant string, failed *error) func(model.PhaseRef) string {
	cache := map[int]*model.PhaseList{}
	return func(r model.PhaseRef) string {
		l, ok := cache[r.Generation]
		if !ok {
			var err error
			if l, err = s.phases(ctx, t, tenant, r.Generation); err != nil && *failed == nil {
				*failed = err
			}
			cache[r.Generation] = l
		}
		return l.Name(r)
	}
}

// affectsOf reads one incident's affects in t, by component id.
func (s *Store) affectsOf(ctx context.Context, t *txn, tenant, incident string) ([]model.Affect, error) {
	rows, err := t.query(ctx, `SELECT component_id, impact, impact_type_id, severity FROM incident_affects
		WHERE incident_id = $1 AND tenant_id = $2 ORDER BY component_id`, incident, tenant)
	if err != nil {
		return nil, fmt.Errorf("load affects: %w", err)
	}
	defer rows.Close()
	var out []model.Affect
	for rows.Next() {
		var a model.Affect
		var impact int
		if err := rows.Scan(&a.ComponentID, &impact, &a.TypeID, &a.Severity); err != nil {
			return nil, fmt.Errorf("load affects: %w", err)
		}
		a.Impact = model.Impact(impact)
		out = append(out, a)
	}
	return out, rows.Err()
}

// writeAffects applies a diff of an incident's affects.
func (s *Store) writeAffects(ctx context.Context, t *txn, tenant, incident string, d model.AffectsDiff) error {
	for _, a := range d.Removed {
		if err := t.exec(ctx, "remove affect", `DELETE FROM incident_affects WHERE incident_id = $1 AND component_id = $2 AND tenant_id = $3`,
			incident, a.ComponentID, tenant); err != nil {
			return err
		}
	}
	for _, a := range d.Changed {
		if err := t.exec(ctx, "change affect", `UPDATE incident_affects SET impact = $1, impact_type_id = $2, severity = $3
			WHERE incident_id = $4 AND component_id = $5 AND tenant_id = $6`, int(a.Impact), a.TypeID, a.Severity, incident, a.ComponentID, tenant); err != nil {
			return err
		}
	}
	return s.insertAffects(ctx, t, tenant, incident, d.Added)
}

// insertAffects adds affects to an incident, in batches of one statement.
func (s *Store) insertAffects(ctx context.Context, t *txn, tenant, incident string, as []model.Affect) error {
	const batch = 200
	for len(as) > 0 {
		n := min(len(as), batch)
		w := &where{}
		tn, inc := w.arg(tenant), w.arg(incident)
		values := make([]string, n)
		for i, a := range as[:n] {
			values[i] = "(" + tn + ", " + inc + ", " + w.arg(a.ComponentID) + ", " + w.arg(int(a.Impact)) + ", " + w.arg(a.TypeID) + ", " + w.arg(a.Severity) + ")"
		}
		if err := t.exec(ctx, "insert affects", `INSERT INTO incident_affects (tenant_id, incident_id, component_id, impact, impact_type_id, severity) VALUES `+
			strings.Join(values, ", "), w.args...); err != nil {
			return err
		}
		as = as[n:]
	}
	return nil
}
