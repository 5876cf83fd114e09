package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/uptrace/bun"

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
	bun.BaseModel `bun:"table:components"`

	ID          string    `bun:"id,pk"`
	TenantID    string    `bun:"tenant_id"`
	DisplayName string    `bun:"display_name"`
	NameKey     string    `bun:"name_key"`
	Labels      stringMap `bun:"labels"`
	CreatedAt   dbTime    `bun:"created_at"`
	UpdatedAt   dbTime    `bun:"updated_at"`
	CreatedBy   string    `bun:"created_by"`
	UpdatedBy   string    `bun:"updated_by"`
}

func (r *componentRow) toModel() *model.Component {
	labels := map[string]string(r.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	return &model.Component{ID: r.ID, TenantID: r.TenantID, DisplayName: r.DisplayName, Labels: labels,
		CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time, CreatedBy: r.CreatedBy, UpdatedBy: r.UpdatedBy}
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
	err = x.s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(componentRowOf(c)).Exec(ctx); err != nil {
			return fmt.Errorf("insert component: %w", err)
		}
		return x.s.audit(ctx, tx, p, model.AuditComponentCreate, "component", c.ID, model.ComponentChanges(nil, c))
	})
	if err != nil {
		return nil, model.Internal(err, "create component")
	}
	return c, nil
}

func (x components) load(ctx context.Context, db bun.IDB, tenant, id string, lock bool) (*model.Component, error) {
	var row componentRow
	q := db.NewSelect().Model(&row).Where("id = ?", id).Where("tenant_id = ?", tenant)
	if lock && x.s.pg {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, model.NotFound("Component", id)
		}
		return nil, model.Internal(err, "load component")
	}
	return row.toModel(), nil
}

func (x components) Get(ctx context.Context, id string) (*model.Component, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsRead)
	if err != nil {
		return nil, err
	}
	return x.load(ctx, x.s.db, p.TenantID, id, false)
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
	w.and("tenant_id = ?", p.TenantID)
	if q.NamePrefix != "" {
		w.and(`name_key LIKE ? ESCAPE '\'`, escapeLike(model.NameKey(q.NamePrefix))+"%")
	}
	if len(q.Labels) > 0 {
		if x.s.pg {
			raw, _ := json.Marshal(q.Labels) // a map of strings always marshals
			w.and("labels @> ?::jsonb", string(raw))
		} else {
			for k, v := range q.Labels {
				w.and("json_extract(labels, ?) = ?", `$."`+k+`"`, v)
			}
		}
	}
	x.s.stmts.Add(1)
	rows, err := x.s.db.DB.QueryContext(ctx, x.s.rebind(`SELECT id, tenant_id, display_name, name_key, labels, created_at, updated_at, created_by, updated_by
		FROM components WHERE `+w.String()+` ORDER BY name_key, id LIMIT `+strconv.Itoa(q.Limit+1)+` OFFSET `+strconv.Itoa(q.Offset)), w.args...)
	if err != nil {
		return nil, model.Internal(err, "list components")
	}
	defer rows.Close()
	page := &model.ComponentPage{}
	for rows.Next() {
		var r componentRow
		if err := rows.Scan(&r.ID, &r.TenantID, &r.DisplayName, &r.NameKey, &r.Labels, &r.CreatedAt, &r.UpdatedAt, &r.CreatedBy, &r.UpdatedBy); err != nil {
			return nil, model.Internal(err, "scan component")
		}
		page.Items = append(page.Items, r.toModel())
	}
	if err := rows.Err(); err != nil {
		return nil, model.Internal(err, "list components")
	}
	if len(page.Items) > q.Limit {
		page.Items, page.HasMore = page.Items[:q.Limit], true
	}
	if q.Offset == 0 && !page.HasMore {
		page.TotalCount = len(page.Items)
		return page, nil
	}
	n, err := x.s.scalar(ctx, "SELECT count(*) FROM components WHERE "+w.String(), w.args...)
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
	err = x.s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		cur, err := x.load(ctx, tx, p.TenantID, id, true)
		if err != nil {
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
		if _, err := tx.NewUpdate().Model(componentRowOf(&next)).WherePK().Where("tenant_id = ?", p.TenantID).
			ExcludeColumn("id", "tenant_id", "created_at", "created_by").Exec(ctx); err != nil {
			return fmt.Errorf("update component: %w", err)
		}
		out = &next
		return x.s.audit(ctx, tx, p, model.AuditComponentUpdate, "component", id, changes)
	})
	if err != nil {
		return nil, domainOrInternal(err, "update component")
	}
	return out, nil
}

func (x components) Delete(ctx context.Context, id string) error {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return err
	}
	err = x.s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		cur, err := x.load(ctx, tx, p.TenantID, id, true)
		if err != nil {
			return err
		}
		var open int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM incident_affects a JOIN incidents i ON i.id = a.incident_id AND i.tenant_id = a.tenant_id
			WHERE a.tenant_id = ? AND a.component_id = ? AND NOT i.is_deleted AND i.status IN ('open', 'investigating')`, p.TenantID, id).Scan(&open); err != nil {
			return fmt.Errorf("check component use: %w", err)
		}
		if open > 0 {
			return model.Conflict("an open incident affects this component; resolve it first")
		}
		for _, q := range []string{
			`DELETE FROM incident_affects WHERE tenant_id = ? AND component_id = ?`,
			`DELETE FROM maintenance_components WHERE tenant_id = ? AND component_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, p.TenantID, id); err != nil {
				return fmt.Errorf("unlink component: %w", err)
			}
		}
		if _, err := tx.NewDelete().Model((*componentRow)(nil)).Where("id = ?", id).Where("tenant_id = ?", p.TenantID).Exec(ctx); err != nil {
			return fmt.Errorf("delete component: %w", err)
		}
		return x.s.audit(ctx, tx, p, model.AuditComponentDelete, "component", id,
			map[string]model.Change{"displayName": {Before: cur.DisplayName}, "labels": {Before: cur.Labels}})
	})
	return domainOrInternal(err, "delete component")
}
