package store

import (
	"context"

	"github.com/incidentd/incidentd/model"
)

// checkVersion applies the caller's expected version (model.CheckVersion)
// to a resource locked in t at current. Only a write without one reads
// whether the tenant requires it.
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
	var out model.TenantSettings
	err = x.s.queryRow(ctx, `SELECT require_preconditions FROM tenant_settings WHERE tenant_id = $1`, p.TenantID).Scan(&out.RequirePreconditions)
	if err != nil && !isNoRows(err) {
		return nil, model.Internal(err, "read settings")
	}
	return &out, nil
}

func (x settings) SetRequirePreconditions(ctx context.Context, required bool) (*model.TenantSettings, error) {
	p, err := model.Authorize(ctx, model.ScopeAPIKeysAdmin)
	if err != nil {
		return nil, err
	}
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		if err := t.exec(ctx, "set settings", `INSERT INTO tenant_settings (tenant_id, status_public, require_preconditions) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id) DO UPDATE SET require_preconditions = excluded.require_preconditions`, p.TenantID, false, required); err != nil {
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
