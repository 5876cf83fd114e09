package graph

import (
	"github.com/incidentd/incidentd/graph/gqlmodel"
	"github.com/incidentd/incidentd/model"
)

// Severity and Status bind to the domain's types (gqlgen.yml enum_values):
// GraphQL spells them in upper case, the domain in lower case.

var sortFields = map[gqlmodel.IncidentSortField]model.SortField{
	gqlmodel.IncidentSortFieldOccurredAt: model.SortOccurredAt,
	gqlmodel.IncidentSortFieldCreatedAt:  model.SortCreatedAt,
	gqlmodel.IncidentSortFieldUpdatedAt:  model.SortUpdatedAt,
	gqlmodel.IncidentSortFieldSeverity:   model.SortSeverity,
	gqlmodel.IncidentSortFieldStatus:     model.SortStatus,
	gqlmodel.IncidentSortFieldTitle:      model.SortTitle,
}

func filterIn(f *gqlmodel.IncidentFilter) model.IncidentFilter {
	if f == nil {
		return model.IncidentFilter{}
	}
	out := model.IncidentFilter{
		Statuses: f.Statuses, Severities: f.Severities,
		Service: f.Service, From: f.FromOccurredAt, To: f.ToOccurredAt,
	}
	if f.Keyword != nil {
		out.Keyword = *f.Keyword
	}
	return out
}

func eventFilterIn(f *gqlmodel.IncidentEventFilter) model.EventFilter {
	if f == nil {
		return model.EventFilter{}
	}
	return model.EventFilter{Severities: f.Severities, Statuses: f.Statuses, Services: f.Services}
}

var eventTypes = map[model.EventType]gqlmodel.IncidentEventType{
	model.EventIncidentCreated:     gqlmodel.IncidentEventTypeCreated,
	model.EventIncidentUpdated:     gqlmodel.IncidentEventTypeUpdated,
	model.EventIncidentDeleted:     gqlmodel.IncidentEventTypeDeleted,
	model.EventIncidentUpdateAdded: gqlmodel.IncidentEventTypeUpdateAdded,
}

func eventOut(e *model.Event) *gqlmodel.IncidentEvent {
	return &gqlmodel.IncidentEvent{ID: e.Cursor, Type: eventTypes[e.Type], Incident: e.Incident, At: e.At}
}

func createIn(in gqlmodel.CreateIncidentInput) model.IncidentCreate {
	out := model.IncidentCreate{
		Title: in.Title, Description: in.Description, Severity: in.Severity,
		Service: in.Service, Tags: in.Tags, OccurredAt: in.OccurredAt,
		Affects: affectsIn(in.Affects),
	}
	if in.Phase != nil {
		out.Phase = &model.PhaseRef{Generation: in.Phase.Generation, Order: in.Phase.Order}
	}
	if in.Status != nil {
		out.Status = *in.Status
	}
	return out
}

// optional maps a GraphQL omittable nullable field to the domain's patch field.
func optional[G, M any](o interface {
	IsSet() bool
	Value() *G
}, conv func(G) M) model.Optional[M] {
	if !o.IsSet() {
		return model.Optional[M]{}
	}
	v := o.Value()
	if v == nil {
		return model.Null[M]()
	}
	return model.Some(conv(*v))
}

func same[T any](v T) T { return v }

func patchIn(in gqlmodel.UpdateIncidentInput) model.IncidentPatch {
	p := model.IncidentPatch{
		Title:       optional(in.Title, same[string]),
		Description: optional(in.Description, same[string]),
		Severity:    optional(in.Severity, same[model.Severity]),
		Status:      optional(in.Status, same[model.Status]),
		Service:     optional(in.Service, same[string]),
		OccurredAt:  optional(in.OccurredAt, same),
		ResolvedAt:  optional(in.ResolvedAt, same),
	}
	if in.Tags.IsSet() {
		if v := in.Tags.Value(); v == nil {
			p.Tags = model.Null[[]string]()
		} else {
			p.Tags = model.Some(v)
		}
	}
	p.Phase = optional(in.Phase, func(ph gqlmodel.PhaseInput) model.PhaseRef {
		return model.PhaseRef{Generation: ph.Generation, Order: ph.Order}
	})
	if in.Affects.IsSet() {
		if v := in.Affects.Value(); v == nil {
			p.Affects = model.Null[[]model.AffectInput]()
		} else {
			p.Affects = model.Some(affectsIn(v))
		}
	}
	return p
}

func affectsIn(in []gqlmodel.AffectInput) []model.AffectInput {
	if in == nil {
		return nil
	}
	out := make([]model.AffectInput, len(in))
	for i, a := range in {
		out[i] = model.AffectInput{ComponentID: a.Reference, TypeID: a.Type, Severity: a.Severity}
	}
	return out
}

// optionalValue maps a nullable GraphQL argument to a patch field: absent
// and null both leave the field alone.
func optionalValue[T any](v *T) model.Optional[T] {
	if v == nil {
		return model.Optional[T]{}
	}
	return model.Some(*v)
}

func impactTypeOut(t *model.ImpactType) *gqlmodel.ImpactType {
	if t == nil {
		return nil
	}
	out := &gqlmodel.ImpactType{ID: t.ID, DisplayName: t.DisplayName, Description: t.Description, BuiltIn: t.BuiltIn, Version: t.Version()}
	if t.BuiltIn {
		name, value, sev := t.Level.String(), int(t.Level), t.Level.Severity()
		out.Name, out.Value, out.Severity = &name, &value, &sev
		return out
	}
	out.CreatedAt, out.UpdatedAt, out.CreatedBy, out.UpdatedBy = &t.CreatedAt, &t.UpdatedAt, &t.CreatedBy, &t.UpdatedBy
	return out
}

func severityOut(l *model.SeverityLevel) *gqlmodel.SeverityLevel {
	if l == nil {
		return nil
	}
	out := &gqlmodel.SeverityLevel{DisplayName: l.DisplayName, Value: l.Value, BuiltIn: l.BuiltIn, Version: l.Version()}
	if l.BuiltIn {
		out.Name = &l.Severity
		return out
	}
	out.CreatedAt, out.UpdatedAt, out.CreatedBy, out.UpdatedBy = &l.CreatedAt, &l.UpdatedAt, &l.CreatedBy, &l.UpdatedBy
	return out
}

func phasesOut(l *model.PhaseList) *gqlmodel.PhaseList {
	if l == nil {
		return nil
	}
	out := &gqlmodel.PhaseList{Generation: l.Generation, Phases: l.Phases, Version: l.Version()}
	if l.Generation > 0 {
		out.CreatedAt, out.CreatedBy = &l.CreatedAt, &l.CreatedBy
	}
	return out
}

func labelsIn(in []gqlmodel.LabelInput) map[string]string {
	out := make(map[string]string, len(in))
	for _, l := range in {
		out[l.Key] = l.Value
	}
	return out
}
