package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

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

// checkVersion applies the caller's expected version to a locked endpoint.
func (x webhooks) checkVersion(ctx context.Context, t *txn, row *webhookEndpointRow) error {
	ep, err := row.toModel()
	if err != nil {
		return err
	}
	return x.s.checkVersion(ctx, t, row.TenantID, ep.Version())
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
			x.s.box.seal(row.ID, row.Secret), nil, nil, row.CreatedAt, row.UpdatedAt, row.CreatedBy, row.UpdatedBy); err != nil {
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
		if err := x.checkVersion(ctx, t, row); err != nil {
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
		// The fan-out reads endpoints under the cursor's lock without
		// locking them: taking it first, the deletion cannot fall between
		// its reading the endpoint and queuing deliveries for it.
		if _, err := x.s.lockWebhookCursor(ctx, t); err != nil {
			return err
		}
		row, err := x.loadEndpoint(ctx, t, p.TenantID, id, true)
		if err != nil {
			return err
		}
		if err := x.checkVersion(ctx, t, row); err != nil {
			return err
		}
		if err := t.exec(ctx, "delete webhook attempts", `DELETE FROM webhook_attempts WHERE endpoint_id = $1 AND tenant_id = $2`, row.ID, row.TenantID); err != nil {
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
		if err := x.checkVersion(ctx, t, row); err != nil {
			return err
		}
		now := x.s.clock.Now()
		until := newDBTime(now.Add(model.WebhookSecretGrace))
		prev := row.Secret // as stored (sealed or not): it moves over as it is
		row.PreviousSecret, row.PreviousSecretUntil, row.Secret = &prev, &until, x.s.box.seal(row.ID, secret)
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
		row, err := x.loadEndpoint(ctx, t, p.TenantID, id, true) // locked: not deleted meanwhile
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

func (x webhooks) Redeliver(ctx context.Context, endpointID, deliveryID string) (*model.WebhookDelivery, error) {
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
		if old == nil || endpointID != "" && old.EndpointID != endpointID {
			return model.NotFound("Webhook delivery", deliveryID)
		}
		// Locked: an endpoint deleted meanwhile gets no delivery.
		if _, err := x.loadEndpoint(ctx, t, p.TenantID, old.EndpointID, true); err != nil {
			return err
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
