package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/uptrace/bun"

	"github.com/incidentd/incidentd/model"
)

// audit writes one audit row in the mutation's transaction, so that a
// mutation and its record commit or roll back together.
func (s *Store) audit(ctx context.Context, tx bun.Tx, p *model.Principal, action, rtype, rid string, changes map[string]model.Change) error {
	raw, err := json.Marshal(changes)
	if err != nil {
		return fmt.Errorf("encode audit changes: %w", err)
	}
	_, err = s.bound(tx).ExecContext(ctx, `INSERT INTO audit_events (tenant_id, actor_id, credential_id, action, resource_type, resource_id, request_id, changes, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, p.TenantID, p.ActorID, p.CredentialID, action, rtype, rid, model.RequestIDFrom(ctx), string(raw), newDBTime(s.clock.Now()))
	if err != nil {
		return fmt.Errorf("write audit: %w", err)
	}
	return nil
}

// Audit returns the audit trail service.
func (s *Store) Audit() model.AuditLog { return auditLog{s} }

type auditLog struct{ s *Store }

func (a auditLog) List(ctx context.Context, q model.AuditQuery) (*model.AuditPage, error) {
	p, err := model.Authorize(ctx, model.ScopeAuditRead)
	if err != nil {
		return nil, err
	}
	after, err := q.Validate()
	if err != nil {
		return nil, err
	}
	w := &where{}
	w.and("tenant_id = ?", p.TenantID)
	if after > 0 {
		w.and("id < ?", after)
	}
	if q.Action != "" {
		w.and("action = ?", q.Action)
	}
	if q.ResourceID != "" {
		w.and("resource_id = ?", q.ResourceID)
	}
	if q.ActorID != "" {
		w.and("actor_id = ?", q.ActorID)
	}
	if q.From != nil {
		w.and("created_at >= ?", newDBTime(*q.From))
	}
	if q.To != nil {
		w.and("created_at <= ?", newDBTime(*q.To))
	}
	a.s.stmts.Add(1)
	rows, err := a.s.db.DB.QueryContext(ctx, a.s.rebind(`SELECT id, tenant_id, actor_id, credential_id, action, resource_type, resource_id, request_id, changes, created_at
		FROM audit_events WHERE `+w.String()+` ORDER BY id DESC LIMIT `+strconv.Itoa(q.Limit+1)), w.args...)
	if err != nil {
		return nil, model.Internal(err, "list audit events")
	}
	defer rows.Close()
	page := &model.AuditPage{}
	for rows.Next() {
		var e model.AuditEvent
		var changes []byte
		var at dbTime
		if err := rows.Scan(&e.ID, &e.TenantID, &e.ActorID, &e.CredentialID, &e.Action, &e.ResourceType, &e.ResourceID, &e.RequestID, &changes, &at); err != nil {
			return nil, model.Internal(err, "scan audit event")
		}
		if err := json.Unmarshal(changes, &e.Changes); err != nil {
			return nil, model.Internal(err, "decode audit changes")
		}
		e.At = at.Time
		page.Items = append(page.Items, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, model.Internal(err, "list audit events")
	}
	if len(page.Items) > q.Limit {
		page.Items, page.HasMore = page.Items[:q.Limit], true
		page.NextCursor = model.AuditCursor(page.Items[q.Limit-1].ID)
	}
	return page, nil
}
