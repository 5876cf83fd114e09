package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/incidentd/incidentd/model"
)

// stringMap is a JSON object of strings (jsonb on PostgreSQL, TEXT on SQLite).
type stringMap map[string]string

func (m stringMap) Value() (driver.Value, error) {
	if m == nil {
		m = stringMap{}
	}
	b, err := json.Marshal(map[string]string(m))
	return string(b), err
}

func (m *stringMap) Scan(src any) error {
	out := map[string]string{}
	if err := scanJSON("stringMap", src, &out); err != nil {
		return err
	}
	*m = out
	return nil
}

type componentRow struct {
	ID          string
	TenantID    string
	DisplayName string
	NameKey     string
	Labels      stringMap
	CreatedAt   dbTime
	UpdatedAt   dbTime
	CreatedBy   string
	UpdatedBy   string
}

func (r *componentRow) toModel() *model.Component {
	labels := map[string]string(r.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	return &model.Component{ID: r.ID, TenantID: r.TenantID, DisplayName: r.DisplayName, Labels: labels,
		CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time, CreatedBy: r.CreatedBy, UpdatedBy: r.UpdatedBy}
}

// componentColumns are componentRow's columns, in scan order.
const componentColumns = "id, tenant_id, display_name, name_key, labels, created_at, updated_at, created_by, updated_by"

func (r *componentRow) columns() []any {
	return []any{&r.ID, &r.TenantID, &r.DisplayName, &r.NameKey, &r.Labels, &r.CreatedAt, &r.UpdatedAt, &r.CreatedBy, &r.UpdatedBy}
}

// queryComponents reads components (rest: FROM components ...).
func (s *Store) queryComponents(ctx context.Context, db querier, rest string, args ...any) ([]*model.Component, error) {
	rows, err := db.query(ctx, `SELECT `+componentColumns+` FROM components `+rest, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*model.Component
	for rows.Next() {
		var r componentRow
		if err := rows.Scan(r.columns()...); err != nil {
			return nil, err
		}
		out = append(out, r.toModel())
	}
	return out, rows.Err()
}

func componentRowOf(c *model.Component) *componentRow {
	return &componentRow{ID: c.ID, TenantID: c.TenantID, DisplayName: c.DisplayName, NameKey: model.NameKey(c.DisplayName),
		Labels: stringMap(c.Labels), CreatedAt: newDBTime(c.CreatedAt), UpdatedAt: newDBTime(c.UpdatedAt),
		CreatedBy: c.CreatedBy, UpdatedBy: c.UpdatedBy}
}

// Components returns the component service.
func (s *Store) Components() model.ComponentService { return components{s} }

type components struct{ s *Store }

func (x components) Create(ctx context.Context, in model.ComponentInput) (*model.Component, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return nil, err
	}
	if errs := in.Validate(true); len(errs) > 0 {
		return nil, model.Invalid("Invalid request body", errs...)
	}
	now := model.NormalizeTime(x.s.clock.Now())
	c := &model.Component{ID: model.NewID("cmp", 12), TenantID: p.TenantID, DisplayName: in.DisplayName.Value,
		Labels: in.Labels.Value, CreatedAt: now, UpdatedAt: now, CreatedBy: p.ActorID, UpdatedBy: p.ActorID}
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		r := componentRowOf(c)
		if err := t.exec(ctx, "insert component", `INSERT INTO components (`+componentColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			r.ID, r.TenantID, r.DisplayName, r.NameKey, r.Labels, r.CreatedAt, r.UpdatedAt, r.CreatedBy, r.UpdatedBy); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditComponentCreate, "component", c.ID, model.ComponentChanges(nil, c))
	})
	if err != nil {
		return nil, model.Internal(err, "create component")
	}
	x.s.publicChanged(p.TenantID)
	return c, nil
}

func (x components) load(ctx context.Context, db querier, tenant, id string, lock bool) (*model.Component, error) {
	q := `WHERE id = $1 AND tenant_id = $2`
	if lock && x.s.pg {
		q += " FOR UPDATE"
	}
	got, err := x.s.queryComponents(ctx, db, q, id, tenant)
	if err != nil {
		return nil, model.Internal(err, "load component")
	}
	if len(got) == 0 {
		return nil, model.NotFound("Component", id)
	}
	return got[0], nil
}

func (x components) Get(ctx context.Context, id string) (*model.Component, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsRead)
	if err != nil {
		return nil, err
	}
	return x.load(ctx, x.s, p.TenantID, id, false)
}

func (x components) List(ctx context.Context, q model.ComponentQuery) (*model.ComponentPage, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsRead)
	if err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	w := &where{}
	w.and("tenant_id = " + w.arg(p.TenantID))
	if q.NamePrefix != "" {
		w.and(`name_key LIKE ` + w.arg(escapeLike(model.NameKey(q.NamePrefix))+"%") + ` ESCAPE '\'`)
	}
	if len(q.Labels) > 0 {
		if x.s.pg {
			raw, _ := json.Marshal(q.Labels) // a map of strings always marshals
			w.and("labels @> " + w.arg(string(raw)) + "::jsonb")
		} else {
			for k, v := range q.Labels {
				w.and("json_extract(labels, " + w.arg(`$."`+k+`"`) + ") = " + w.arg(v))
			}
		}
	}
	cond, args := w.String(), slices.Clone(w.args)
	items, err := x.s.queryComponents(ctx, x.s, `WHERE `+cond+` ORDER BY name_key, id LIMIT `+w.arg(q.Limit+1)+` OFFSET `+w.arg(q.Offset), w.args...)
	if err != nil {
		return nil, model.Internal(err, "list components")
	}
	page := &model.ComponentPage{Items: items}
	if len(page.Items) > q.Limit {
		page.Items, page.HasMore = page.Items[:q.Limit], true
	}
	if q.Offset == 0 && !page.HasMore {
		page.TotalCount = len(page.Items)
		return page, nil
	}
	n, err := x.s.scalar(ctx, "SELECT count(*) FROM components WHERE "+cond, args...)
	if err != nil {
		return nil, model.Internal(err, "count components")
	}
	page.TotalCount = int(n)
	return page, nil
}

func (x components) Update(ctx context.Context, id string, in model.ComponentInput) (*model.Component, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return nil, err
	}
	if errs := in.Validate(false); len(errs) > 0 {
		return nil, model.Invalid("Invalid request body", errs...)
	}
	var out *model.Component
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		cur, err := x.load(ctx, t, p.TenantID, id, true)
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
		if in.Labels.Set {
			next.Labels = in.Labels.Value
			if next.Labels == nil {
				next.Labels = map[string]string{}
			}
		}
		changes := model.ComponentChanges(cur, &next)
		out = cur
		if len(changes) == 0 {
			return nil
		}
		next.UpdatedAt, next.UpdatedBy = model.NormalizeTime(x.s.clock.Now()), p.ActorID
		r := componentRowOf(&next)
		if err := t.exec(ctx, "update component", `UPDATE components SET display_name = $1, name_key = $2, labels = $3, updated_at = $4, updated_by = $5
			WHERE id = $6 AND tenant_id = $7`, r.DisplayName, r.NameKey, r.Labels, r.UpdatedAt, r.UpdatedBy, id, p.TenantID); err != nil {
			return err
		}
		out = &next
		return x.s.audit(ctx, t, p, model.AuditComponentUpdate, "component", id, changes)
	})
	if err != nil {
		return nil, domainOrInternal(err, "update component")
	}
	x.s.publicChanged(p.TenantID)
	return out, nil
}

func (x components) Delete(ctx context.Context, id string) error {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return err
	}
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		cur, err := x.load(ctx, t, p.TenantID, id, true)
		if err != nil {
			return err
		}
		if err := x.s.checkVersion(ctx, t, p.TenantID, cur.Version()); err != nil {
			return err
		}
		var open int
		if err := t.queryRow(ctx, `SELECT count(*) FROM incident_affects a JOIN incidents i ON i.id = a.incident_id AND i.tenant_id = a.tenant_id
			WHERE a.tenant_id = $1 AND a.component_id = $2 AND `+openIncident, p.TenantID, id).Scan(&open); err != nil {
			return fmt.Errorf("check component use: %w", err)
		}
		if open > 0 {
			return model.Conflict("an open incident affects this component; resolve it first")
		}
		if err := x.s.closeLevels(ctx, t, p.TenantID, id); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM incident_affects WHERE tenant_id = $1 AND component_id = $2`,
			`DELETE FROM maintenance_components WHERE tenant_id = $1 AND component_id = $2`,
			`DELETE FROM components WHERE tenant_id = $1 AND id = $2`,
		} {
			if err := t.exec(ctx, "delete component", q, p.TenantID, id); err != nil {
				return err
			}
		}
		return x.s.audit(ctx, t, p, model.AuditComponentDelete, "component", id,
			map[string]model.Change{"displayName": {Before: cur.DisplayName}, "labels": {Before: cur.Labels}})
	})
	if err == nil {
		x.s.publicChanged(p.TenantID)
	}
	return domainOrInternal(err, "delete component")
}
