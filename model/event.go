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
	// EventIncidentUpdateAdded: an entry joined the incident's timeline
	// (the incident itself is unchanged: before and after are equal).
	EventIncidentUpdateAdded EventType = "incident.update_added"
)

// Position is an event's place in the one order every replica delivers
// events in. On PostgreSQL Tx is the id of the transaction that wrote the
// event and Seq the row's id; an event is delivered only once every
// transaction with a smaller id has ended, so that a delivered position
// can never gain a predecessor. On SQLite (one writer) Tx is 0 and Seq
// grows in commit order. Positions never reach clients as numbers: they
// see Event.Cursor, an opaque token.
type Position struct{ Tx, Seq int64 }

// Compare orders positions: -1, 0 or +1.
func (p Position) Compare(q Position) int {
	switch {
	case p.Tx != q.Tx:
		return cmpInt(p.Tx, q.Tx)
	default:
		return cmpInt(p.Seq, q.Seq)
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Event is one committed change, written in the change's own transaction
// (outbox) and delivered to subscribers only after commit, in position
// order, so that a subscriber can resume after the last event it saw.
type Event struct {
	Pos Position
	// Cursor is the opaque, tenant-bound token of Pos that clients see as
	// the event's id and pass back to resume after it.
	Cursor   string
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

// StreamStart is the resume point before every retained event: resuming
// from it replays all of them (what was pruned is simply not there).
const StreamStart = "0"

// MaxReplay bounds one replay page of EventLog.IncidentEvents.
const MaxReplay = 1000

// EventLog reads the retained events of the caller's tenant.
type EventLog interface {
	// ParsePosition reads a resume token (an event's Cursor) of the
	// caller's tenant. Codes: unauthorized, forbidden, invalid (not a
	// token of this tenant).
	ParsePosition(ctx context.Context, token string) (Position, error)
	// IncidentEvents returns the tenant's incident events after the
	// position, in order, at most limit (1..MaxReplay), only those whose
	// position is final (see Position). Codes: unauthorized, forbidden,
	// invalid (after is older than the retention window, so events may be
	// missing: the client must reload instead of resuming).
	IncidentEvents(ctx context.Context, after Position, limit int) ([]*Event, error)
}
