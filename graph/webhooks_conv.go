package graph

import (
	"github.com/incidentd/incidentd/graph/gqlmodel"
	"github.com/incidentd/incidentd/model"
)

// webhookIn is a WebhookInput as the service takes it: what is given is set.
func webhookIn(in gqlmodel.WebhookInput) model.WebhookEndpointInput {
	var out model.WebhookEndpointInput
	if in.URL != nil {
		out.URL = model.Some(*in.URL)
	}
	if in.Description != nil {
		out.Description = model.Some(*in.Description)
	}
	if in.Events != nil {
		types := make([]model.WebhookEventType, len(in.Events))
		for i, e := range in.Events {
			types[i] = model.WebhookEventType(e)
		}
		out.Events = model.Some(types)
	}
	if in.Filter != nil {
		f := model.WebhookFilter{EventFilter: model.EventFilter{Severities: in.Filter.Severities, Statuses: in.Filter.Statuses,
			Services: in.Filter.Services}, Components: in.Filter.Components}
		if in.Filter.Labels != nil {
			f.Labels = labelsIn(in.Filter.Labels)
		}
		out.Filter = model.Some(f)
	}
	if in.Enabled != nil {
		out.Enabled = model.Some(*in.Enabled)
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
