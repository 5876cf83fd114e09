package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/incidentd/incidentd/model"
)

// audit queues one audit row in the mutation's transaction, so that a
// mutation and its record commit or roll back together.
func (s *Store) audit(ctx context.Context, t *txn, p *model.Principal, action, rtype, rid string, changes map[string]model.Change) error {
	raw, err := json.Marshal(changes)
	if err != nil {
		return fmt.Errorf("encode audit changes: %w", err)
	}
	return t.exec(ctx, "write audit", `INSERT INTO audit_events (tenant_id, actor_id, credential_id, action, resource_type, resource_id, request_id, changes, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, p.TenantID, p.ActorID, p.CredentialID, action, rtype, rid, model.RequestIDFrom(ctx), string(raw), newDBTime(s.clock.Now()))
}

// Audit returns the audit trail service.
func (s *Store) Audit() model.AuditLog { return auditLog{s} }

type auditLog struct{ s *Store }

// Audit ids and cursors are sealed row ids (see position.go).
const auditPrefix = "aud_"

func (a auditLog) List(ctx context.Context, q model.AuditQuery) (*model.AuditPage, error) {
	p, err := model.Authorize(ctx, model.ScopeAuditRead)
	if err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	seal, err := a.s.sealer(ctx)
	if err != nil {
		return nil, model.Internal(err, "list audit events")
	}
	w := &where{}
	w.and("tenant_id = " + w.arg(p.TenantID))
	if q.After != "" {
		pos, ok := seal.open(auditPrefix, p.TenantID, q.After)
		if !ok {
			return nil, model.Invalid("Invalid query parameters", model.BadAuditCursor)
		}
		w.and("id < " + w.arg(pos.Seq))
	}
	if q.Action != "" {
		w.and("action = " + w.arg(q.Action))
	}
	if q.ResourceID != "" {
		w.and("resource_id = " + w.arg(q.ResourceID))
	}
	if q.ActorID != "" {
		w.and("actor_id = " + w.arg(q.ActorID))
	}
	if q.From != nil {
		w.and("created_at >= " + w.arg(newDBTime(*q.From)))
	}
	if q.To != nil {
		w.and("created_at <= " + w.arg(newDBTime(*q.To)))
	}
	rows, err := a.s.query(ctx, `SELECT id, tenant_id, actor_id, credential_id, action, resource_type, resource_id, request_id, changes, created_at
		FROM audit_events WHERE `+w.String()+` ORDER BY id DESC LIMIT `+w.arg(q.Limit+1), w.args...)
	if err != nil {
		return nil, model.Internal(err, "list audit events")
	}
	defer rows.Close()
	page := &model.AuditPage{}
	for rows.Next() {
		var e model.AuditEvent
		var id int64
		var changes []byte
		var at dbTime
		if err := rows.Scan(&id, &e.TenantID, &e.ActorID, &e.CredentialID, &e.Action, &e.ResourceType, &e.ResourceID, &e.RequestID, &changes, &at); err != nil {
			return nil, model.Internal(err, "scan audit event")
		}
		if err := json.Unmarshal(changes, &e.Changes); err != nil {
			return nil, model.Internal(err, "decode audit changes")
		}
		e.At = at.Time
		e.ID = seal.token(auditPrefix, p.TenantID, model.Position{Seq: id})
		page.Items = append(page.Items, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, model.Internal(err, "list audit events")
	}
	if len(page.Items) > q.Limit {
		page.Items, page.HasMore = page.Items[:q.Limit], true
		page.NextCursor = page.Items[q.Limit-1].ID
	}
	return page, nil
}
