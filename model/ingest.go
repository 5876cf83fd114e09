package model

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Impact is a monitoring impact level (the monitoring contract): how badly a component is
// affected. Each lines up with one of the incidents contract's severities.
type Impact int

const (
	ImpactMaintenance Impact = iota
	ImpactMinor
	ImpactMajor
	ImpactOutage
)

var impactNames = []string{"maintenance", "minor", "major", "outage"}

func (i Impact) String() string {
	if i < 0 || int(i) >= len(impactNames) {
		return strconv.Itoa(int(i))
	}
	return impactNames[i]
}

// Severity is the incidents-contract severity of an incident at this impact:
// maintenance→low, minor→medium, major→high, outage→critical.
func (i Impact) Severity() Severity {
	return [...]Severity{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}[i]
}

// ParseImpact reads a name (maintenance, minor, major, outage) or its number (0..3).
func ParseImpact(v string) (Impact, bool) {
	if n, err := strconv.Atoi(v); err == nil {
		return Impact(n), n >= 0 && n < len(impactNames)
	}
	i := slices.Index(impactNames, strings.ToLower(strings.TrimSpace(v)))
	return Impact(i), i >= 0
}

// OpenIncident is an open incident as the ingestion rules see it: the
// components it affects, each at an impact.
type OpenIncident struct {
	ID         string
	Components map[string]Impact
	// Size, when set, is the incident's component count, for callers that
	// pass only the components the decision looks at.
	Size int
}

func (o *OpenIncident) size() int {
	if o.Size > 0 {
		return o.Size
	}
	return len(o.Components)
}

// Impact is the incident's impact: the highest of its components'.
func (o *OpenIncident) Impact() Impact {
	var best Impact = -1
	for _, i := range o.Components {
		best = max(best, i)
	}
	return best
}

// IngestAction is what a monitoring report leads to.
type IngestAction int

const (
	// IngestNoChange: an open incident already covers the component at the
	// same or a higher impact; answer it.
	IngestNoChange IngestAction = iota
	// IngestCreate: open a new incident for the component.
	IngestCreate
	// IngestAdd: add the component to Target, an open incident of the requested impact.
	IngestAdd
	// IngestMove: move the component from Source to Target (open, of the requested
	// impact); CloseSource when it was Source's only component.
	IngestMove
	// IngestMoveToNew: move the component from Source into a new incident.
	IngestMoveToNew
	// IngestRaise: Source has only this component: raise its impact.
	IngestRaise
)

// IngestDecision is the outcome of DecideIngest.
type IngestDecision struct {
	Action      IngestAction
	Source      string // the open incident that affects the component, if any
	Target      string // the incident the component ends up in, when it exists already
	CloseSource bool
}

// DecideIngest applies the monitoring contract's rules to a report of component at impact,
// given the tenant's open incidents (newest first). It is pure: the store
// runs it under a per-tenant lock and carries out the decision.
func DecideIngest(open []OpenIncident, component string, impact Impact) IngestDecision {
	var cur *OpenIncident
	for i := range open {
		if _, ok := open[i].Components[component]; ok {
			cur = &open[i]
			break
		}
	}
	// The newest open incident of the requested impact, other than cur.
	target := ""
	for i := range open {
		if (cur == nil || open[i].ID != cur.ID) && open[i].size() > 0 && open[i].Impact() == impact {
			target = open[i].ID
			break
		}
	}
	switch {
	case cur != nil && cur.Components[component] >= impact:
		return IngestDecision{Action: IngestNoChange, Source: cur.ID, Target: cur.ID}
	case cur != nil && cur.size() == 1 && target != "":
		return IngestDecision{Action: IngestMove, Source: cur.ID, Target: target, CloseSource: true}
	case cur != nil && cur.size() == 1:
		return IngestDecision{Action: IngestRaise, Source: cur.ID, Target: cur.ID}
	case cur != nil && target != "":
		return IngestDecision{Action: IngestMove, Source: cur.ID, Target: target}
	case cur != nil:
		return IngestDecision{Action: IngestMoveToNew, Source: cur.ID}
	case target != "":
		return IngestDecision{Action: IngestAdd, Target: target}
	}
	return IngestDecision{Action: IngestCreate}
}

// ComponentReport is one monitoring report (the monitoring contract's POST /component_status).
type ComponentReport struct {
	Name       string
	Attributes map[string]string
	Impact     Impact
	Text       string // the new incident's title; default "Incident"
}

// IncidentUpdate is one entry of an incident's timeline (the status-page model).
type IncidentUpdate struct {
	Order       int
	DisplayName string
	Description string
	CreatedAt   time.Time
	CreatedBy   string
}

// Affect is a component an incident affects (the status-page model): an impact type and
// a severity value, and the monitoring level they stand at (LevelOf).
type Affect struct {
	ComponentID string
	Impact      Impact
	TypeID      string
	Severity    int
}

// IngestResult is the incident a report leads to, with its affects and timeline.
type IngestResult struct {
	Incident *Incident
	Impact   Impact
	Affects  []Affect
	Updates  []IncidentUpdate
	// AffectCount and UpdateCount are the full counts: Affects and Updates
	// may hold only the first components and the latest updates.
	AffectCount int
	UpdateCount int
	Created     bool
	// Maintenance, when set, is the active window that covers the component:
	// nothing changed and there is no incident.
	Maintenance *Maintenance
}

// ComponentState is a component with the open incidents that affect it.
type ComponentState struct {
	Component *Component
	Incidents []AffectingIncident
}

// AffectingIncident is an open incident as seen from a component it affects.
type AffectingIncident struct {
	ID       string
	Title    string
	Impact   Impact
	TypeID   string
	Severity int
}

// Worst is the highest impact on the component, -1 when none.
func (c *ComponentState) Worst() Impact {
	var w Impact = -1
	for _, i := range c.Incidents {
		w = max(w, i.Impact)
	}
	return w
}

// IngestService handles monitoring reports.
type IngestService interface {
	// Report applies a monitoring report. Codes: unauthorized, forbidden,
	// invalid (no such component, ambiguous component, bad impact).
	Report(ctx context.Context, r ComponentReport) (*IngestResult, error)
	// Status lists components (as ComponentService.List) with the open
	// incidents affecting each, in a bounded number of statements.
	// Codes: unauthorized, forbidden, invalid.
	Status(ctx context.Context, q ComponentQuery) ([]ComponentState, int, error)
}

// Validate lists every violation.
func (r *ComponentReport) Validate() []FieldError {
	var errs []FieldError
	errs = append(errs, checkText("name", r.Name, MaxComponentNameLen, true)...)
	if r.Text != "" {
		errs = append(errs, checkText("text", r.Text, MaxTitleLen, true)...)
	}
	if r.Impact < ImpactMaintenance || r.Impact > ImpactOutage {
		errs = append(errs, FieldError{"impact", "impact must be one of: maintenance, minor, major, outage (or 0..3)"})
	}
	in := ComponentInput{Labels: Some(r.Attributes)}
	for _, e := range in.Validate(false) {
		errs = append(errs, FieldError{strings.Replace(e.Field, "labels", "attributes", 1), strings.Replace(e.Message, "label", "attribute", 1)})
	}
	return errs
}
