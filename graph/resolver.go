// Package graph is the GraphQL door (gqlgen, schema-first: graph/*.graphqls).
// Its resolvers call the same model services as the REST door; the only
// logic here is translation between GraphQL types and the domain.
package graph

import (
	"github.com/incidentd/incidentd/live"
	"github.com/incidentd/incidentd/model"
)

// Resolver holds the services the resolvers call.
type Resolver struct {
	IncidentService    model.IncidentService
	APIKeyService      model.APIKeyService
	ComponentService   model.ComponentService
	AuditLog           model.AuditLog
	Relations          model.RelationService
	CatalogueService   model.CatalogueService
	IngestService      model.IngestService
	MaintenanceService model.MaintenanceService
	StatusService      model.StatusService
	EventLog           model.EventLog
	Hub                *live.Hub
	UptimeService      model.UptimeService
	SettingsService    model.SettingsService
	WebhookService     model.WebhookService
	Idempotency        model.IdempotencyStore
	// Public fans published status out; Version names a status's content.
	Public  *live.Public
	Version func(*model.StatusSummary) string
	// MaxSubscriptionsPerConn caps the subscriptions of one WebSocket.
	MaxSubscriptionsPerConn int
}
