package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/incidentd/incidentd/model"
)

// Maintenance returns the maintenance window service.
func (s *Store) Maintenance() model.MaintenanceService { return maintenance{s} }

type maintenance struct{ s *Store }

func (x maintenance) Create(ctx context.Context, input model.MaintenanceInput) (*model.Maintenance, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return nil, err
	}
	if errs := input.Validate(); len(errs) > 0 {
		return nil, model.Invalid("Invalid request body", errs...)
	}
	ids := slices.Compact(slices.Sorted(slices.Values(input.ComponentIDs)))
	m := &model.Maintenance{ID: model.NewID("mnt", 12), TenantID: p.TenantID, Description: input.Description,
		StartsAt: model.NormalizeTime(input.StartsAt), EndsAt: model.NormalizeTime(input.EndsAt), ComponentIDs: ids,
		CreatedAt: model.NormalizeTime(x.s.clock.Now()), CreatedBy: p.ActorID}
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		var known int
		w := &where{}
		w.and("tenant_id = " + w.arg(p.TenantID))
		in(w, "id", ids)
		if err := t.queryRow(ctx, "SELECT count(*) FROM components WHERE "+w.String(), w.args...).Scan(&known); err != nil {
			return fmt.Errorf("check components: %w", err)
		}
		if known != len(ids) {
			return model.Invalid("Invalid request body", model.FieldError{Field: "components", Message: "every component id must name a component of this tenant"})
		}
		if err := t.exec(ctx, "insert maintenance", `INSERT INTO maintenance_windows (id, tenant_id, description, starts_at, ends_at, created_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, m.ID, m.TenantID, m.Description, newDBTime(m.StartsAt), newDBTime(m.EndsAt), newDBTime(m.CreatedAt), m.CreatedBy); err != nil {
			return err
		}
		// Its webhook messages: queued by the webhook fan-out (webhookqueue.go).
		if err := t.exec(ctx, "announce maintenance", `INSERT INTO webhook_maintenance (window_id, tenant_id, announced, starts_at, ends_at)
			VALUES ($1, $2, '', $3, $4)`, m.ID, m.TenantID, newDBTime(m.StartsAt), newDBTime(m.EndsAt)); err != nil {
			return err
		}
		for _, c := range ids {
			if err := t.exec(ctx, "insert maintenance component", `INSERT INTO maintenance_components (tenant_id, window_id, component_id) VALUES ($1, $2, $3)`, p.TenantID, m.ID, c); err != nil {
				return err
			}
		}
		return x.s.audit(ctx, t, p, model.AuditMaintenanceCreate, "maintenance", m.ID, map[string]model.Change{
			"description": {After: m.Description}, "startsAt": {After: m.StartsAt}, "endsAt": {After: m.EndsAt}, "components": {After: ids}})
	})
	if err != nil {
		return nil, domainOrInternal(err, "create maintenance")
	}
	x.s.publicChanged(p.TenantID)
	return m, nil
}

// windows loads windows matching the conditions, with their components
// (a window whose components were all deleted is still read, with none:
// it can still be read, cancelled and announced as ended).
func (x maintenance) windows(ctx context.Context, db querier, w *where) ([]*model.Maintenance, error) {
	rows, err := db.query(ctx, `SELECT m.id, m.tenant_id, m.description, m.starts_at, m.ends_at, m.created_at, m.created_by, mc.component_id
		FROM maintenance_windows m LEFT JOIN maintenance_components mc ON mc.window_id = m.id AND mc.tenant_id = m.tenant_id
		WHERE `+w.String()+` ORDER BY m.starts_at, m.id, mc.component_id`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("load maintenance: %w", err)
	}
	defer rows.Close()
	var out []*model.Maintenance
	for rows.Next() {
		var m model.Maintenance
		var starts, ends, created dbTime
		var comp *string
		if err := rows.Scan(&m.ID, &m.TenantID, &m.Description, &starts, &ends, &created, &m.CreatedBy, &comp); err != nil {
			return nil, fmt.Errorf("load maintenance: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].ID != m.ID {
			m.StartsAt, m.EndsAt, m.CreatedAt = starts.Time, ends.Time, created.Time
			out = append(out, &m)
		}
		if last := out[len(out)-1]; comp != nil {
			last.ComponentIDs = append(last.ComponentIDs, *comp)
		}
	}
	return out, rows.Err()
}

func (x maintenance) List(ctx context.Context) ([]*model.Maintenance, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsRead)
	if err != nil {
		return nil, err
	}
	w := &where{}
	w.and("m.tenant_id = " + w.arg(p.TenantID))
	w.and("m.ends_at > " + w.arg(newDBTime(x.s.clock.Now())))
	out, err := x.windows(ctx, x.s, w)
	if err != nil {
		return nil, model.Internal(err, "list maintenance")
	}
	return out, nil
}

func (x maintenance) Get(ctx context.Context, id string) (*model.Maintenance, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsRead)
	if err != nil {
		return nil, err
	}
	w := &where{}
	w.and("m.id = " + w.arg(id))
	w.and("m.tenant_id = " + w.arg(p.TenantID))
	found, err := x.windows(ctx, x.s, w)
	if err != nil {
		return nil, model.Internal(err, "get maintenance")
	}
	if len(found) == 0 {
		return nil, model.NotFound("Maintenance", id)
	}
	return found[0], nil
}

func (x maintenance) Delete(ctx context.Context, id string) error {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return err
	}
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		if err := x.s.keepMaintenance(ctx, t, p.TenantID, id); err != nil {
			return err
		}
		w := &where{}
		w.and("m.id = " + w.arg(id))
		w.and("m.tenant_id = " + w.arg(p.TenantID))
		found, err := x.windows(ctx, t, w)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return model.NotFound("Maintenance", id)
		}
		// A window never changes: its version can only be stale by naming
		// another window's content.
		if err := x.s.checkVersion(ctx, t, p.TenantID, found[0].Version()); err != nil {
			return err
		}
		n, err := t.execNow(ctx, "delete maintenance", `DELETE FROM maintenance_windows WHERE id = $1 AND tenant_id = $2`, id, p.TenantID)
		if err != nil {
			return err
		}
		if n == 0 { // deleted meanwhile
			return model.NotFound("Maintenance", id)
		}
		// Its maintenance.ended goes out with the window as it was (a
		// window that has ended has announced it and has no row).
		if err := t.exec(ctx, "cancel maintenance messages", `UPDATE webhook_maintenance SET cancelled_at = $1, snapshot = $2
			WHERE window_id = $3 AND tenant_id = $4`, newDBTime(x.s.clock.Now()), encodeMaintenance(found[0]), id, p.TenantID); err != nil {
			return err
		}
		if err := t.exec(ctx, "delete maintenance components", `DELETE FROM maintenance_components WHERE window_id = $1 AND tenant_id = $2`, id, p.TenantID); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditMaintenanceDelete, "maintenance", id, map[string]model.Change{})
	})
	if err == nil {
		x.s.publicChanged(p.TenantID)
	}
	return domainOrInternal(err, "delete maintenance")
}

// activeFor returns the active window covering component, if any.
func (x maintenance) activeFor(ctx context.Context, db querier, tenant, component string) (*model.Maintenance, error) {
	now := newDBTime(x.s.clock.Now())
	w := &where{}
	tn, at := w.arg(tenant), w.arg(now)
	w.and("m.tenant_id = " + tn)
	w.and("m.starts_at <= " + at)
	w.and("m.ends_at > " + at)
	w.and("m.id IN (SELECT window_id FROM maintenance_components WHERE tenant_id = " + tn + " AND component_id = " + w.arg(component) + ")")
	ws, err := x.windows(ctx, db, w)
	if err != nil || len(ws) == 0 {
		return nil, err
	}
	return ws[0], nil
}

// maintenanceRow is a window as webhook_maintenance keeps it after its
// deletion.
type maintenanceRow struct {
	ID          string    `json:"id"`
	TenantID    string    `json:"tenantId"`
	Description string    `json:"description"`
	StartsAt    time.Time `json:"startsAt"`
	EndsAt      time.Time `json:"endsAt"`
	Components  []string  `json:"components"`
	CreatedAt   time.Time `json:"createdAt"`
	CreatedBy   string    `json:"createdBy"`
}

func encodeMaintenance(m *model.Maintenance) string {
	b, _ := json.Marshal(maintenanceRow{ID: m.ID, TenantID: m.TenantID, Description: m.Description, StartsAt: m.StartsAt,
		EndsAt: m.EndsAt, Components: m.ComponentIDs, CreatedAt: m.CreatedAt, CreatedBy: m.CreatedBy})
	return string(b)
}

func decodeMaintenance(b []byte) (*model.Maintenance, error) {
	var r maintenanceRow
	if err := scanJSON("maintenance snapshot", b, &r); err != nil {
		return nil, err
	}
	return &model.Maintenance{ID: r.ID, TenantID: r.TenantID, Description: r.Description, StartsAt: r.StartsAt, EndsAt: r.EndsAt,
		ComponentIDs: r.Components, CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy}, nil
}
