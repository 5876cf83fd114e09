package model

import (
	"context"
	"fmt"
	"time"
)

// ImpactType is a kind of impact an incident has on a component (the status-page model).
// Four are built in and read-only: the levels monitoring reports (the monitoring contract),
// each lined up with one of the incidents contract's severities. Tenants add their own.
type ImpactType struct {
	ID          string
	DisplayName string
	Description string
	BuiltIn     bool
	// Level is the monitoring level of a built-in type.
	Level     Impact
	CreatedAt time.Time
	UpdatedAt time.Time
	CreatedBy string
	UpdatedBy string
}

// SeverityLevel is a named severity (the status-page model): it names the severity
// values above the next lower severity's value, up to its own Value
// (0..100, higher is worse). The four built-in ones are the incidents contract's
// severities and cover 0..100 on their own; tenants add finer ones.
type SeverityLevel struct {
	DisplayName string
	Value       int
	BuiltIn     bool
	// Severity is the incidents-contract severity of a built-in level.
	Severity  Severity
	CreatedAt time.Time
	UpdatedAt time.Time
	CreatedBy string
	UpdatedBy string
}

// PhaseList is one generation of a tenant's incident phases (the status-page model):
// replacing the list makes a new generation, and old ones stay readable so
// that incidents pointing into them keep their meaning. Generation 0 is the
// empty list a tenant has before it defines any.
type PhaseList struct {
	Generation int
	Phases     []string
	CreatedAt  time.Time
	CreatedBy  string
}

// PhaseRef points an incident at one phase of one generation; Order counts
// from 0.
type PhaseRef struct {
	Generation int
	Order      int
}

// Limits of the catalogue.
const (
	MaxCatalogueNameLen  = 100
	MaxCatalogueDescLen  = 1000
	MaxCustomImpactTypes = 100
	MaxCustomSeverities  = 100
	MaxPhases            = 32
	// MaxGeneration is the largest generation or order a phase ref may
	// name (the columns are 32-bit).
	MaxGeneration = 1<<31 - 1
)

// TypeID is the id of the built-in impact type of level i.
func (i Impact) TypeID() string { return "imp_" + i.String() }

// Value is the severity value monitoring gives an affect of level i: the
// built-in severity's value (maintenance and low 25 .. outage and critical 100).
func (i Impact) Value() int { return [...]int{25, 50, 75, 100}[i] }

// LevelOf is the monitoring level of an affect: what the monitoring contract's rules
// compare and the status summary shows. Maintenance is a kind of impact,
// not a gravity, so only the maintenance type is at that level; any other
// type is minor up to 50, major up to 75, outage above.
func LevelOf(typeID string, severity int) Impact {
	switch {
	case typeID == ImpactMaintenance.TypeID():
		return ImpactMaintenance
	case severity <= 50:
		return ImpactMinor
	case severity <= 75:
		return ImpactMajor
	}
	return ImpactOutage
}

var builtInImpactTypes = []ImpactType{
	{ID: ImpactMaintenance.TypeID(), Level: ImpactMaintenance, DisplayName: "Maintenance", Description: "Planned work; the component may be degraded or unavailable."},
	{ID: ImpactMinor.TypeID(), Level: ImpactMinor, DisplayName: "Minor", Description: "Degraded performance or a partial loss of function for some users."},
	{ID: ImpactMajor.TypeID(), Level: ImpactMajor, DisplayName: "Major", Description: "A significant loss of function for many users."},
	{ID: ImpactOutage.TypeID(), Level: ImpactOutage, DisplayName: "Outage", Description: "The component is unavailable."},
}

var builtInSeverities = []SeverityLevel{
	{Severity: SeverityLow, DisplayName: "Low", Value: 25},
	{Severity: SeverityMedium, DisplayName: "Medium", Value: 50},
	{Severity: SeverityHigh, DisplayName: "High", Value: 75},
	{Severity: SeverityCritical, DisplayName: "Critical", Value: 100},
}

// BuiltInImpactTypes lists the built-in impact types, mildest first.
func BuiltInImpactTypes() []ImpactType {
	out := make([]ImpactType, len(builtInImpactTypes))
	for i, t := range builtInImpactTypes {
		t.BuiltIn = true
		out[i] = t
	}
	return out
}

// BuiltInImpactType returns the built-in type with this id, if it is one.
func BuiltInImpactType(id string) (ImpactType, bool) {
	for _, t := range BuiltInImpactTypes() {
		if t.ID == id {
			return t, true
		}
	}
	return ImpactType{}, false
}

// BuiltInSeverities lists the incidents contract's severities with their values, mildest first.
func BuiltInSeverities() []SeverityLevel {
	out := make([]SeverityLevel, len(builtInSeverities))
	for i, s := range builtInSeverities {
		s.BuiltIn = true
		out[i] = s
	}
	return out
}

// BuiltInSeverity returns the built-in severity whose name folds to key.
func BuiltInSeverity(name string) (SeverityLevel, bool) {
	for _, s := range BuiltInSeverities() {
		if NameKey(s.DisplayName) == NameKey(name) {
			return s, true
		}
	}
	return SeverityLevel{}, false
}

// ImpactTypeInput creates an impact type, or patches one with its Set fields.
type ImpactTypeInput struct {
	DisplayName Optional[string]
	Description Optional[string]
}

// Validate lists every violation; create requires a display name.
func (in *ImpactTypeInput) Validate(create bool) []FieldError {
	errs := checkName(in.DisplayName, create)
	if in.Description.Set && in.Description.Null {
		errs = append(errs, FieldError{"description", "description cannot be null (send \"\" to clear it)"})
	} else if in.Description.Set {
		errs = append(errs, checkText("description", in.Description.Value, MaxCatalogueDescLen, false)...)
	}
	return errs
}

// SeverityInput creates a severity, or patches one with its Set fields.
type SeverityInput struct {
	DisplayName Optional[string]
	Value       Optional[int]
}

// Validate lists every violation; create requires both fields.
func (in *SeverityInput) Validate(create bool) []FieldError {
	errs := checkName(in.DisplayName, create)
	switch {
	case in.Value.Set && in.Value.Null:
		errs = append(errs, FieldError{"value", "value cannot be null"})
	case in.Value.Set:
		errs = append(errs, checkSeverityValue("value", in.Value.Value)...)
	case create:
		errs = append(errs, FieldError{"value", "value is required"})
	}
	return errs
}

func checkName(name Optional[string], create bool) []FieldError {
	switch {
	case name.Set && name.Null:
		return []FieldError{{"displayName", "displayName cannot be null"}}
	case name.Set:
		return checkText("displayName", name.Value, MaxCatalogueNameLen, true)
	case create:
		return []FieldError{{"displayName", "displayName is required"}}
	}
	return nil
}

func checkSeverityValue(field string, v int) []FieldError {
	if v < 0 || v > 100 {
		return []FieldError{{field, field + " must be an integer between 0 and 100"}}
	}
	return nil
}

// ValidatePhases checks a new phase list: 1 to MaxPhases names, each 1..100
// characters, not blank, no two alike (case-insensitive).
func ValidatePhases(names []string) []FieldError {
	var errs []FieldError
	if len(names) == 0 || len(names) > MaxPhases {
		errs = append(errs, FieldError{"phases", fmt.Sprintf("phases must have between 1 and %d names", MaxPhases)})
	}
	seen := map[string]int{}
	for i, n := range names {
		field := fmt.Sprintf("phases[%d]", i)
		if e := checkText(field, n, MaxCatalogueNameLen, true); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		if j, ok := seen[NameKey(n)]; ok {
			errs = append(errs, FieldError{field, fmt.Sprintf("%s repeats phases[%d]", field, j)})
			continue
		}
		seen[NameKey(n)] = i
	}
	return errs
}

// Name is the phase ref's name in l, or "" when it is outside l.
func (l *PhaseList) Name(r PhaseRef) string {
	if l == nil || r.Generation != l.Generation || r.Order < 0 || r.Order >= len(l.Phases) {
		return ""
	}
	return l.Phases[r.Order]
}

// CatalogueService manages a tenant's impact types, severities and phases.
// Reading needs incidents:read or components:read; writing needs
// components:write (the catalogue is status-page configuration).
type CatalogueService interface {
	// ImpactTypes lists the built-in types (mildest first), then the
	// tenant's by name. Codes: unauthorized, forbidden.
	ImpactTypes(ctx context.Context) ([]ImpactType, error)
	// ImpactType returns one. Codes: unauthorized, forbidden, not_found.
	ImpactType(ctx context.Context, id string) (*ImpactType, error)
	// CreateImpactType adds one. Codes: unauthorized, forbidden, invalid,
	// conflict (name taken), business_rule (too many).
	CreateImpactType(ctx context.Context, in ImpactTypeInput) (*ImpactType, error)
	// UpdateImpactType patches one. Codes: unauthorized, forbidden, invalid,
	// not_found, conflict (name taken), business_rule (built-in).
	UpdateImpactType(ctx context.Context, id string, in ImpactTypeInput) (*ImpactType, error)
	// DeleteImpactType removes one. Codes: unauthorized, forbidden,
	// not_found, conflict (an incident's affects use it), business_rule (built-in).
	DeleteImpactType(ctx context.Context, id string) error

	// Severities lists built-in and tenant severities by value. Codes:
	// unauthorized, forbidden.
	Severities(ctx context.Context) ([]SeverityLevel, error)
	// Severity returns one by display name (case-insensitive). Codes:
	// unauthorized, forbidden, not_found.
	Severity(ctx context.Context, name string) (*SeverityLevel, error)
	// CreateSeverity adds one. Codes: unauthorized, forbidden, invalid,
	// conflict (name or value taken), business_rule (too many).
	CreateSeverity(ctx context.Context, in SeverityInput) (*SeverityLevel, error)
	// UpdateSeverity patches one; a new name must be free too. Codes:
	// unauthorized, forbidden, invalid, not_found, conflict, business_rule (built-in).
	UpdateSeverity(ctx context.Context, name string, in SeverityInput) (*SeverityLevel, error)
	// DeleteSeverity removes one. Codes: unauthorized, forbidden, not_found,
	// business_rule (built-in).
	DeleteSeverity(ctx context.Context, name string) error

	// Phases returns a generation of the phase list (0: the current one).
	// Codes: unauthorized, forbidden, not_found.
	Phases(ctx context.Context, generation int) (*PhaseList, error)
	// ReplacePhases stores a new generation. Codes: unauthorized, forbidden, invalid.
	ReplacePhases(ctx context.Context, names []string) (*PhaseList, error)
}

// AuthorizeCatalogueRead checks that the caller may read the catalogue:
// incidents:read or components:read.
func AuthorizeCatalogueRead(ctx context.Context) (*Principal, error) {
	p, err := Authorize(ctx, ScopeIncidentsRead)
	if err == nil || AsError(err).Code != CodeForbidden {
		return p, err
	}
	if p, err := Authorize(ctx, ScopeComponentsRead); err == nil {
		return p, nil
	}
	return nil, Forbidden("this credential lacks the scope incidents:read or components:read")
}

// Audit actions of the catalogue.
const (
	AuditImpactTypeCreate = "impact_type.create"
	AuditImpactTypeUpdate = "impact_type.update"
	AuditImpactTypeDelete = "impact_type.delete"
	AuditSeverityCreate   = "severity.create"
	AuditSeverityUpdate   = "severity.update"
	AuditSeverityDelete   = "severity.delete"
	AuditPhasesReplace    = "phases.replace"
)

// SeverityNameFor is the name of the severity that covers value among
// levels (sorted by value): the one with the smallest value at or above it.
func SeverityNameFor(levels []SeverityLevel, value int) string {
	for _, l := range levels {
		if value <= l.Value {
			return l.DisplayName
		}
	}
	return ""
}

// describePhase renders a phase ref for the timeline.
func describePhase(r *PhaseRef, name func(PhaseRef) string) string {
	if r == nil {
		return "none"
	}
	n := ""
	if name != nil {
		n = name(*r)
	}
	if n == "" {
		return fmt.Sprintf("generation %d, order %d", r.Generation, r.Order)
	}
	return fmt.Sprintf("%q (generation %d, order %d)", n, r.Generation, r.Order)
}
