package store

import (
	"context"

	"github.com/incidentd/incidentd/model"
)

// checkVersion applies the caller's expected version (model.CheckVersion)
// to a resource locked in t at current, and the tenant's requirement of
// one (every change of a versioned resource but the settings themselves).
// Only a write without one reads whether the tenant requires it.
func (s *Store) checkVersion(ctx context.Context, t *txn, tenant, current string) error {
	required := false
	if _, ok := model.ExpectedVersion(ctx); !ok {
		err := t.queryRow(ctx, `SELECT require_preconditions FROM tenant_settings WHERE tenant_id = $1`, tenant).Scan(&required)
		if err != nil && !isNoRows(err) {
			return err
		}
	}
	return model.CheckVersion(ctx, current, required)
}

// Settings returns the tenant settings service.
func (s *Store) Settings() model.SettingsService { return settings{s} }

type settings struct{ s *Store }

func (x settings) Get(ctx context.Context) (*model.TenantSettings, error) {
	p, err := model.Authorize(ctx, model.ScopeAPIKeysAdmin)
	if err != nil {
		return nil, err
	}
	out, err := x.load(ctx, x.s, p.TenantID, false)
	if err != nil {
		return nil, model.Internal(err, "read settings")
	}
	return out, nil
}

// load reads the tenant's settings (locked for update on PostgreSQL when
// lock); a tenant without a row has the defaults.
func (x settings) load(ctx context.Context, db querier, tenant string, lock bool) (*model.TenantSettings, error) {
	q := `SELECT require_preconditions FROM tenant_settings WHERE tenant_id = $1`
	if lock && x.s.pg {
		q += " FOR UPDATE"
	}
	var out model.TenantSettings
	if err := db.queryRow(ctx, q, tenant).Scan(&out.RequirePreconditions); err != nil && !isNoRows(err) {
		return nil, err
	}
	return &out, nil
}

// SetRequirePreconditions applies the caller's expected version (If-Match,
// expectedVersion) under the row's lock, but never requires one: the
// switch that requires them can always be turned off.
func (x settings) SetRequirePreconditions(ctx context.Context, required bool) (*model.TenantSettings, error) {
	p, err := model.Authorize(ctx, model.ScopeAPIKeysAdmin)
	if err != nil {
		return nil, err
	}
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		// A row to lock, made with the defaults when the tenant has none.
		if err := t.exec(ctx, "settings row", `INSERT INTO tenant_settings (tenant_id, status_public) VALUES ($1, $2)
			ON CONFLICT (tenant_id) DO NOTHING`, p.TenantID, false); err != nil {
			return err
		}
		cur, err := x.load(ctx, t, p.TenantID, true)
		if err != nil {
			return err
		}
		if err := model.CheckVersion(ctx, cur.Version(), false); err != nil {
			return err
		}
		if err := t.exec(ctx, "set settings", `UPDATE tenant_settings SET require_preconditions = $1 WHERE tenant_id = $2`,
			required, p.TenantID); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditSettings, "tenant", p.TenantID,
			map[string]model.Change{"requirePreconditions": {After: required}})
	})
	if err != nil {
		return nil, domainOrInternal(err, "set settings")
	}
	return &model.TenantSettings{RequirePreconditions: required}, nil
}
