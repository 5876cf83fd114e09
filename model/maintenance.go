package model

import (
	"context"
	"fmt"
	"time"
)

// Maintenance is a scheduled maintenance window: while it is active, its
// components get no automatic incidents from monitoring.
type Maintenance struct {
	ID           string
	TenantID     string
	Description  string
	StartsAt     time.Time
	EndsAt       time.Time
	ComponentIDs []string
	CreatedAt    time.Time
	CreatedBy    string
}

// Active reports whether the window covers now.
func (m *Maintenance) Active(now time.Time) bool {
	return !now.Before(m.StartsAt) && now.Before(m.EndsAt)
}

// Version names the window's content (a window never changes; see
// Incident.Version for the rule).
func (m *Maintenance) Version() string {
	comps := m.ComponentIDs
	if comps == nil {
		comps = []string{}
	}
	return versionOf([]any{m.ID, m.Description, stamp(m.StartsAt), stamp(m.EndsAt), comps, stamp(m.CreatedAt), m.CreatedBy})
}

// MaintenanceInput creates a window.
type MaintenanceInput struct {
	Description  string
	StartsAt     time.Time
	EndsAt       time.Time
	ComponentIDs []string
}

// MaxMaintenanceComponents bounds a window's components.
const MaxMaintenanceComponents = 1000

// Validate lists every violation.
func (in *MaintenanceInput) Validate() []FieldError {
	errs := checkText("description", in.Description, MaxDescriptionLen, true)
	if in.StartsAt.IsZero() {
		errs = append(errs, FieldError{"startsAt", "startsAt is required"})
	} else {
		errs = append(errs, checkTime("startsAt", in.StartsAt)...)
	}
	if in.EndsAt.IsZero() {
		errs = append(errs, FieldError{"endsAt", "endsAt is required"})
	} else {
		errs = append(errs, checkTime("endsAt", in.EndsAt)...)
	}
	if !in.StartsAt.IsZero() && !in.EndsAt.IsZero() && !in.EndsAt.After(in.StartsAt) {
		errs = append(errs, FieldError{"endsAt", "endsAt must be after startsAt"})
	}
	if len(in.ComponentIDs) == 0 || len(in.ComponentIDs) > MaxMaintenanceComponents {
		errs = append(errs, FieldError{"components", fmt.Sprintf("components must list 1 to %d component ids", MaxMaintenanceComponents)})
	}
	return errs
}

// MaintenanceService manages maintenance windows (components:read / components:write).
type MaintenanceService interface {
	// Create schedules a window. Codes: unauthorized, forbidden, invalid
	// (unknown component ids included).
	Create(ctx context.Context, in MaintenanceInput) (*Maintenance, error)
	// List returns windows that have not ended, soonest first. Codes: unauthorized, forbidden.
	List(ctx context.Context) ([]*Maintenance, error)
	// Get returns one window, ended or not. Codes: unauthorized,
	// forbidden, not_found.
	Get(ctx context.Context, id string) (*Maintenance, error)
	// Delete cancels a window, under the caller's expected version
	// (WithExpectedVersion). Codes: unauthorized, forbidden, not_found,
	// precondition_failed, precondition_required.
	Delete(ctx context.Context, id string) error
}

// Audit actions of maintenance windows.
const (
	AuditMaintenanceCreate = "maintenance.create"
	AuditMaintenanceDelete = "maintenance.delete"
)
