package store

import (
	"context"
	"slices"

	"github.com/incidentd/incidentd/model"
)

// Status returns the status summary service.
func (s *Store) Status() model.StatusService { return status{s} }

type status struct{ s *Store }

// openStatuses are the statuses of incidents that have not ended, derived
// from the model's one rule (Status.Ended) as openStatusOf's SQL is, so that
// a new status cannot be open in one and missing from the other.
var openStatuses = slices.DeleteFunc(slices.Clone(model.Statuses), model.Status.Ended)

func (x status) Summary(ctx context.Context) (*model.StatusSummary, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsRead)
	if err != nil {
		return nil, err
	}
	if !p.Has(model.ScopeIncidentsRead) {
		return nil, model.Forbidden("this credential lacks the scope incidents:read")
	}
	sum := &model.StatusSummary{GeneratedAt: model.NormalizeTime(x.s.clock.Now())}
	for offset := 0; offset < model.MaxSummaryComponents; offset += model.MaxLimit {
		page, total, err := ingest(x).Status(ctx, model.ComponentQuery{Limit: model.MaxLimit, Offset: offset})
		if err != nil {
			return nil, err
		}
		sum.Components = append(sum.Components, page...)
		if offset+len(page) >= total {
			break
		}
	}
	open, err := incidents(x).List(ctx, model.IncidentQuery{Sort: model.DefaultSort, Limit: model.MaxLimit, SkipCount: true,
		Filter: model.IncidentFilter{Statuses: openStatuses}})
	if err != nil {
		return nil, err
	}
	sum.OpenIncidents = open.Items
	if sum.Maintenance, err = (maintenance(x)).List(ctx); err != nil {
		return nil, err
	}
	return sum, nil
}

func (x status) SetPublic(ctx context.Context, public bool) error {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return err
	}
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		if err := t.exec(ctx, "set publication", `INSERT INTO tenant_settings (tenant_id, status_public) VALUES ($1, $2)
			ON CONFLICT (tenant_id) DO UPDATE SET status_public = excluded.status_public`, p.TenantID, public); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditStatusPublication, "tenant", p.TenantID,
			map[string]model.Change{"statusPublic": {After: public}})
	})
	return domainOrInternal(err, "set publication")
}

// PublicSummary acts as a read-only principal of the tenant, and only when
// the tenant has published its status; otherwise it looks the same as a
// tenant that does not exist.
func (x status) PublicSummary(ctx context.Context, tenant string) (*model.StatusSummary, error) {
	var public bool
	err := x.s.queryRow(ctx, `SELECT status_public FROM tenant_settings WHERE tenant_id = $1`, tenant).Scan(&public)
	if err != nil && !isNoRows(err) {
		return nil, model.Internal(err, "read publication")
	}
	if !public {
		return nil, model.NotFound("Status page", tenant)
	}
	reader := &model.Principal{TenantID: tenant, ActorID: "public", Scopes: []model.Scope{model.ScopeRead}, Tier: "default", CredentialID: "public"}
	return x.Summary(model.WithPrincipal(ctx, reader))
}
