package model

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Severity is the incidents contract's incident severity.
type Severity string

const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
)

// Severities lists the severities from the most to the least severe.
var Severities = []Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow}

// Rank orders severities by gravity (critical 4 .. low 1), 0 when unknown.
func (s Severity) Rank() int {
	switch s {
	case SeverityCritical:
		return 4
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	}
	return 0
}

// Valid reports whether s is one of the known severities.
func (s Severity) Valid() bool { return s.Rank() > 0 }

// Status is the incidents contract's incident status.
type Status string

const (
	StatusOpen          Status = "open"
	StatusInvestigating Status = "investigating"
	StatusResolved      Status = "resolved"
	StatusClosed        Status = "closed"
)

// Statuses lists the statuses in lifecycle order.
var Statuses = []Status{StatusOpen, StatusInvestigating, StatusResolved, StatusClosed}

// Rank orders statuses along the lifecycle (open 1 .. closed 4), 0 when unknown.
func (s Status) Rank() int {
	switch s {
	case StatusOpen:
		return 1
	case StatusInvestigating:
		return 2
	case StatusResolved:
		return 3
	case StatusClosed:
		return 4
	}
	return 0
}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool { return s.Rank() > 0 }

// Ended reports whether an incident in status s is over.
func (s Status) Ended() bool { return s == StatusResolved || s == StatusClosed }

// Limits of the incidents contract, plus the ones it left open (tags).
const (
	MaxTitleLen       = 200
	MaxDescriptionLen = 5000
	MaxServiceLen     = 100
	MaxTags           = 32
	MaxTagLen         = 64
)

// Incident is the core resource.
type Incident struct {
	ID          string
	TenantID    string
	Title       string
	Description *string
	Severity    Severity
	Status      Status
	Service     *string
	Tags        []string
	OccurredAt  time.Time
	ResolvedAt  *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CreatedBy   string
	UpdatedBy   string
	IsDeleted   bool
	// Phase is the incident's phase (the status-page model), nil when it has none.
	Phase *PhaseRef
}

// IncidentCreate is the input of a creation. Zero Status means open.
type IncidentCreate struct {
	Title       string
	Description *string
	Severity    Severity
	Status      Status
	Service     *string
	Tags        []string
	OccurredAt  time.Time
	Phase       *PhaseRef
	// Affects are the components the incident affects (the status-page model); each
	// creates an impact visible from its component.
	Affects []AffectInput
}

// AffectInput names a component an incident affects, with an impact type
// and a severity value. Severity may be left out for a built-in type: it
// is then the type's level's value.
type AffectInput struct {
	ComponentID string
	TypeID      string
	Severity    *int
}

// MaxAffects bounds the components one request may set on an incident.
const MaxAffects = 1000

// Optional is a PATCH field that may be absent, null, or a value.
type Optional[T any] struct {
	Set   bool // the field was sent
	Null  bool // it was sent as null
	Value T
}

// Some returns an Optional holding v.
func Some[T any](v T) Optional[T] { return Optional[T]{Set: true, Value: v} }

// Null returns an Optional sent as null.
func Null[T any]() Optional[T] { return Optional[T]{Set: true, Null: true} }

// IncidentPatch is a partial update: only the fields that are Set change.
type IncidentPatch struct {
	Title       Optional[string]
	Description Optional[string]
	Severity    Optional[Severity]
	Status      Optional[Status]
	Service     Optional[string]
	Tags        Optional[[]string]
	OccurredAt  Optional[time.Time]
	ResolvedAt  Optional[time.Time]
	// Phase null clears the phase.
	Phase Optional[PhaseRef]
	// Affects replaces the whole list ([] clears it).
	Affects Optional[[]AffectInput]
}

// IncidentService manages incidents within the caller's tenant.
type IncidentService interface {
	// Create stores a new incident and returns it with its affects (by
	// component id). Codes: unauthorized, forbidden, invalid, business_rule.
	Create(ctx context.Context, in IncidentCreate) (*Incident, []Affect, error)
	// Get returns one live incident. Codes: unauthorized, forbidden, not_found.
	Get(ctx context.Context, id string) (*Incident, error)
	// GetWithAffects is Get with the incident's affects (by component id),
	// read in the same statement. Codes: as Get.
	GetWithAffects(ctx context.Context, id string) (*Incident, []Affect, error)
	// List returns a page of live incidents. Codes: unauthorized, forbidden, invalid.
	List(ctx context.Context, q IncidentQuery) (*IncidentPage, error)
	// Update applies a patch and returns the incident with its affects (by
	// component id). Codes: unauthorized, forbidden, invalid, not_found,
	// business_rule.
	Update(ctx context.Context, id string, p IncidentPatch) (*Incident, []Affect, error)
	// Delete marks an incident deleted. Codes: unauthorized, forbidden, not_found.
	Delete(ctx context.Context, id string) error
	// Updates returns an incident's timeline, oldest first. Codes:
	// unauthorized, forbidden, not_found.
	Updates(ctx context.Context, id string) ([]IncidentUpdate, error)
	// AddUpdate appends a user's entry to the timeline. Codes: unauthorized,
	// forbidden, invalid, not_found.
	AddUpdate(ctx context.Context, id string, in UpdateInput) (*IncidentUpdate, error)
}

// UpdateInput is a user's timeline entry.
type UpdateInput struct {
	DisplayName string
	Description string
}

// Validate lists every violation.
func (in *UpdateInput) Validate() []FieldError {
	errs := checkText("displayName", in.DisplayName, MaxTitleLen, true)
	return append(errs, checkText("description", in.Description, MaxDescriptionLen, false)...)
}

// AutoUpdates describes, as timeline entries, the changes between cur and
// next that the timeline records by itself (status, severity, phase; the
// affected components are AffectsUpdate's). phaseName names a phase ref
// (nil or "" when unknown).
func AutoUpdates(cur, next *Incident, phaseName func(PhaseRef) string) []UpdateInput {
	var out []UpdateInput
	if cur.Status != next.Status {
		out = append(out, UpdateInput{"Status changed", fmt.Sprintf("from %s to %s", cur.Status, next.Status)})
	}
	if cur.Severity != next.Severity {
		out = append(out, UpdateInput{"Severity changed", fmt.Sprintf("from %s to %s", cur.Severity, next.Severity)})
	}
	if !eqPtr(cur.Phase, next.Phase) {
		out = append(out, UpdateInput{"Phase changed", fmt.Sprintf("from %s to %s",
			describePhase(cur.Phase, phaseName), describePhase(next.Phase, phaseName))})
	}
	return out
}

// NormalizeTime brings t to the precision and zone every store keeps:
// microseconds (PostgreSQL's resolution), UTC.
func NormalizeTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func checkText(field string, s string, maxLen int, required bool) []FieldError {
	if strings.ContainsRune(s, 0) {
		return []FieldError{{field, field + " must not contain NUL characters"}}
	}
	n := utf8.RuneCountInString(s)
	switch {
	case required && strings.TrimSpace(s) == "" && n > 0:
		return []FieldError{{field, field + " must not be blank"}}
	case required && n < 1, n > maxLen:
		if required {
			return []FieldError{{field, fmt.Sprintf("%s must be between 1 and %d characters", field, maxLen)}}
		}
		return []FieldError{{field, fmt.Sprintf("%s must be at most %d characters", field, maxLen)}}
	}
	return nil
}

func checkService(s string) []FieldError {
	if strings.TrimSpace(s) == "" {
		return []FieldError{{"service", "service must not be blank (send null to leave it unset)"}}
	}
	return checkText("service", s, MaxServiceLen, false)
}

func checkTags(tags []string) []FieldError {
	var errs []FieldError
	if len(tags) > MaxTags {
		errs = append(errs, FieldError{"tags", fmt.Sprintf("tags must have at most %d items", MaxTags)})
	}
	for i, tag := range tags {
		field := fmt.Sprintf("tags[%d]", i)
		if strings.TrimSpace(tag) == "" {
			errs = append(errs, FieldError{field, field + " must not be blank"})
			continue
		}
		errs = append(errs, checkText(field, tag, MaxTagLen, true)...)
	}
	return errs
}

func checkSeverity(s Severity) []FieldError {
	if !s.Valid() {
		return []FieldError{{"severity", "severity must be one of: critical, high, medium, low"}}
	}
	return nil
}

func checkStatus(s Status) []FieldError {
	if !s.Valid() {
		return []FieldError{{"status", "status must be one of: open, investigating, resolved, closed"}}
	}
	return nil
}

// Validate checks every field and lists every violation.
func (in *IncidentCreate) Validate() []FieldError {
	var errs []FieldError
	errs = append(errs, checkText("title", in.Title, MaxTitleLen, true)...)
	if in.Description != nil {
		errs = append(errs, checkText("description", *in.Description, MaxDescriptionLen, false)...)
	}
	if in.Severity == "" {
		errs = append(errs, FieldError{"severity", "severity is required"})
	} else {
		errs = append(errs, checkSeverity(in.Severity)...)
	}
	if in.Status != "" {
		errs = append(errs, checkStatus(in.Status)...)
	}
	if in.Service != nil {
		errs = append(errs, checkService(*in.Service)...)
	}
	errs = append(errs, checkTags(in.Tags)...)
	if in.OccurredAt.IsZero() {
		errs = append(errs, FieldError{"occurredAt", "occurredAt is required"})
	} else {
		errs = append(errs, checkTime("occurredAt", in.OccurredAt)...)
	}
	if in.Phase != nil {
		errs = append(errs, checkPhaseRef(*in.Phase)...)
	}
	errs = append(errs, checkAffects(in.Affects)...)
	return errs
}

func checkPhaseRef(r PhaseRef) []FieldError {
	var errs []FieldError
	if r.Generation < 1 || r.Generation > MaxGeneration {
		errs = append(errs, FieldError{"phase.generation", fmt.Sprintf("phase.generation must be between 1 and %d", MaxGeneration)})
	}
	if r.Order < 0 || r.Order > MaxGeneration {
		errs = append(errs, FieldError{"phase.order", fmt.Sprintf("phase.order must be between 0 and %d", MaxGeneration)})
	}
	return errs
}

// checkAffects checks an affects list's shape; whether its components and
// types exist is the store's to check.
func checkAffects(as []AffectInput) []FieldError {
	var errs []FieldError
	if len(as) > MaxAffects {
		return []FieldError{{"affects", fmt.Sprintf("affects must have at most %d items", MaxAffects)}}
	}
	seen := map[string]int{}
	for i, a := range as {
		field := fmt.Sprintf("affects[%d]", i)
		if a.ComponentID == "" {
			errs = append(errs, FieldError{field + ".reference", field + ".reference (a component id) is required"})
		} else if j, ok := seen[a.ComponentID]; ok {
			errs = append(errs, FieldError{field + ".reference", fmt.Sprintf("%s.reference repeats affects[%d]", field, j)})
		} else {
			seen[a.ComponentID] = i
		}
		_, builtIn := BuiltInImpactType(a.TypeID)
		switch {
		case a.TypeID == "":
			errs = append(errs, FieldError{field + ".type", field + ".type (an impact type id) is required"})
		case a.Severity == nil && !builtIn:
			errs = append(errs, FieldError{field + ".severity", field + ".severity is required for an impact type that is not built in"})
		}
		if a.Severity != nil {
			errs = append(errs, checkSeverityValue(field+".severity", *a.Severity)...)
		}
		errs = append(errs, checkText(field+".reference", a.ComponentID, 64, false)...)
		errs = append(errs, checkText(field+".type", a.TypeID, 64, false)...)
	}
	return errs
}

// Validate checks every field that is set and lists every violation.
func (p *IncidentPatch) Validate() []FieldError {
	var errs []FieldError
	if p.Title.Set {
		if p.Title.Null {
			errs = append(errs, FieldError{"title", "title cannot be null"})
		} else {
			errs = append(errs, checkText("title", p.Title.Value, MaxTitleLen, true)...)
		}
	}
	if p.Description.Set && !p.Description.Null {
		errs = append(errs, checkText("description", p.Description.Value, MaxDescriptionLen, false)...)
	}
	if p.Severity.Set {
		if p.Severity.Null {
			errs = append(errs, FieldError{"severity", "severity cannot be null"})
		} else {
			errs = append(errs, checkSeverity(p.Severity.Value)...)
		}
	}
	if p.Status.Set {
		if p.Status.Null {
			errs = append(errs, FieldError{"status", "status cannot be null"})
		} else {
			errs = append(errs, checkStatus(p.Status.Value)...)
		}
	}
	if p.Service.Set && !p.Service.Null {
		errs = append(errs, checkService(p.Service.Value)...)
	}
	if p.Tags.Set {
		if p.Tags.Null {
			errs = append(errs, FieldError{"tags", "tags cannot be null (send [] to clear them)"})
		} else {
			errs = append(errs, checkTags(p.Tags.Value)...)
		}
	}
	if p.OccurredAt.Set {
		if p.OccurredAt.Null {
			errs = append(errs, FieldError{"occurredAt", "occurredAt cannot be null"})
		} else {
			errs = append(errs, checkTime("occurredAt", p.OccurredAt.Value)...)
		}
	}
	if p.ResolvedAt.Set && !p.ResolvedAt.Null {
		errs = append(errs, checkTime("resolvedAt", p.ResolvedAt.Value)...)
	}
	if p.Phase.Set && !p.Phase.Null {
		errs = append(errs, checkPhaseRef(p.Phase.Value)...)
	}
	if p.Affects.Set {
		if p.Affects.Null {
			errs = append(errs, FieldError{"affects", "affects cannot be null (send [] to clear them)"})
		} else {
			errs = append(errs, checkAffects(p.Affects.Value)...)
		}
	}
	return errs
}

// NewIncident builds a validated incident from in, applying the defaults and
// the lifecycle rules. Codes: invalid, business_rule.
func NewIncident(in IncidentCreate, id, tenant, actor string, now time.Time) (*Incident, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return nil, Invalid("Invalid request body", errs...)
	}
	now = NormalizeTime(now)
	inc := &Incident{
		ID:          id,
		TenantID:    tenant,
		Title:       in.Title,
		Description: in.Description,
		Severity:    in.Severity,
		Status:      in.Status,
		Service:     in.Service,
		Tags:        in.Tags,
		OccurredAt:  NormalizeTime(in.OccurredAt),
		Phase:       in.Phase,
		CreatedAt:   now,
		UpdatedAt:   now,
		CreatedBy:   actor,
		UpdatedBy:   actor,
	}
	if inc.Status == "" {
		inc.Status = StatusOpen
	}
	if inc.Tags == nil {
		inc.Tags = []string{}
	}
	if inc.Status.Ended() {
		inc.ResolvedAt = &now
	}
	if err := checkLifecycle(inc); err != nil {
		return nil, err
	}
	return inc, nil
}

// ApplyPatch returns cur with p applied and the lifecycle rules enforced:
// resolving stamps resolvedAt, reopening clears it, explicit fields win over
// both, and resolvedAt may not precede occurredAt. changed is false when the
// patch changes nothing, in which case next is cur untouched.
// Codes: invalid, business_rule.
func ApplyPatch(cur *Incident, p IncidentPatch, actor string, now time.Time) (next *Incident, changed bool, err error) {
	if errs := p.Validate(); len(errs) > 0 {
		return nil, false, Invalid("Invalid request body", errs...)
	}
	now = NormalizeTime(now)
	n := *cur
	n.Tags = append([]string(nil), cur.Tags...)
	if p.Title.Set {
		n.Title = p.Title.Value
	}
	if p.Description.Set {
		n.Description = optionalPtr(p.Description)
	}
	if p.Severity.Set {
		n.Severity = p.Severity.Value
	}
	if p.Service.Set {
		n.Service = optionalPtr(p.Service)
	}
	if p.Tags.Set {
		n.Tags = append([]string{}, p.Tags.Value...)
	}
	if p.OccurredAt.Set {
		n.OccurredAt = NormalizeTime(p.OccurredAt.Value)
	}
	if p.Phase.Set {
		n.Phase = optionalPtr(p.Phase)
	}
	if p.Status.Set && p.Status.Value != cur.Status {
		n.Status = p.Status.Value
		switch {
		case n.Status.Ended() && n.ResolvedAt == nil:
			n.ResolvedAt = &now
		case !n.Status.Ended() && cur.Status.Ended():
			n.ResolvedAt = nil
		}
	}
	if p.ResolvedAt.Set {
		if p.ResolvedAt.Null {
			n.ResolvedAt = nil
		} else {
			t := NormalizeTime(p.ResolvedAt.Value)
			n.ResolvedAt = &t
		}
	}
	if sameIncident(cur, &n) {
		return cur, false, nil
	}
	if err := checkLifecycle(&n); err != nil {
		return nil, false, err
	}
	n.UpdatedAt = now
	n.UpdatedBy = actor
	return &n, true, nil
}

func checkLifecycle(inc *Incident) error {
	if inc.ResolvedAt != nil && inc.ResolvedAt.Before(inc.OccurredAt) {
		return BusinessRule("an incident cannot be resolved before it occurred",
			FieldError{"resolvedAt", "resolvedAt must not be before occurredAt"})
	}
	return nil
}

func optionalPtr[T any](o Optional[T]) *T {
	if o.Null {
		return nil
	}
	v := o.Value
	return &v
}

func sameIncident(a, b *Incident) bool {
	return a.Title == b.Title && eqPtr(a.Description, b.Description) && a.Severity == b.Severity &&
		a.Status == b.Status && eqPtr(a.Service, b.Service) && slices.Equal(a.Tags, b.Tags) &&
		a.OccurredAt.Equal(b.OccurredAt) && eqTimePtr(a.ResolvedAt, b.ResolvedAt) && eqPtr(a.Phase, b.Phase)
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func eqTimePtr(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
