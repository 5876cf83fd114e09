package model

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Audit actions.
const (
	AuditIncidentCreate = "incident.create"
	AuditIncidentUpdate = "incident.update"
	AuditIncidentDelete = "incident.delete"
	AuditAPIKeyCreate   = "apikey.create"
	AuditAPIKeyRevoke   = "apikey.revoke"
	AuditAPIKeyRotate   = "apikey.rotate"
)

// AuditActions lists every action the trail records.
var AuditActions = []string{AuditIncidentCreate, AuditIncidentUpdate, AuditIncidentDelete,
	AuditAPIKeyCreate, AuditAPIKeyRevoke, AuditAPIKeyRotate,
	AuditComponentCreate, AuditComponentUpdate, AuditComponentDelete,
	AuditMaintenanceCreate, AuditMaintenanceDelete, AuditStatusPublication,
	AuditImpactTypeCreate, AuditImpactTypeUpdate, AuditImpactTypeDelete,
	AuditSeverityCreate, AuditSeverityUpdate, AuditSeverityDelete, AuditPhasesReplace, AuditSettings,
	AuditWebhookCreate, AuditWebhookUpdate, AuditWebhookDelete, AuditWebhookRotate, AuditWebhookTest, AuditWebhookRedeliver}

// Change is one field's value before and after a mutation (nil: absent).
type Change struct {
	Before any `json:"before"`
	After  any `json:"after"`
}

// AuditEvent is one mutating operation: who did what to which resource,
// when, in which request, and what changed.
type AuditEvent struct {
	// ID is opaque: it does not reveal how many events other tenants have.
	ID           string
	TenantID     string
	ActorID      string
	CredentialID string // the key id or token that acted
	Action       string
	ResourceType string
	ResourceID   string
	RequestID    string
	Changes      map[string]Change
	At           time.Time
}

// AuditQuery narrows the trail; Limit 1..100; After continues a walk (newest first).
type AuditQuery struct {
	Action     string
	ResourceID string
	ActorID    string
	From, To   *time.Time
	Limit      int
	After      string // an opaque cursor from a previous page
}

// AuditPage is one page of the trail, newest first.
type AuditPage struct {
	Items      []*AuditEvent
	HasMore    bool
	NextCursor string
}

// AuditLog reads the caller's tenant's trail (scope audit:read).
type AuditLog interface {
	// List returns a page, newest first. Codes: unauthorized, forbidden, invalid.
	List(ctx context.Context, q AuditQuery) (*AuditPage, error)
}

// Validate lists every violation (the store decodes the cursor).
func (q *AuditQuery) Validate() error {
	var errs []FieldError
	if q.Action != "" && !slices.Contains(AuditActions, q.Action) {
		errs = append(errs, FieldError{"action", "action must be one of: " + strings.Join(AuditActions, ", ")})
	}
	errs = append(errs, CheckLimit("limit", q.Limit)...)
	errs = append(errs, checkText("resourceId", q.ResourceID, 100, false)...)
	errs = append(errs, checkText("actor", q.ActorID, 100, false)...)
	if len(q.After) > 64 {
		errs = append(errs, BadAuditCursor)
	}
	if q.From != nil {
		errs = append(errs, checkTime("from", *q.From)...)
	}
	if q.To != nil {
		errs = append(errs, checkTime("to", *q.To)...)
	}
	if len(errs) > 0 {
		return Invalid("Invalid query parameters", errs...)
	}
	return nil
}

// BadAuditCursor is the complaint about a cursor that is not one of ours.
var BadAuditCursor = FieldError{"cursor", "cursor is invalid: pass pagination.nextCursor unchanged"}

type requestIDKey struct{}

// WithRequestID records the transport's request id for the audit trail.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request id in ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// IncidentChanges lists the fields that differ between before and after
// (before nil: a creation).
func IncidentChanges(before, after *Incident) map[string]Change {
	out := map[string]Change{}
	add := func(field string, b, a any, same bool) {
		if !same {
			out[field] = Change{Before: b, After: a}
		}
	}
	var zero Incident
	if before == nil {
		before = &zero
	}
	fmtTime := func(t *time.Time) any {
		if t == nil || t.IsZero() {
			return nil
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	str := func(s *string) any {
		if s == nil {
			return nil
		}
		return *s
	}
	emptyNil := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	add("title", emptyNil(before.Title), after.Title, before.Title == after.Title)
	add("description", str(before.Description), str(after.Description), eqPtr(before.Description, after.Description))
	add("severity", emptyNil(string(before.Severity)), string(after.Severity), before.Severity == after.Severity)
	add("status", emptyNil(string(before.Status)), string(after.Status), before.Status == after.Status)
	add("service", str(before.Service), str(after.Service), eqPtr(before.Service, after.Service))
	if !slices.Equal(before.Tags, after.Tags) {
		var b any
		if before != &zero {
			b = before.Tags
		}
		out["tags"] = Change{Before: b, After: after.Tags}
	}
	add("occurredAt", fmtTime(&before.OccurredAt), fmtTime(&after.OccurredAt), before.OccurredAt.Equal(after.OccurredAt))
	add("resolvedAt", fmtTime(before.ResolvedAt), fmtTime(after.ResolvedAt), eqTimePtr(before.ResolvedAt, after.ResolvedAt))
	add("isDeleted", before.IsDeleted, after.IsDeleted, before.IsDeleted == after.IsDeleted)
	phase := func(r *PhaseRef) any {
		if r == nil {
			return nil
		}
		return map[string]int{"generation": r.Generation, "order": r.Order}
	}
	add("phase", phase(before.Phase), phase(after.Phase), eqPtr(before.Phase, after.Phase))
	return out
}
