package model

import (
	"context"
	"slices"
	"time"
)

// EventType names a committed change.
type EventType string

const (
	EventIncidentCreated EventType = "incident.created"
	EventIncidentUpdated EventType = "incident.updated"
	EventIncidentDeleted EventType = "incident.deleted"
)

// Event is one committed change, written in the change's own transaction
// (outbox) and delivered to subscribers only after commit. Ids grow in
// commit order within a tenant, so a subscriber can resume after the last id
// it saw.
type Event struct {
	ID       int64
	TenantID string
	Type     EventType
	// Incident is the incident as it is after the change.
	Incident *Incident
	// Before is the incident before the change (nil for a creation).
	Before *Incident
	At     time.Time
	// Components are the components whose affect this change added,
	// removed or changed (their status may have moved even if the incident
	// no longer affects them).
	Components []string
}

// EventFilter narrows what a subscriber receives; members mean any of and
// empty members do not filter. The tenant is not part of it: it always comes
// from the principal.
type EventFilter struct {
	Severities []Severity
	Statuses   []Status
	Services   []string
}

// Match reports whether e passes f: the incident before or after the change
// matches, so that a widget watching investigating incidents also sees one
// leave that state.
func (f *EventFilter) Match(e *Event) bool {
	return f.matches(e.Incident) || (e.Before != nil && f.matches(e.Before))
}

func (f *EventFilter) matches(inc *Incident) bool {
	if inc == nil {
		return false
	}
	if len(f.Severities) > 0 && !slices.Contains(f.Severities, inc.Severity) {
		return false
	}
	if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, inc.Status) {
		return false
	}
	if len(f.Services) > 0 && (inc.Service == nil || !slices.Contains(f.Services, *inc.Service)) {
		return false
	}
	return true
}

// Validate lists every violation.
func (f *EventFilter) Validate() []FieldError {
	var errs []FieldError
	for _, s := range f.Severities {
		errs = append(errs, checkSeverity(s)...)
	}
	for _, s := range f.Statuses {
		errs = append(errs, checkStatus(s)...)
	}
	for _, s := range f.Services {
		errs = append(errs, checkText("services", s, MaxServiceLen, true)...)
	}
	return slices.CompactFunc(errs, func(a, b FieldError) bool { return a == b })
}

// MaxReplay bounds one replay page of EventLog.IncidentEvents.
const MaxReplay = 1000

// EventLog reads the retained events of the caller's tenant.
type EventLog interface {
	// IncidentEvents returns the tenant's incident events with id > after,
	// oldest first, at most limit (1..MaxReplay). Codes: unauthorized,
	// forbidden, invalid (after is older than the retention window, so events
	// may be missing: the client must reload instead of resuming).
	IncidentEvents(ctx context.Context, after int64, limit int) ([]*Event, error)
}
