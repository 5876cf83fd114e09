package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/incidentd/incidentd/model"
)

// Catalogue returns the impact type, severity and phase service.
func (s *Store) Catalogue() model.CatalogueService { return catalogue{s} }

type catalogue struct{ s *Store }

type impactTypeRow struct {
	ID          string
	TenantID    string
	DisplayName string
	NameKey     string
	Description string
	CreatedAt   dbTime
	UpdatedAt   dbTime
	CreatedBy   string
	UpdatedBy   string
}

func (r *impactTypeRow) toModel() *model.ImpactType {
	return &model.ImpactType{ID: r.ID, DisplayName: r.DisplayName, Description: r.Description, Level: -1,
		CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time, CreatedBy: r.CreatedBy, UpdatedBy: r.UpdatedBy}
}

type severityRow struct {
	TenantID    string
	NameKey     string
	DisplayName string
	Value       int
	CreatedAt   dbTime
	UpdatedAt   dbTime
	CreatedBy   string
	UpdatedBy   string
}

func (r *severityRow) toModel() *model.SeverityLevel {
	return &model.SeverityLevel{DisplayName: r.DisplayName, Value: r.Value,
		CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time, CreatedBy: r.CreatedBy, UpdatedBy: r.UpdatedBy}
}

// locked runs fn in a transaction that holds the tenant's catalogue lock
// (SQLite's single writer serialises already), so that uniqueness checks
// and generation numbers hold.
func (x catalogue) locked(ctx context.Context, p *model.Principal, fn func(ctx context.Context, t *txn) error) error {
	return x.s.write(ctx, func(ctx context.Context, t *txn) error {
		if err := t.lock(ctx, "catalogue:"+p.TenantID); err != nil {
			return err
		}
		return fn(ctx, t)
	})
}

func (x catalogue) ImpactTypes(ctx context.Context) ([]model.ImpactType, error) {
	p, err := model.AuthorizeCatalogueRead(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := x.impactTypes(ctx, x.s, `WHERE tenant_id = $1 ORDER BY name_key, id`, p.TenantID)
	if err != nil {
		return nil, model.Internal(err, "list impact types")
	}
	out := model.BuiltInImpactTypes()
	for i := range rows {
		out = append(out, *rows[i].toModel())
	}
	return out, nil
}

func (x catalogue) ImpactType(ctx context.Context, id string) (*model.ImpactType, error) {
	p, err := model.AuthorizeCatalogueRead(ctx)
	if err != nil {
		return nil, err
	}
	if t, ok := model.BuiltInImpactType(id); ok {
		return &t, nil
	}
	return x.loadImpactType(ctx, x.s, p.TenantID, id, false)
}

// impactTypes reads the tenant's impact types (rest: WHERE ... ORDER/FOR).
func (x catalogue) impactTypes(ctx context.Context, db querier, rest string, args ...any) ([]impactTypeRow, error) {
	rows, err := db.query(ctx, `SELECT id, tenant_id, display_name, name_key, description, created_at, updated_at, created_by, updated_by
		FROM impact_types `+rest, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []impactTypeRow
	for rows.Next() {
		var r impactTypeRow
		if err := rows.Scan(&r.ID, &r.TenantID, &r.DisplayName, &r.NameKey, &r.Description, &r.CreatedAt, &r.UpdatedAt, &r.CreatedBy, &r.UpdatedBy); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (x catalogue) loadImpactType(ctx context.Context, db querier, tenant, id string, lock bool) (*model.ImpactType, error) {
	q := `WHERE id = $1 AND tenant_id = $2`
	if lock && x.s.pg {
		q += " FOR UPDATE"
	}
	rows, err := x.impactTypes(ctx, db, q, id, tenant)
	if err != nil {
		return nil, model.Internal(err, "load impact type")
	}
	if len(rows) == 0 {
		return nil, model.NotFound("Impact type", id)
	}
	return rows[0].toModel(), nil
}

// impactTypeNameTaken reports whether name (folded) belongs to a built-in
// type or to one of the tenant's other than except.
func (x catalogue) impactTypeNameTaken(ctx context.Context, t *txn, tenant, name, except string) error {
	for _, t := range model.BuiltInImpactTypes() {
		if model.NameKey(t.DisplayName) == model.NameKey(name) {
			return model.Conflict(fmt.Sprintf("the built-in impact type %s is named %q", t.ID, t.DisplayName))
		}
	}
	var id string
	err := t.queryRow(ctx, `SELECT id FROM impact_types WHERE tenant_id = $1 AND name_key = $2 AND id <> $3`,
		tenant, model.NameKey(name), except).Scan(&id)
	switch {
	case err == nil:
		return model.Conflict(fmt.Sprintf("impact type %s is named %q already", id, name))
	case isNoRows(err):
		return nil
	}
	return fmt.Errorf("check impact type name: %w", err)
}

func (x catalogue) CreateImpactType(ctx context.Context, in model.ImpactTypeInput) (*model.ImpactType, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return nil, err
	}
	if errs := in.Validate(true); len(errs) > 0 {
		return nil, model.Invalid("Invalid request body", errs...)
	}
	now := newDBTime(x.s.clock.Now())
	row := &impactTypeRow{ID: model.NewID("imp", 12), TenantID: p.TenantID, DisplayName: in.DisplayName.Value,
		NameKey: model.NameKey(in.DisplayName.Value), Description: in.Description.Value,
		CreatedAt: now, UpdatedAt: now, CreatedBy: p.ActorID, UpdatedBy: p.ActorID}
	err = x.locked(ctx, p, func(ctx context.Context, t *txn) error {
		var n int
		if err := t.queryRow(ctx, `SELECT count(*) FROM impact_types WHERE tenant_id = $1`, p.TenantID).Scan(&n); err != nil {
			return fmt.Errorf("count impact types: %w", err)
		}
		if n >= model.MaxCustomImpactTypes {
			return model.BusinessRule(fmt.Sprintf("a tenant may define at most %d impact types", model.MaxCustomImpactTypes))
		}
		if err := x.impactTypeNameTaken(ctx, t, p.TenantID, row.DisplayName, ""); err != nil {
			return err
		}
		if err := t.exec(ctx, "insert impact type", `INSERT INTO impact_types (id, tenant_id, display_name, name_key, description, created_at, updated_at, created_by, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, row.ID, row.TenantID, row.DisplayName, row.NameKey, row.Description,
			row.CreatedAt, row.UpdatedAt, row.CreatedBy, row.UpdatedBy); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditImpactTypeCreate, "impact_type", row.ID, map[string]model.Change{
			"displayName": {After: row.DisplayName}, "description": {After: row.Description}})
	})
	if err != nil {
		return nil, domainOrInternal(err, "create impact type")
	}
	return row.toModel(), nil
}

func builtInReadOnly(what, id string) error {
	return model.BusinessRule(fmt.Sprintf("%s %s is built in and read-only", what, id))
}

func (x catalogue) UpdateImpactType(ctx context.Context, id string, in model.ImpactTypeInput) (*model.ImpactType, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return nil, err
	}
	if errs := in.Validate(false); len(errs) > 0 {
		return nil, model.Invalid("Invalid request body", errs...)
	}
	if _, ok := model.BuiltInImpactType(id); ok {
		return nil, builtInReadOnly("impact type", id)
	}
	var out *model.ImpactType
	err = x.locked(ctx, p, func(ctx context.Context, t *txn) error {
		cur, err := x.loadImpactType(ctx, t, p.TenantID, id, true)
		if err != nil {
			return err
		}
		if err := x.s.checkVersion(ctx, t, p.TenantID, cur.Version()); err != nil {
			return err
		}
		next := *cur
		if in.DisplayName.Set {
			next.DisplayName = in.DisplayName.Value
		}
		if in.Description.Set {
			next.Description = in.Description.Value
		}
		changes := map[string]model.Change{}
		if next.DisplayName != cur.DisplayName {
			if err := x.impactTypeNameTaken(ctx, t, p.TenantID, next.DisplayName, id); err != nil {
				return err
			}
			changes["displayName"] = model.Change{Before: cur.DisplayName, After: next.DisplayName}
		}
		if next.Description != cur.Description {
			changes["description"] = model.Change{Before: cur.Description, After: next.Description}
		}
		out = cur
		if len(changes) == 0 {
			return nil
		}
		next.UpdatedAt, next.UpdatedBy = model.NormalizeTime(x.s.clock.Now()), p.ActorID
		if err := t.exec(ctx, "update impact type", `UPDATE impact_types SET display_name = $1, name_key = $2, description = $3, updated_at = $4, updated_by = $5
			WHERE id = $6 AND tenant_id = $7`, next.DisplayName, model.NameKey(next.DisplayName), next.Description,
			newDBTime(next.UpdatedAt), p.ActorID, id, p.TenantID); err != nil {
			return err
		}
		out = &next
		return x.s.audit(ctx, t, p, model.AuditImpactTypeUpdate, "impact_type", id, changes)
	})
	if err != nil {
		return nil, domainOrInternal(err, "update impact type")
	}
	return out, nil
}

func (x catalogue) DeleteImpactType(ctx context.Context, id string) error {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return err
	}
	if _, ok := model.BuiltInImpactType(id); ok {
		return builtInReadOnly("impact type", id)
	}
	err = x.locked(ctx, p, func(ctx context.Context, t *txn) error {
		// The row lock waits for incident writes that hold the type (FOR
		// SHARE), so the count below sees their affects.
		cur, err := x.loadImpactType(ctx, t, p.TenantID, id, true)
		if err != nil {
			return err
		}
		if err := x.s.checkVersion(ctx, t, p.TenantID, cur.Version()); err != nil {
			return err
		}
		var used int
		if err := t.queryRow(ctx, `SELECT count(DISTINCT incident_id) FROM incident_affects WHERE tenant_id = $1 AND impact_type_id = $2`,
			p.TenantID, id).Scan(&used); err != nil {
			return fmt.Errorf("check impact type use: %w", err)
		}
		if used > 0 {
			return model.Conflict(fmt.Sprintf("the affects of %d incident(s) use this impact type; change them first", used))
		}
		if err := t.exec(ctx, "delete impact type", `DELETE FROM impact_types WHERE id = $1 AND tenant_id = $2`, id, p.TenantID); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditImpactTypeDelete, "impact_type", id, map[string]model.Change{
			"displayName": {Before: cur.DisplayName}, "description": {Before: cur.Description}})
	})
	return domainOrInternal(err, "delete impact type")
}

func (x catalogue) Severities(ctx context.Context) ([]model.SeverityLevel, error) {
	p, err := model.AuthorizeCatalogueRead(ctx)
	if err != nil {
		return nil, err
	}
	return x.severities(ctx, x.s, p.TenantID)
}

// severities lists the built-in and the tenant's severities by value.
func (x catalogue) severities(ctx context.Context, db querier, tenant string) ([]model.SeverityLevel, error) {
	rows, err := x.severityRows(ctx, db, `WHERE tenant_id = $1`, tenant)
	if err != nil {
		return nil, model.Internal(err, "list severities")
	}
	out := model.BuiltInSeverities()
	for i := range rows {
		out = append(out, *rows[i].toModel())
	}
	slices.SortStableFunc(out, func(a, b model.SeverityLevel) int { return a.Value - b.Value })
	return out, nil
}

func (x catalogue) Severity(ctx context.Context, name string) (*model.SeverityLevel, error) {
	p, err := model.AuthorizeCatalogueRead(ctx)
	if err != nil {
		return nil, err
	}
	if l, ok := model.BuiltInSeverity(name); ok {
		return &l, nil
	}
	return x.loadSeverity(ctx, x.s, p.TenantID, name)
}

// severityRows reads the tenant's severities (rest: WHERE ...).
func (x catalogue) severityRows(ctx context.Context, db querier, rest string, args ...any) ([]severityRow, error) {
	rows, err := db.query(ctx, `SELECT tenant_id, name_key, display_name, value, created_at, updated_at, created_by, updated_by
		FROM severities `+rest, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []severityRow
	for rows.Next() {
		var r severityRow
		if err := rows.Scan(&r.TenantID, &r.NameKey, &r.DisplayName, &r.Value, &r.CreatedAt, &r.UpdatedAt, &r.CreatedBy, &r.UpdatedBy); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (x catalogue) loadSeverity(ctx context.Context, db querier, tenant, name string) (*model.SeverityLevel, error) {
	rows, err := x.severityRows(ctx, db, `WHERE tenant_id = $1 AND name_key = $2`, tenant, model.NameKey(name))
	if err != nil {
		return nil, model.Internal(err, "load severity")
	}
	if len(rows) == 0 {
		return nil, model.NotFound("Severity", name)
	}
	return rows[0].toModel(), nil
}

// severityTaken checks that no other severity (built-in or the tenant's,
// other than the one keyed except) has this name or value.
func (x catalogue) severityTaken(ctx context.Context, t *txn, tenant string, name *string, value *int, except string) error {
	all, err := x.severities(ctx, t, tenant)
	if err != nil {
		return err
	}
	for _, l := range all {
		if !l.BuiltIn && model.NameKey(l.DisplayName) == except {
			continue
		}
		if name != nil && model.NameKey(l.DisplayName) == model.NameKey(*name) {
			return model.Conflict(fmt.Sprintf("a severity is named %q already", l.DisplayName))
		}
		if value != nil && l.Value == *value {
			return model.Conflict(fmt.Sprintf("severity %q has the value %d already (a severity names the values up to its own)", l.DisplayName, l.Value))
		}
	}
	return nil
}

func (x catalogue) CreateSeverity(ctx context.Context, in model.SeverityInput) (*model.SeverityLevel, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return nil, err
	}
	if errs := in.Validate(true); len(errs) > 0 {
		return nil, model.Invalid("Invalid request body", errs...)
	}
	now := newDBTime(x.s.clock.Now())
	row := &severityRow{TenantID: p.TenantID, NameKey: model.NameKey(in.DisplayName.Value), DisplayName: in.DisplayName.Value,
		Value: in.Value.Value, CreatedAt: now, UpdatedAt: now, CreatedBy: p.ActorID, UpdatedBy: p.ActorID}
	err = x.locked(ctx, p, func(ctx context.Context, t *txn) error {
		var n int
		if err := t.queryRow(ctx, `SELECT count(*) FROM severities WHERE tenant_id = $1`, p.TenantID).Scan(&n); err != nil {
			return fmt.Errorf("count severities: %w", err)
		}
		if n >= model.MaxCustomSeverities {
			return model.BusinessRule(fmt.Sprintf("a tenant may define at most %d severities", model.MaxCustomSeverities))
		}
		if err := x.severityTaken(ctx, t, p.TenantID, &row.DisplayName, &row.Value, ""); err != nil {
			return err
		}
		if err := t.exec(ctx, "insert severity", `INSERT INTO severities (tenant_id, name_key, display_name, value, created_at, updated_at, created_by, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, row.TenantID, row.NameKey, row.DisplayName, row.Value,
			row.CreatedAt, row.UpdatedAt, row.CreatedBy, row.UpdatedBy); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditSeverityCreate, "severity", row.DisplayName, map[string]model.Change{
			"displayName": {After: row.DisplayName}, "value": {After: row.Value}})
	})
	if err != nil {
		return nil, domainOrInternal(err, "create severity")
	}
	return row.toModel(), nil
}

func (x catalogue) UpdateSeverity(ctx context.Context, name string, in model.SeverityInput) (*model.SeverityLevel, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return nil, err
	}
	if errs := in.Validate(false); len(errs) > 0 {
		return nil, model.Invalid("Invalid request body", errs...)
	}
	if l, ok := model.BuiltInSeverity(name); ok {
		return nil, builtInReadOnly("severity", l.DisplayName)
	}
	var out *model.SeverityLevel
	err = x.locked(ctx, p, func(ctx context.Context, t *txn) error {
		cur, err := x.loadSeverity(ctx, t, p.TenantID, name)
		if err != nil {
			return err
		}
		if err := x.s.checkVersion(ctx, t, p.TenantID, cur.Version()); err != nil {
			return err
		}
		next := *cur
		if in.DisplayName.Set {
			next.DisplayName = in.DisplayName.Value
		}
		if in.Value.Set {
			next.Value = in.Value.Value
		}
		changes := map[string]model.Change{}
		var newName *string
		var newValue *int
		if next.DisplayName != cur.DisplayName {
			newName = &next.DisplayName
			changes["displayName"] = model.Change{Before: cur.DisplayName, After: next.DisplayName}
		}
		if next.Value != cur.Value {
			newValue = &next.Value
			changes["value"] = model.Change{Before: cur.Value, After: next.Value}
		}
		out = cur
		if len(changes) == 0 {
			return nil
		}
		// A rename that only changes case keeps its own key.
		if err := x.severityTaken(ctx, t, p.TenantID, newName, newValue, model.NameKey(cur.DisplayName)); err != nil {
			return err
		}
		next.UpdatedAt, next.UpdatedBy = model.NormalizeTime(x.s.clock.Now()), p.ActorID
		if err := t.exec(ctx, "update severity", `UPDATE severities SET name_key = $1, display_name = $2, value = $3, updated_at = $4, updated_by = $5
			WHERE tenant_id = $6 AND name_key = $7`, model.NameKey(next.DisplayName), next.DisplayName, next.Value,
			newDBTime(next.UpdatedAt), p.ActorID, p.TenantID, model.NameKey(cur.DisplayName)); err != nil {
			return err
		}
		out = &next
		return x.s.audit(ctx, t, p, model.AuditSeverityUpdate, "severity", cur.DisplayName, changes)
	})
	if err != nil {
		return nil, domainOrInternal(err, "update severity")
	}
	return out, nil
}

func (x catalogue) DeleteSeverity(ctx context.Context, name string) error {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return err
	}
	if l, ok := model.BuiltInSeverity(name); ok {
		return builtInReadOnly("severity", l.DisplayName)
	}
	err = x.locked(ctx, p, func(ctx context.Context, t *txn) error {
		cur, err := x.loadSeverity(ctx, t, p.TenantID, name)
		if err != nil {
			return err
		}
		if err := x.s.checkVersion(ctx, t, p.TenantID, cur.Version()); err != nil {
			return err
		}
		if err := t.exec(ctx, "delete severity", `DELETE FROM severities WHERE tenant_id = $1 AND name_key = $2`, p.TenantID, model.NameKey(name)); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditSeverityDelete, "severity", cur.DisplayName, map[string]model.Change{
			"displayName": {Before: cur.DisplayName}, "value": {Before: cur.Value}})
	})
	return domainOrInternal(err, "delete severity")
}

func (x catalogue) Phases(ctx context.Context, generation int) (*model.PhaseList, error) {
	p, err := model.AuthorizeCatalogueRead(ctx)
	if err != nil {
		return nil, err
	}
	if generation < 0 {
		return nil, model.Invalid("Invalid query parameters", model.FieldError{Field: "generation", Message: "generation must be at least 1"})
	}
	if generation > model.MaxGeneration {
		return nil, model.NotFound("Phase generation", strconv.Itoa(generation))
	}
	l, err := x.s.phases(ctx, x.s, p.TenantID, generation)
	if err != nil {
		return nil, domainOrInternal(err, "load phases")
	}
	if l == nil {
		return nil, model.NotFound("Phase generation", strconv.Itoa(generation))
	}
	return l, nil
}

// phases loads one generation (0: the newest; an empty generation 0 when
// the tenant has none). It returns nil, nil for a generation that does not exist.
func (s *Store) phases(ctx context.Context, db querier, tenant string, generation int) (*model.PhaseList, error) {
	q := `SELECT generation, phases, created_at, created_by FROM phase_generations WHERE tenant_id = $1 AND generation = $2`
	args := []any{tenant, generation}
	if generation == 0 {
		q = `SELECT generation, phases, created_at, created_by FROM phase_generations WHERE tenant_id = $1 ORDER BY generation DESC LIMIT 1`
		args = args[:1]
	}
	var l model.PhaseList
	var names stringList
	var at dbTime
	err := db.queryRow(ctx, q, args...).Scan(&l.Generation, &names, &at, &l.CreatedBy)
	switch {
	case isNoRows(err) && generation == 0:
		return &model.PhaseList{Phases: []string{}}, nil
	case isNoRows(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("load phases: %w", err)
	}
	l.Phases, l.CreatedAt = []string(names), at.Time
	if l.Phases == nil {
		l.Phases = []string{}
	}
	return &l, nil
}

func (x catalogue) ReplacePhases(ctx context.Context, names []string) (*model.PhaseList, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return nil, err
	}
	if errs := model.ValidatePhases(names); len(errs) > 0 {
		return nil, model.Invalid("Invalid request body", errs...)
	}
	now := model.NormalizeTime(x.s.clock.Now())
	out := &model.PhaseList{Phases: append([]string{}, names...), CreatedAt: now, CreatedBy: p.ActorID}
	err = x.locked(ctx, p, func(ctx context.Context, t *txn) error {
		cur, err := x.s.phases(ctx, t, p.TenantID, 0)
		if err != nil {
			return err
		}
		if err := x.s.checkVersion(ctx, t, p.TenantID, cur.Version()); err != nil {
			return err
		}
		out.Generation = cur.Generation + 1
		if err := t.exec(ctx, "insert phases", `INSERT INTO phase_generations (tenant_id, generation, phases, created_at, created_by) VALUES ($1, $2, $3, $4, $5)`,
			p.TenantID, out.Generation, stringList(out.Phases), newDBTime(now), p.ActorID); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditPhasesReplace, "phases", strconv.Itoa(out.Generation), map[string]model.Change{
			"phases": {Before: cur.Phases, After: out.Phases}})
	})
	if err != nil {
		return nil, domainOrInternal(err, "replace phases")
	}
	return out, nil
}
