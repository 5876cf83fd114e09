package graph

import (
	"strconv"

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
	model.EventIncidentCreated: gqlmodel.IncidentEventTypeCreated,
	model.EventIncidentUpdated: gqlmodel.IncidentEventTypeUpdated,
	model.EventIncidentDeleted: gqlmodel.IncidentEventTypeDeleted,
}

func eventOut(e *model.Event) *gqlmodel.IncidentEvent {
	return &gqlmodel.IncidentEvent{ID: strconv.FormatInt(e.ID, 10), Type: eventTypes[e.Type], Incident: e.Incident, At: e.At}
}

func createIn(in gqlmodel.CreateIncidentInput) model.IncidentCreate {
	out := model.IncidentCreate{
		Title: in.Title, Description: in.Description, Severity: in.Severity,
		Service: in.Service, Tags: in.Tags, OccurredAt: in.OccurredAt,
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
	return p
}

func labelsIn(in []gqlmodel.LabelInput) map[string]string {
	out := make(map[string]string, len(in))
	for _, l := range in {
		out[l.Key] = l.Value
	}
	return out
}
