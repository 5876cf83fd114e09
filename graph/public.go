package graph

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	"github.com/incidentd/incidentd/graph/gqlmodel"
	"github.com/incidentd/incidentd/model"
)

// publicStatusKey carries a status read once for every viewer of a
// rendering (see the public handler), so that rendering reads nothing.
type publicStatusKey struct{}

type prefetched struct {
	tenant, version string
	sum             *model.StatusSummary
}

// expecting carries an expectedVersion argument to the store (as REST's
// If-Match does).
func expecting(ctx context.Context, v *string) context.Context {
	if v == nil {
		return ctx
	}
	return model.WithExpectedVersion(ctx, *v)
}

// toLabels lists labels in key order.
func toLabels(labels map[string]string) []gqlmodel.Label {
	keys := slices.Sorted(maps.Keys(labels))
	out := make([]gqlmodel.Label, len(keys))
	for i, k := range keys {
		out[i] = gqlmodel.Label{Key: k, Value: labels[k]}
	}
	return out
}

// toPublicStatus is a summary as anyone may see it: no who-did-what.
func toPublicStatus(s *model.StatusSummary, version string) *gqlmodel.PublicStatus {
	out := &gqlmodel.PublicStatus{Version: version, GeneratedAt: s.GeneratedAt,
		Components:    make([]gqlmodel.PublicComponent, len(s.Components)),
		OpenIncidents: make([]gqlmodel.PublicIncident, len(s.OpenIncidents)),
		Maintenance:   make([]gqlmodel.PublicMaintenance, len(s.Maintenance))}
	for i, st := range s.Components {
		c := gqlmodel.PublicComponent{ID: st.Component.ID, DisplayName: st.Component.DisplayName, Status: "operational",
			Labels: toLabels(st.Component.Labels)}
		if worst := st.Worst(); worst >= 0 {
			c.Status = worst.String()
		}
		out.Components[i] = c
	}
	for i, inc := range s.OpenIncidents {
		pi := gqlmodel.PublicIncident{ID: inc.ID, Title: inc.Title, Description: inc.Description, Severity: inc.Severity,
			Status: inc.Status, OccurredAt: inc.OccurredAt, ResolvedAt: inc.ResolvedAt, UpdatedAt: inc.UpdatedAt,
			Updates: make([]gqlmodel.PublicIncidentUpdate, len(s.Updates[inc.ID]))}
		for j, u := range s.Updates[inc.ID] {
			pi.Updates[j] = gqlmodel.PublicIncidentUpdate{Order: u.Order, DisplayName: u.DisplayName, Description: u.Description, CreatedAt: u.CreatedAt}
		}
		out.OpenIncidents[i] = pi
	}
	for i, m := range s.Maintenance {
		out.Maintenance[i] = gqlmodel.PublicMaintenance{ID: m.ID, Description: m.Description, StartsAt: m.StartsAt, EndsAt: m.EndsAt,
			Components: append([]string{}, m.ComponentIDs...)}
	}
	out.Components = capped(out.Components, "PublicStatus.components")
	out.OpenIncidents = capped(out.OpenIncidents, "PublicStatus.openIncidents")
	out.Maintenance = capped(out.Maintenance, "PublicStatus.maintenance")
	return out
}

// publicObject is the rendering an authenticated /graphql subscriber's
// messages come from: the whole public status, rendered once for all of
// them; each subscriber's own selection is then applied by gqlgen.
const publicObject = "graphql:object"

// publicStatus serves the publicStatus subscription on /graphql.
func (r *subscriptionResolver) publicStatus(ctx context.Context, tenant string) (<-chan *gqlmodel.PublicStatus, error) {
	p := model.PrincipalFrom(ctx)
	if p == nil {
		return nil, model.Unauthorized("")
	}
	release, err := r.claimSubscription(ctx)
	if err != nil {
		return nil, err
	}
	render := func(s *model.StatusSummary, version string) ([]byte, error) {
		return json.Marshal(toPublicStatus(s, version))
	}
	v, err := r.Public.Watch(ctx, tenant, "cred:"+p.CredentialID, publicObject, render, "")
	if err != nil {
		release()
		return nil, err
	}
	out := make(chan *gqlmodel.PublicStatus, 1)
	go func() {
		defer close(out)
		defer release()
		defer v.Close()
		for {
			b, err := v.Next(ctx)
			if err != nil {
				if err != ctx.Err() {
					endSubscription(ctx, err)
				}
				return
			}
			var st gqlmodel.PublicStatus
			if err := json.Unmarshal(b, &st); err != nil {
				endSubscription(ctx, model.Internal(err, "decode public status"))
				return
			}
			select {
			case out <- &st:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
