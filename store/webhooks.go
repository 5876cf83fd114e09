package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/incidentd/incidentd/model"
)

// Outgoing webhooks: the endpoints (a tenant resource, model.WebhookService)
// and the delivery queue the webhook package's engine drives: fan-out from
// the event stream (FanOutWebhooks), leases of due deliveries
// (ClaimWebhookDeliveries) and their outcomes (RecordWebhookAttempt).

// webhookPolicy is what the service needs beyond the store.
type webhookPolicy struct {
	// allowPrivate admits plain http and non-public addresses.
	allowPrivate bool
}

// Webhooks returns the webhook endpoint service. allowPrivateTargets admits
// http URLs and loopback, private and link-local addresses (development and
// tests); the delivery engine must be given the same setting.
func (s *Store) Webhooks(allowPrivateTargets bool) model.WebhookService {
	return webhooks{s, webhookPolicy{allowPrivate: allowPrivateTargets}}
}

type webhooks struct {
	s   *Store
	pol webhookPolicy
}

// webhookFilterRow is the stored form of a filter.
type webhookFilterRow struct {
	Severities []model.Severity  `json:"severities,omitempty"`
	Statuses   []model.Status    `json:"statuses,omitempty"`
	Services   []string          `json:"services,omitempty"`
	Components []string          `json:"components,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

const webhookEndpointColumns = "id, tenant_id, url, description, events, filter, enabled, disabled_reason, failing_since, " +
	"secret, previous_secret, previous_secret_until, created_at, updated_at, created_by, updated_by"

type webhookEndpointRow struct {
	ID, TenantID, URL, Description string
	Events, Filter                 []byte
	Enabled                        bool
	DisabledReason                 string
	FailingSince                   *dbTime
	Secret                         string
	PreviousSecret                 *string
	PreviousSecretUntil            *dbTime
	CreatedAt, UpdatedAt           dbTime
	CreatedBy, UpdatedBy           string
}

func (r *webhookEndpointRow) columns() []any {
	return []any{&r.ID, &r.TenantID, &r.URL, &r.Description, &r.Events, &r.Filter, &r.Enabled, &r.DisabledReason, &r.FailingSince,
		&r.Secret, &r.PreviousSecret, &r.PreviousSecretUntil, &r.CreatedAt, &r.UpdatedAt, &r.CreatedBy, &r.UpdatedBy}
}

func (r *webhookEndpointRow) toModel() (*model.WebhookEndpoint, error) {
	ep := &model.WebhookEndpoint{ID: r.ID, TenantID: r.TenantID, URL: r.URL, Description: r.Description, Enabled: r.Enabled,
		DisabledReason: r.DisabledReason, FailingSince: r.FailingSince.ptr(), CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time,
		CreatedBy: r.CreatedBy, UpdatedBy: r.UpdatedBy}
	if r.PreviousSecret != nil {
		ep.PreviousSecretUntil = r.PreviousSecretUntil.ptr()
	}
	if err := scanJSON("webhook events", r.Events, &ep.Events); err != nil {
		return nil, err
	}
	var f webhookFilterRow
	if err := scanJSON("webhook filter", r.Filter, &f); err != nil {
		return nil, err
	}
	ep.Filter = model.WebhookFilter{EventFilter: model.EventFilter{Severities: f.Severities, Statuses: f.Statuses, Services: f.Services},
		Components: f.Components, Labels: f.Labels}
	return ep, nil
}

func encodeWebhookFilter(f model.WebhookFilter) string {
	b, _ := json.Marshal(webhookFilterRow{Severities: f.Severities, Statuses: f.Statuses, Services: f.Services,
		Components: f.Components, Labels: f.Labels})
	return string(b)
}

func encodeWebhookEvents(ts []model.WebhookEventType) string {
	if ts == nil {
		ts = []model.WebhookEventType{}
	}
	b, _ := json.Marshal(ts)
	return string(b)
}

func (s *Store) webhookEndpointRows(ctx context.Context, db querier, rest string, args ...any) ([]*webhookEndpointRow, error) {
	rows, err := db.query(ctx, `SELECT `+webhookEndpointColumns+` FROM webhook_endpoints `+rest, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*webhookEndpointRow
	for rows.Next() {
		var r webhookEndpointRow
		if err := rows.Scan(r.columns()...); err != nil {
			return nil, err
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

// loadEndpoint reads one endpoint of tenant (locked for update on PostgreSQL when lock).
func (x webhooks) loadEndpoint(ctx context.Context, db querier, tenant, id string, lock bool) (*webhookEndpointRow, error) {
	q := `WHERE id = $1 AND tenant_id = $2`
	if lock && x.s.pg {
		q += ` FOR UPDATE`
	}
	rows, err := x.s.webhookEndpointRows(ctx, db, q, id, tenant)
	if err != nil {
		return nil, model.Internal(err, "load webhook endpoint")
	}
	if len(rows) == 0 {
		return nil, model.NotFound("webhook endpoint", id)
	}
	return rows[0], nil
}

func (x webhooks) Create(ctx context.Context, in model.WebhookEndpointInput) (*model.WebhookEndpoint, string, error) {
	p, err := model.Authorize(ctx, model.ScopeWebhooksAdmin)
	if err != nil {
		return nil, "", err
	}
	if errs := in.Validate(true, x.pol.allowPrivate); len(errs) > 0 {
		return nil, "", model.Invalid("Invalid request body", errs...)
	}
	now := newDBTime(x.s.clock.Now())
	secret := model.NewWebhookSecret()
	row := &webhookEndpointRow{ID: model.NewID("whe", 12), TenantID: p.TenantID, URL: in.URL.Value, Description: in.Description.Value,
		Events: []byte(encodeWebhookEvents(dedupe(in.Events.Value))), Filter: []byte(encodeWebhookFilter(in.Filter.Value)),
		Enabled: !in.Enabled.Set || in.Enabled.Value, Secret: secret, CreatedAt: now, UpdatedAt: now, CreatedBy: p.ActorID, UpdatedBy: p.ActorID}
	ep, err := row.toModel()
	if err != nil {
		return nil, "", model.Internal(err, "create webhook endpoint")
	}
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		var n int64
		if err := t.queryRow(ctx, `SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1`, p.TenantID).Scan(&n); err != nil {
			return err
		}
		if n >= model.MaxWebhookEndpoints {
			return model.BusinessRule(fmt.Sprintf("a tenant has at most %d webhook endpoints", model.MaxWebhookEndpoints))
		}
		if err := t.exec(ctx, "insert webhook endpoint", `INSERT INTO webhook_endpoints (`+webhookEndpointColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			row.ID, row.TenantID, row.URL, row.Description, string(row.Events), string(row.Filter), row.Enabled, row.DisabledReason, nil,
			row.Secret, nil, nil, row.CreatedAt, row.UpdatedAt, row.CreatedBy, row.UpdatedBy); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditWebhookCreate, "webhook", row.ID, model.WebhookChanges(nil, ep))
	})
	if err != nil {
		return nil, "", domainOrInternal(err, "create webhook endpoint")
	}
	return ep, secret, nil
}

func dedupe[T ~string](v []T) []T {
	out := slices.Clone(v)
	slices.Sort(out)
	return slices.Compact(out)
}

func (x webhooks) List(ctx context.Context) ([]*model.WebhookEndpoint, error) {
	p, err := model.Authorize(ctx, model.ScopeWebhooksAdmin)
	if err != nil {
		return nil, err
	}
	rows, err := x.s.webhookEndpointRows(ctx, x.s, `WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2`, p.TenantID, model.MaxWebhookEndpoints)
	if err != nil {
		return nil, model.Internal(err, "list webhook endpoints")
	}
	out := make([]*model.WebhookEndpoint, 0, len(rows))
	for _, r := range rows {
		ep, err := r.toModel()
		if err != nil {
			return nil, model.Internal(err, "list webhook endpoints")
		}
		out = append(out, ep)
	}
	return out, nil
}

func (x webhooks) Get(ctx context.Context, id string) (*model.WebhookEndpoint, error) {
	p, err := model.Authorize(ctx, model.ScopeWebhooksAdmin)
	if err != nil {
		return nil, err
	}
	row, err := x.loadEndpoint(ctx, x.s, p.TenantID, id, false)
	if err != nil {
		return nil, err
	}
	ep, err := row.toModel()
	if err != nil {
		return nil, model.Internal(err, "get webhook endpoint")
	}
	return ep, nil
}

func (x webhooks) Update(ctx context.Context, id string, in model.WebhookEndpointInput) (*model.WebhookEndpoint, error) {
	p, err := model.Authorize(ctx, model.ScopeWebhooksAdmin)
	if err != nil {
		return nil, err
	}
	if errs := in.Validate(false, x.pol.allowPrivate); len(errs) > 0 {
		return nil, model.Invalid("Invalid request body", errs...)
	}
	var out *model.WebhookEndpoint
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		row, err := x.loadEndpoint(ctx, t, p.TenantID, id, true)
		if err != nil {
			return err
		}
		before, err := row.toModel()
		if err != nil {
			return err
		}
		if in.URL.Set {
			row.URL = in.URL.Value
		}
		if in.Description.Set {
			row.Description = in.Description.Value // null clears
		}
		if in.Events.Set {
			row.Events = []byte(encodeWebhookEvents(dedupe(in.Events.Value)))
		}
		if in.Filter.Set {
			row.Filter = []byte(encodeWebhookFilter(in.Filter.Value)) // null clears
		}
		if in.Enabled.Set {
			if in.Enabled.Value && !row.Enabled {
				// A fresh start: the failure streak that disabled it is over.
				row.DisabledReason, row.FailingSince = "", nil
			}
			if !in.Enabled.Value {
				row.DisabledReason = ""
			}
			row.Enabled = in.Enabled.Value
		}
		after, err := row.toModel()
		if err != nil {
			return err
		}
		changes := model.WebhookChanges(before, after)
		out = after
		if len(changes) == 0 {
			return nil
		}
		now := newDBTime(x.s.clock.Now())
		row.UpdatedAt, row.UpdatedBy = now, p.ActorID
		out.UpdatedAt, out.UpdatedBy = now.Time, p.ActorID
		if err := t.exec(ctx, "update webhook endpoint", `UPDATE webhook_endpoints SET url = $1, description = $2, events = $3, filter = $4,
			enabled = $5, disabled_reason = $6, failing_since = $7, updated_at = $8, updated_by = $9 WHERE id = $10 AND tenant_id = $11`,
			row.URL, row.Description, string(row.Events), string(row.Filter), row.Enabled, row.DisabledReason, nullTime(row.FailingSince),
			row.UpdatedAt, row.UpdatedBy, row.ID, row.TenantID); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditWebhookUpdate, "webhook", row.ID, changes)
	})
	if err != nil {
		return nil, domainOrInternal(err, "update webhook endpoint")
	}
	return out, nil
}

func (x webhooks) Delete(ctx context.Context, id string) error {
	p, err := model.Authorize(ctx, model.ScopeWebhooksAdmin)
	if err != nil {
		return err
	}
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		row, err := x.loadEndpoint(ctx, t, p.TenantID, id, true)
		if err != nil {
			return err
		}
		if err := t.exec(ctx, "delete webhook deliveries", `DELETE FROM webhook_deliveries WHERE endpoint_id = $1 AND tenant_id = $2`, row.ID, row.TenantID); err != nil {
			return err
		}
		if err := t.exec(ctx, "delete webhook endpoint", `DELETE FROM webhook_endpoints WHERE id = $1 AND tenant_id = $2`, row.ID, row.TenantID); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditWebhookDelete, "webhook", row.ID, map[string]model.Change{"url": {Before: row.URL}})
	})
	return domainOrInternal(err, "delete webhook endpoint")
}

func (x webhooks) RotateSecret(ctx context.Context, id string) (*model.WebhookEndpoint, string, error) {
	p, err := model.Authorize(ctx, model.ScopeWebhooksAdmin)
	if err != nil {
		return nil, "", err
	}
	secret := model.NewWebhookSecret()
	var out *model.WebhookEndpoint
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		row, err := x.loadEndpoint(ctx, t, p.TenantID, id, true)
		if err != nil {
			return err
		}
		now := x.s.clock.Now()
		until := newDBTime(now.Add(model.WebhookSecretGrace))
		prev := row.Secret
		row.PreviousSecret, row.PreviousSecretUntil, row.Secret = &prev, &until, secret
		row.UpdatedAt, row.UpdatedBy = newDBTime(now), p.ActorID
		if out, err = row.toModel(); err != nil {
			return err
		}
		if err := t.exec(ctx, "rotate webhook secret", `UPDATE webhook_endpoints SET secret = $1, previous_secret = $2, previous_secret_until = $3,
			updated_at = $4, updated_by = $5 WHERE id = $6 AND tenant_id = $7`,
			row.Secret, prev, until, row.UpdatedAt, row.UpdatedBy, row.ID, row.TenantID); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditWebhookRotate, "webhook", row.ID,
			map[string]model.Change{"previousSecretUntil": {After: timeOrNil(&until)}})
	})
	if err != nil {
		return nil, "", domainOrInternal(err, "rotate webhook secret")
	}
	return out, secret, nil
}

// deliveryRow is a new delivery's row.
type deliveryRow struct {
	ID, TenantID, EndpointID, MessageID string
	Type                                model.WebhookEventType
	ResourceID, EventID                 string
	Payload                             []byte
	At                                  dbTime
}

// insert queues the delivery, due at once.
func (d *deliveryRow) insert(ctx context.Context, t *txn) error {
	return t.exec(ctx, "queue webhook delivery", `INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, message_id, type, resource_id,
		event_id, payload, state, attempts, last_status, last_error, last_latency_us, response_excerpt, next_attempt_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, '', 0, '', $10, $10)`,
		d.ID, d.TenantID, d.EndpointID, d.MessageID, string(d.Type), d.ResourceID, d.EventID, string(d.Payload), string(model.WebhookPending), d.At)
}

func (d *deliveryRow) toModel() *model.WebhookDelivery {
	at := d.At.Time
	return &model.WebhookDelivery{ID: d.ID, EndpointID: d.EndpointID, MessageID: d.MessageID, Type: d.Type, ResourceID: d.ResourceID,
		EventID: d.EventID, State: model.WebhookPending, NextAttemptAt: &at, CreatedAt: at, Payload: d.Payload}
}

func newMessageID() string { return model.NewID("msg", 24) }

// testPayload is the body of a webhook.test message.
func testPayload(ep string, at time.Time) []byte {
	b, _ := json.Marshal(map[string]any{"type": model.WebhookTest, "timestamp": at.UTC().Format(time.RFC3339Nano),
		"data": map[string]any{"endpointId": ep}})
	return b
}

func (x webhooks) SendTest(ctx context.Context, id string) (*model.WebhookDelivery, error) {
	p, err := model.Authorize(ctx, model.ScopeWebhooksAdmin)
	if err != nil {
		return nil, err
	}
	var d *deliveryRow
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		row, err := x.loadEndpoint(ctx, t, p.TenantID, id, false)
		if err != nil {
			return err
		}
		now := x.s.clock.Now()
		d = &deliveryRow{ID: model.NewID("whd", 16), TenantID: p.TenantID, EndpointID: row.ID, MessageID: newMessageID(),
			Type: model.WebhookTest, ResourceID: row.ID, Payload: testPayload(row.ID, now), At: newDBTime(now)}
		if err := d.insert(ctx, t); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditWebhookTest, "webhook", row.ID, map[string]model.Change{"delivery": {After: d.ID}})
	})
	if err != nil {
		return nil, domainOrInternal(err, "send webhook test")
	}
	return d.toModel(), nil
}

const deliveryColumns = "seq, id, endpoint_id, message_id, type, resource_id, event_id, payload, state, attempts, last_status, last_error, " +
	"last_latency_us, last_attempt_at, response_excerpt, next_attempt_at, created_at"

func scanDelivery(r rows) (int64, *model.WebhookDelivery, error) {
	var seq, latency int64
	var d model.WebhookDelivery
	var typ, state, payload string
	var last, next *dbTime
	var at dbTime
	if err := r.Scan(&seq, &d.ID, &d.EndpointID, &d.MessageID, &typ, &d.ResourceID, &d.EventID, &payload, &state, &d.Attempts,
		&d.LastStatus, &d.LastError, &latency, &last, &d.ResponseExcerpt, &next, &at); err != nil {
		return 0, nil, err
	}
	d.Type, d.State, d.Payload = model.WebhookEventType(typ), model.WebhookDeliveryState(state), []byte(payload)
	d.LastLatency, d.LastAttemptAt, d.NextAttemptAt, d.CreatedAt = time.Duration(latency)*time.Microsecond, last.ptr(), next.ptr(), at.Time
	return seq, &d, nil
}

// deliveryCursorPrefix starts a delivery log cursor (a sealed seq).
const deliveryCursorPrefix = "whc_"

func (x webhooks) Deliveries(ctx context.Context, endpointID string, q model.WebhookDeliveryQuery) (*model.WebhookDeliveryPage, error) {
	p, err := model.Authorize(ctx, model.ScopeWebhooksAdmin)
	if err != nil {
		return nil, err
	}
	if errs := model.CheckLimit("limit", q.Limit); len(errs) > 0 {
		return nil, model.Invalid("Invalid query parameters", errs...)
	}
	seal, err := x.s.sealer(ctx)
	if err != nil {
		return nil, model.Internal(err, "list webhook deliveries")
	}
	before := int64(1) << 62
	if q.Cursor != "" {
		pos, ok := seal.open(deliveryCursorPrefix, p.TenantID, q.Cursor)
		if !ok {
			return nil, model.Invalid("Invalid query parameters", model.FieldError{Field: "cursor", Message: "cursor is invalid: pass pagination.nextCursor unchanged"})
		}
		before = pos.Seq
	}
	if _, err := x.loadEndpoint(ctx, x.s, p.TenantID, endpointID, false); err != nil {
		return nil, err
	}
	rows, err := x.s.query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2 AND seq < $3
		ORDER BY seq DESC LIMIT $4`, p.TenantID, endpointID, before, q.Limit+1)
	if err != nil {
		return nil, model.Internal(err, "list webhook deliveries")
	}
	defer rows.Close()
	page := &model.WebhookDeliveryPage{}
	var seqs []int64
	for rows.Next() {
		seq, d, err := scanDelivery(rows)
		if err != nil {
			return nil, model.Internal(err, "list webhook deliveries")
		}
		seqs = append(seqs, seq)
		page.Items = append(page.Items, d)
	}
	if err := rows.Err(); err != nil {
		return nil, model.Internal(err, "list webhook deliveries")
	}
	if len(page.Items) > q.Limit {
		page.Items, page.HasMore = page.Items[:q.Limit], true
		page.NextCursor = seal.token(deliveryCursorPrefix, p.TenantID, model.Position{Seq: seqs[q.Limit-1]})
	}
	return page, nil
}

func (x webhooks) Redeliver(ctx context.Context, deliveryID string) (*model.WebhookDelivery, error) {
	p, err := model.Authorize(ctx, model.ScopeWebhooksAdmin)
	if err != nil {
		return nil, err
	}
	var d *deliveryRow
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		rows, err := t.query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = $1 AND tenant_id = $2`, deliveryID, p.TenantID)
		if err != nil {
			return err
		}
		var old *model.WebhookDelivery
		for rows.Next() {
			if _, old, err = scanDelivery(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if old == nil {
			return model.NotFound("webhook delivery", deliveryID)
		}
		d = redelivery(p.TenantID, old, x.s.clock.Now())
		if err := d.insert(ctx, t); err != nil {
			return err
		}
		return x.s.audit(ctx, t, p, model.AuditWebhookRedeliver, "webhook", old.EndpointID,
			map[string]model.Change{"deliveries": {Before: []string{old.ID}, After: []string{d.ID}}})
	})
	if err != nil {
		return nil, domainOrInternal(err, "redeliver webhook")
	}
	return d.toModel(), nil
}

// redelivery is a new delivery of old's message: same webhook-id and bytes.
func redelivery(tenant string, old *model.WebhookDelivery, now time.Time) *deliveryRow {
	return &deliveryRow{ID: model.NewID("whd", 16), TenantID: tenant, EndpointID: old.EndpointID, MessageID: old.MessageID, Type: old.Type,
		ResourceID: old.ResourceID, EventID: old.EventID, Payload: old.Payload, At: newDBTime(now)}
}

// maxRedeliverSince bounds one RedeliverSince.
const maxRedeliverSince = 10_000

func (x webhooks) RedeliverSince(ctx context.Context, endpointID string, since time.Time) (int, error) {
	p, err := model.Authorize(ctx, model.ScopeWebhooksAdmin)
	if err != nil {
		return 0, err
	}
	now := x.s.clock.Now()
	if !model.TimeInRange(since) || since.After(now) {
		return 0, model.Invalid("Invalid request body", model.FieldError{Field: "since", Message: "since must be a time in the past"})
	}
	n := 0
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		ep, err := x.loadEndpoint(ctx, t, p.TenantID, endpointID, true)
		if err != nil {
			return err
		}
		rows, err := t.query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2
			AND state = $3 AND created_at >= $4 ORDER BY seq LIMIT $5`, p.TenantID, ep.ID, string(model.WebhookFailed), newDBTime(since), maxRedeliverSince)
		if err != nil {
			return err
		}
		var olds []*model.WebhookDelivery
		for rows.Next() {
			_, d, err := scanDelivery(rows)
			if err != nil {
				rows.Close()
				return err
			}
			olds = append(olds, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, old := range olds {
			if err := redelivery(p.TenantID, old, now).insert(ctx, t); err != nil {
				return err
			}
		}
		n = len(olds)
		if n == 0 {
			return nil
		}
		return x.s.audit(ctx, t, p, model.AuditWebhookRedeliver, "webhook", ep.ID,
			map[string]model.Change{"since": {After: since.UTC().Format(time.RFC3339Nano)}, "count": {After: n}})
	})
	if err != nil {
		return 0, domainOrInternal(err, "redeliver webhooks")
	}
	return n, nil
}

// ---- The engine's side: fan-out, leases, outcomes. These span tenants:
// only the webhook engine calls them, never a door.

// WebhookRender renders a message's body (the same bytes for every
// endpoint that receives it).
type WebhookRender func(m *model.WebhookMessage) ([]byte, error)

// FanOutWebhooks reads up to limit events after the webhook cursor, in the
// stream's order and under the same rule as the watcher (only positions
// below the oldest running transaction, so none can gain a predecessor),
// and in one transaction queues a delivery per (message, matching enabled
// endpoint) and moves the cursor past them. The cursor row is locked for
// the transaction (PostgreSQL), so that instances fan out in turn and each
// event exactly once. It returns how many events it read (limit: more may
// wait). An endpoint receives the events written at or after its creation.
func (s *Store) FanOutWebhooks(ctx context.Context, limit int, render WebhookRender) (int, error) {
	seal, err := s.sealer(ctx)
	if err != nil {
		return 0, fmt.Errorf("fan out webhooks: %w", err)
	}
	n := 0
	err = s.write(ctx, func(ctx context.Context, t *txn) error {
		var cur model.Position
		lock := ``
		if s.pg {
			lock = ` FOR UPDATE`
		}
		if err := t.queryRow(ctx, `SELECT tx, seq FROM webhook_cursor WHERE id = 1`+lock).Scan(&cur.Tx, &cur.Seq); err != nil {
			return fmt.Errorf("read webhook cursor: %w", err)
		}
		// The gate is read in this statement, after the lock: it may lie
		// at or below this transaction's own id, which only defers later
		// events to the next call.
		rows, err := t.query(ctx, `SELECT `+eventColumns+` FROM events WHERE (tx, id) > ($1, $2) AND tx < `+s.gate()+`
			ORDER BY tx, id LIMIT $3`, cur.Tx, cur.Seq, limit)
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		var evs []*model.Event
		for rows.Next() {
			e, err := scanEvent(seal, rows)
			if err != nil {
				rows.Close()
				return err
			}
			evs = append(evs, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		n = len(evs)
		if n == 0 {
			return nil
		}
		if err := s.queueWebhooks(ctx, t, evs, render); err != nil {
			return err
		}
		last := evs[n-1].Pos
		return t.exec(ctx, "move webhook cursor", `UPDATE webhook_cursor SET tx = $1, seq = $2 WHERE id = 1`, last.Tx, last.Seq)
	})
	if err != nil {
		return 0, fmt.Errorf("fan out webhooks: %w", err)
	}
	return n, nil
}

// queueWebhooks queues the deliveries of evs.
func (s *Store) queueWebhooks(ctx context.Context, t *txn, evs []*model.Event, render WebhookRender) error {
	var tenants []string
	for _, e := range evs {
		tenants = append(tenants, e.TenantID)
	}
	tenants = dedupe(tenants)
	w := &where{}
	in(w, "tenant_id", tenants)
	rows, err := s.webhookEndpointRows(ctx, t, `WHERE `+w.String()+` AND enabled ORDER BY created_at, id`, w.args...)
	if err != nil {
		return fmt.Errorf("read webhook endpoints: %w", err)
	}
	endpoints := map[string][]*model.WebhookEndpoint{}
	for _, r := range rows {
		ep, err := r.toModel()
		if err != nil {
			return err
		}
		endpoints[ep.TenantID] = append(endpoints[ep.TenantID], ep)
	}
	byTenant := map[string][]*model.Event{}
	for _, e := range evs {
		if len(endpoints[e.TenantID]) > 0 {
			byTenant[e.TenantID] = append(byTenant[e.TenantID], e)
		}
	}
	for _, tenant := range tenants {
		tevs := byTenant[tenant]
		if len(tevs) == 0 {
			continue
		}
		eps := endpoints[tenant]
		look, err := s.webhookLookups(ctx, t, tenant, tevs, eps)
		if err != nil {
			return err
		}
		for _, e := range tevs {
			var incComps []*model.Component
			var moved []model.ComponentStatusChange
			for _, id := range look.candidates(e) {
				c := look.components[id]
				if c == nil {
					continue // deleted since
				}
				incComps = append(incComps, c)
				if !look.wantStatus {
					continue
				}
				if st := look.statusAt(id, e.At); st != look.sent[id] {
					look.sent[id] = st
					moved = append(moved, model.ComponentStatusChange{Component: c, Status: st})
					if err := t.exec(ctx, "record component status", `INSERT INTO webhook_component_status (tenant_id, component_id, status)
						VALUES ($1, $2, $3) ON CONFLICT (tenant_id, component_id) DO UPDATE SET status = excluded.status`, tenant, id, st); err != nil {
						return err
					}
				}
			}
			for _, m := range model.WebhookMessagesOf(e, incComps, moved) {
				var body []byte
				msgID := ""
				for _, ep := range eps {
					if e.At.Before(ep.CreatedAt) || !ep.Wants(m) {
						continue
					}
					if body == nil {
						if body, err = render(m); err != nil {
							// A message that cannot be rendered is a bug; it
							// must not stop the stream behind it.
							slog.Error("webhook: render message", "type", m.Type, "event", e.Cursor, "err", err)
							break
						}
						msgID = newMessageID()
					}
					resource := e.Incident.ID
					if m.Type == model.WebhookComponentStatus {
						resource = m.Components[0].ID
					}
					d := &deliveryRow{ID: model.NewID("whd", 16), TenantID: tenant, EndpointID: ep.ID, MessageID: msgID, Type: m.Type,
						ResourceID: resource, EventID: e.Cursor, Payload: body, At: newDBTime(s.clock.Now())}
					if err := d.insert(ctx, t); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

type webhookLookup struct {
	// incidentComponents: the components each incident affects now.
	incidentComponents map[string][]string
	components         map[string]*model.Component
	// levels: each candidate component's level history over the batch,
	// when an endpoint wants component.status; sent: the last status
	// reported.
	levels map[string][]levelSpan
	sent   map[string]string
	// wantStatus: an endpoint wants component.status.
	wantStatus bool
}

// levelSpan is a stretch of a component's uptime history.
type levelSpan struct {
	level int
	start time.Time
	end   *time.Time
}

// statusAt is a component's status at an instant: the level of the latest
// stretch covering it, operational when none does.
func (l *webhookLookup) statusAt(id string, at time.Time) string {
	st := model.LevelOperational
	for _, iv := range l.levels[id] {
		if !iv.start.After(at) && (iv.end == nil || iv.end.After(at)) {
			st = model.Level(iv.level)
		}
	}
	return st.String()
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// candidates are the components of an event: those whose affect it touched
// and those the incident affects now, sorted.
func (l *webhookLookup) candidates(e *model.Event) []string {
	return dedupe(append(slices.Clone(e.Components), l.incidentComponents[e.Incident.ID]...))
}

// webhookLookups reads what matching and component.status need, only when
// an endpoint of the tenant needs it.
func (s *Store) webhookLookups(ctx context.Context, t *txn, tenant string, evs []*model.Event, eps []*model.WebhookEndpoint) (*webhookLookup, error) {
	look := &webhookLookup{incidentComponents: map[string][]string{}, components: map[string]*model.Component{},
		levels: map[string][]levelSpan{}, sent: map[string]string{}}
	needComps, needStatus := false, false
	for _, ep := range eps {
		needComps = needComps || ep.Filter.NeedsComponents()
		needStatus = needStatus || slices.Contains(ep.Events, model.WebhookComponentStatus)
	}
	if !needComps && !needStatus {
		return look, nil
	}
	var incs []string
	for _, e := range evs {
		incs = append(incs, e.Incident.ID)
	}
	w := &where{}
	w.and("tenant_id = " + w.arg(tenant))
	in(w, "incident_id", dedupe(incs))
	rows, err := t.query(ctx, `SELECT incident_id, component_id FROM incident_affects WHERE `+w.String(), w.args...)
	if err != nil {
		return nil, fmt.Errorf("read affects: %w", err)
	}
	for rows.Next() {
		var inc, comp string
		if err := rows.Scan(&inc, &comp); err != nil {
			rows.Close()
			return nil, err
		}
		look.incidentComponents[inc] = append(look.incidentComponents[inc], comp)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read affects: %w", err)
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, look.candidates(e)...)
	}
	if ids = dedupe(ids); len(ids) == 0 {
		return look, nil
	}
	w = &where{}
	w.and("tenant_id = " + w.arg(tenant))
	in(w, "id", ids)
	comps, err := s.queryComponents(ctx, t, `WHERE `+w.String(), w.args...)
	if err != nil {
		return nil, fmt.Errorf("read components: %w", err)
	}
	for _, c := range comps {
		look.components[c.ID] = c
	}
	if look.wantStatus = needStatus; !needStatus {
		return look, nil
	}
	// Each component's level over the batch's span, from the uptime history
	// (recorded in the changes' own transactions), so that each event sees
	// the status it left, however late it is fanned out.
	from, to := evs[0].At, evs[0].At
	for _, e := range evs {
		from, to = minTime(from, e.At), maxTime(to, e.At)
	}
	w = &where{}
	w.and("tenant_id = " + w.arg(tenant))
	in(w, "component_id", ids)
	w.and("started_at <= " + w.arg(newDBTime(to)))
	w.and("(ended_at IS NULL OR ended_at > " + w.arg(newDBTime(from)) + ")")
	rows, err = t.query(ctx, `SELECT component_id, level, started_at, ended_at FROM uptime_intervals WHERE `+w.String()+` ORDER BY started_at`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("read component levels: %w", err)
	}
	for rows.Next() {
		var id string
		var iv levelSpan
		var start dbTime
		var end *dbTime
		if err := rows.Scan(&id, &iv.level, &start, &end); err != nil {
			rows.Close()
			return nil, err
		}
		iv.start, iv.end = start.Time, end.ptr()
		look.levels[id] = append(look.levels[id], iv)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read component levels: %w", err)
	}
	for _, id := range ids {
		look.sent[id] = "operational"
	}
	w = &where{}
	w.and("tenant_id = " + w.arg(tenant))
	in(w, "component_id", ids)
	rows, err = t.query(ctx, `SELECT component_id, status FROM webhook_component_status WHERE `+w.String(), w.args...)
	if err != nil {
		return nil, fmt.Errorf("read component status: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, err
		}
		look.sent[id] = st
	}
	return look, rows.Err()
}

// WebhookJob is a leased delivery: what a worker needs to send it.
type WebhookJob struct {
	Seq        int64
	ID         string
	TenantID   string
	EndpointID string
	MessageID  string
	Type       model.WebhookEventType
	URL        string
	Payload    []byte
	// Secrets sign the message: the current one, then the previous one
	// while its grace lasts.
	Secrets []string
	// Attempts made before this one.
	Attempts int
	// Lease identifies this lease: an outcome is recorded only under it.
	Lease string
}

// ClaimWebhookDeliveries leases up to n due deliveries until now+lease: of
// each enabled endpoint, only its oldest pending delivery (tests aside:
// they are outside the order, and are sent to disabled endpoints too), so
// that an endpoint has one delivery in flight and receives them in order.
// Instances claim disjoint sets (PostgreSQL: SKIP LOCKED; SQLite has one
// writer). A lease that ends without an outcome (a crash) makes the
// delivery due again. tenants, when not empty, limits the claim to theirs.
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, n int, lease time.Duration, tenants ...string) ([]*WebhookJob, error) {
	now := s.clock.Now()
	token := model.RandomString(16, "abcdefghijklmnopqrstuvwxyz0123456789")
	var jobs []*WebhookJob
	err := s.write(ctx, func(ctx context.Context, t *txn) error {
		lock := ``
		if s.pg {
			lock = ` FOR UPDATE OF d SKIP LOCKED`
		}
		w := &where{}
		w.args = []any{string(model.WebhookPending), newDBTime(now), string(model.WebhookTest), n}
		w.and("true")
		if len(tenants) > 0 {
			in(w, "d.tenant_id", tenants)
		}
		rows, err := t.query(ctx, `SELECT d.seq, d.id, d.tenant_id, d.endpoint_id, d.message_id, d.type, d.payload, d.attempts,
				ep.url, ep.secret, ep.previous_secret, ep.previous_secret_until
			FROM webhook_deliveries d JOIN webhook_endpoints ep ON ep.id = d.endpoint_id AND ep.tenant_id = d.tenant_id
			WHERE d.state = $1 AND d.next_attempt_at <= $2 AND (d.lease_until IS NULL OR d.lease_until <= $2)
				AND (d.type = $3 OR (ep.enabled AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o
					WHERE o.endpoint_id = d.endpoint_id AND o.state = $1 AND o.type <> $3 AND o.seq < d.seq)))
				AND `+w.String()+`
			ORDER BY d.next_attempt_at, d.seq LIMIT $4`+lock, w.args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var j WebhookJob
			var typ, payload, secret string
			var prev *string
			var until *dbTime
			if err := rows.Scan(&j.Seq, &j.ID, &j.TenantID, &j.EndpointID, &j.MessageID, &typ, &payload, &j.Attempts,
				&j.URL, &secret, &prev, &until); err != nil {
				rows.Close()
				return err
			}
			j.Type, j.Payload, j.Secrets, j.Lease = model.WebhookEventType(typ), []byte(payload), []string{secret}, token
			if prev != nil && until != nil && now.Before(until.Time) {
				j.Secrets = append(j.Secrets, *prev)
			}
			jobs = append(jobs, &j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, j := range jobs {
			if err := t.exec(ctx, "lease webhook delivery", `UPDATE webhook_deliveries SET lease_until = $1, lease_token = $2 WHERE seq = $3`,
				newDBTime(now.Add(lease)), token, j.Seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", err)
	}
	return jobs, nil
}

// WebhookAttempt is the outcome of one attempt.
type WebhookAttempt struct {
	At      time.Time
	Latency time.Duration
	// Status is the receiver's HTTP status, 0 when none came (Error says why).
	Status  int
	Error   string
	Excerpt []byte
	// Delivered: the receiver accepted the message (2xx).
	Delivered bool
	// Next is when to try again; zero abandons the delivery.
	Next time.Time
	// Disable, when not "", disables the endpoint with this reason (410
	// Gone).
	Disable string
	// DisableAfter disables the endpoint, when this attempt failed, if its
	// deliveries have failed without a success for longer than this.
	DisableAfter time.Duration
}

// RecordWebhookAttempt records the outcome of a leased delivery and the
// endpoint's health: a success ends its failure streak; a failure starts
// one, and one longer than DisableAfter (or a Disable reason) disables the
// endpoint, recorded with the reason and audited as the system's act.
// Tests do not count towards the endpoint's health. It reports false if
// the lease was lost (the delivery was deleted, or its lease ran out and
// another worker took it): nothing is recorded then.
func (s *Store) RecordWebhookAttempt(ctx context.Context, j *WebhookJob, a WebhookAttempt) (bool, error) {
	state, next := model.WebhookPending, any(nil)
	switch {
	case a.Delivered:
		state = model.WebhookDelivered
	case a.Next.IsZero() || a.Disable != "":
		state = model.WebhookFailed
	default:
		next = newDBTime(a.Next)
	}
	excerpt := excerptOf(a.Excerpt)
	at := newDBTime(a.At)
	recorded := false
	err := s.write(ctx, func(ctx context.Context, t *txn) error {
		n, err := t.execNow(ctx, "record webhook attempt", `UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, last_status = $2,
			last_error = $3, last_latency_us = $4, last_attempt_at = $5, response_excerpt = $6, next_attempt_at = $7, lease_until = NULL, lease_token = NULL
			WHERE seq = $8 AND lease_token = $9`,
			string(state), a.Status, a.Error, a.Latency.Microseconds(), at, excerpt, next, j.Seq, j.Lease)
		if err != nil || n == 0 {
			return err
		}
		recorded = true
		if j.Type == model.WebhookTest {
			return nil
		}
		if a.Delivered {
			return t.exec(ctx, "webhook endpoint healthy", `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, j.EndpointID)
		}
		reason := a.Disable
		var since *dbTime
		if err := t.queryRow(ctx, `UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2 AND enabled
			RETURNING failing_since`, at, j.EndpointID).Scan(&since); err != nil {
			if isNoRows(err) {
				return nil // disabled meanwhile
			}
			return err
		}
		if reason == "" && a.DisableAfter > 0 && since != nil && a.At.Sub(since.Time) > a.DisableAfter {
			reason = fmt.Sprintf("deliveries failed continuously since %s (longer than %s)", since.UTC().Format(time.RFC3339), a.DisableAfter)
		}
		if reason == "" {
			return nil
		}
		if err := t.exec(ctx, "disable webhook endpoint", `UPDATE webhook_endpoints SET enabled = $1, disabled_reason = $2, updated_at = $3, updated_by = $4
			WHERE id = $5`, false, reason, at, "system", j.EndpointID); err != nil {
			return err
		}
		slog.Warn("webhook endpoint disabled", "tenant", j.TenantID, "endpoint", j.EndpointID, "reason", reason)
		return s.audit(ctx, t, &model.Principal{TenantID: j.TenantID, ActorID: "system", CredentialID: "webhook-engine"},
			model.AuditWebhookUpdate, "webhook", j.EndpointID, map[string]model.Change{
				"enabled": {Before: true, After: false}, "disabledReason": {Before: "", After: reason}})
	})
	if err != nil {
		return false, fmt.Errorf("record webhook attempt: %w", err)
	}
	return recorded, nil
}

// excerptOf keeps at most MaxWebhookExcerpt bytes of b, cut at a rune
// boundary, with invalid UTF-8 and NULs replaced (the column is text).
func excerptOf(b []byte) string {
	if len(b) > model.MaxWebhookExcerpt {
		b = b[:model.MaxWebhookExcerpt]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	for len(s) > model.MaxWebhookExcerpt {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// ReleaseWebhookLease gives a leased delivery back unsent (a worker that
// stops): it is due again at once, for any instance.
func (s *Store) ReleaseWebhookLease(ctx context.Context, j *WebhookJob) error {
	if _, err := s.exec(ctx, `UPDATE webhook_deliveries SET lease_until = NULL, lease_token = NULL WHERE seq = $1 AND lease_token = $2`, j.Seq, j.Lease); err != nil {
		return fmt.Errorf("release webhook lease: %w", err)
	}
	return nil
}
