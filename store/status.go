package store

import (
	"context"
	"encoding/json"
	"fmt"
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

func (x status) SetPublication(ctx context.Context, pub model.Publication) error {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return err
	}
	if err := model.CheckPublication(&pub); err != nil {
		return err
	}
	origins, err := json.Marshal(append([]string{}, pub.AllowedOrigins...))
	if err != nil {
		return model.Internal(err, "encode allowed origins")
	}
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		if err := t.exec(ctx, "set publication", `INSERT INTO tenant_settings (tenant_id, status_public, allowed_origins) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id) DO UPDATE SET status_public = excluded.status_public, allowed_origins = excluded.allowed_origins`,
			p.TenantID, pub.Public, string(origins)); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditStatusPublication, "tenant", p.TenantID,
			map[string]model.Change{"statusPublic": {After: pub.Public}, "allowedOrigins": {After: pub.AllowedOrigins}})
	})
	if err == nil {
		x.s.publicChanged(p.TenantID)
	}
	return domainOrInternal(err, "set publication")
}

func (x status) Publication(ctx context.Context, tenant string) (*model.Publication, error) {
	var pub model.Publication
	var origins string
	err := x.s.queryRow(ctx, `SELECT status_public, allowed_origins FROM tenant_settings WHERE tenant_id = $1`, tenant).Scan(&pub.Public, &origins)
	if err != nil && !isNoRows(err) {
		return nil, model.Internal(err, "read publication")
	}
	if !pub.Public {
		return nil, model.NotFound("Status page", tenant)
	}
	if err := json.Unmarshal([]byte(origins), &pub.AllowedOrigins); err != nil {
		return nil, model.Internal(err, "read allowed origins")
	}
	return &pub, nil
}

// PublicSummary acts as a read-only principal of the tenant, and only when
// the tenant has published its status; otherwise it looks the same as a
// tenant that does not exist.
func (x status) PublicSummary(ctx context.Context, tenant string) (*model.StatusSummary, error) {
	if _, err := x.Publication(ctx, tenant); err != nil {
		return nil, err
	}
	ctx = model.WithPrincipal(ctx, publicReader(tenant))
	sum, err := x.Summary(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(sum.OpenIncidents))
	for i, inc := range sum.OpenIncidents {
		ids[i] = inc.ID
	}
	if sum.Updates, err = x.s.Relations().UpdatesOf(ctx, ids, model.MaxHistoryUpdates); err != nil {
		return nil, err
	}
	return sum, nil
}

// publicReader is the read-only principal public pages act as.
func publicReader(tenant string) *model.Principal {
	return &model.Principal{TenantID: tenant, ActorID: "public", Scopes: []model.Scope{model.ScopeRead}, Tier: "default", CredentialID: "public"}
}

func (x status) PublicHistory(ctx context.Context, tenant string, days int) ([]model.PublicIncident, error) {
	if days < 1 || days > model.MaxHistoryDays {
		return nil, model.Invalid("Invalid history", model.FieldError{Field: "days",
			Message: fmt.Sprintf("days must be between 1 and %d", model.MaxHistoryDays)})
	}
	if _, err := x.Publication(ctx, tenant); err != nil {
		return nil, err
	}
	ctx = model.WithPrincipal(ctx, publicReader(tenant))
	from := model.NormalizeTime(x.s.clock.Now().AddDate(0, 0, -days))
	page, err := incidents(x).List(ctx, model.IncidentQuery{Sort: model.DefaultSort, Limit: model.MaxHistory, SkipCount: true,
		Filter: model.IncidentFilter{From: &from}})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(page.Items))
	for i, inc := range page.Items {
		ids[i] = inc.ID
	}
	updates, err := x.s.Relations().UpdatesOf(ctx, ids, model.MaxHistoryUpdates)
	if err != nil {
		return nil, err
	}
	out := make([]model.PublicIncident, len(page.Items))
	for i, inc := range page.Items {
		out[i] = model.PublicIncident{Incident: inc, Updates: updates[inc.ID]}
	}
	return out, nil
}
