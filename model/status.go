package model

import (
	"context"
	"time"
)

// StatusSummary is what a status widget shows: every component's current
// worst impact, the open incidents, and the maintenance to come.
type StatusSummary struct {
	Components    []ComponentState
	OpenIncidents []*Incident
	Maintenance   []*Maintenance
	GeneratedAt   time.Time
}

// MaxSummaryComponents bounds a summary's components.
const MaxSummaryComponents = 1000

// StatusService serves the status summary.
type StatusService interface {
	// Summary of the caller's tenant (components:read and incidents:read).
	// Codes: unauthorized, forbidden.
	Summary(ctx context.Context) (*StatusSummary, error)
	// SetPublic publishes (or withdraws) the tenant's summary for anyone,
	// read-only (components:write). Codes: unauthorized, forbidden.
	SetPublic(ctx context.Context, public bool) error
	// PublicSummary returns a published tenant's summary without credentials.
	// Codes: not_found (unknown or unpublished tenant: the same answer).
	PublicSummary(ctx context.Context, tenant string) (*StatusSummary, error)
}

// AuditStatusPublication records a change of a tenant's publication.
const AuditStatusPublication = "status.publication"
