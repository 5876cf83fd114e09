package store

import (
	"context"
	"time"

	"github.com/incidentd/incidentd/model"
)

// Delivery returns one delivery of the caller's endpoint with every
// attempt, oldest first.
func (x webhooks) Delivery(ctx context.Context, endpointID, deliveryID string) (*model.WebhookDelivery, error) {
	p, err := model.Authorize(ctx, model.ScopeWebhooksAdmin)
	if err != nil {
		return nil, err
	}
	rows, err := x.s.query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2 AND tenant_id = $3`,
		deliveryID, endpointID, p.TenantID)
	if err != nil {
		return nil, model.Internal(err, "get webhook delivery")
	}
	var d *model.WebhookDelivery
	for rows.Next() {
		if _, d, err = scanDelivery(rows); err != nil {
			rows.Close()
			return nil, model.Internal(err, "get webhook delivery")
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, model.Internal(err, "get webhook delivery")
	}
	if d == nil {
		return nil, model.NotFound("Webhook delivery", deliveryID)
	}
	rows, err = x.s.query(ctx, `SELECT n, at, status, error, latency_us, response_excerpt FROM webhook_attempts
		WHERE delivery_id = $1 AND tenant_id = $2 ORDER BY n LIMIT $3`, deliveryID, p.TenantID, model.MaxWebhookRetries+1)
	if err != nil {
		return nil, model.Internal(err, "get webhook delivery")
	}
	defer rows.Close()
	d.AttemptLog = []model.WebhookDeliveryAttempt{}
	for rows.Next() {
		var a model.WebhookDeliveryAttempt
		var at dbTime
		var latency int64
		if err := rows.Scan(&a.Number, &at, &a.Status, &a.Error, &latency, &a.ResponseExcerpt); err != nil {
			return nil, model.Internal(err, "get webhook delivery")
		}
		a.At, a.Latency = at.Time, time.Duration(latency)*time.Microsecond
		d.AttemptLog = append(d.AttemptLog, a)
	}
	if err := rows.Err(); err != nil {
		return nil, model.Internal(err, "get webhook delivery")
	}
	return d, nil
}
