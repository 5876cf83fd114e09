package live

import (
	"context"
	"slices"
	"time"

	"github.com/incidentd/incidentd/model"
)

// ComponentStatus is a component's status after a change: the worst impact
// of the open incidents affecting it, or "operational".
type ComponentStatus struct {
	EventID   string
	Component *model.Component
	Status    string
	At        time.Time
}

// ComponentFilter narrows a component status stream: ids and labels (all
// must match); empty members do not filter.
type ComponentFilter struct {
	ComponentIDs []string
	Labels       map[string]string
}

func (f *ComponentFilter) match(c *model.Component) bool {
	if len(f.ComponentIDs) > 0 && !slices.Contains(f.ComponentIDs, c.ID) {
		return false
	}
	for k, v := range f.Labels {
		if got, ok := c.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// OpenComponentStatus streams the status changes of the tenant's components
// (components:read and incidents:read). They are derived from the incident
// events: for each, the statuses of the incident's components are read again
// and those that differ from what this stream last sent are emitted (every
// component once, the first time it is seen). Each event costs the stream
// three batched queries (one when no component of the event passes an id
// filter). A failed query ends the stream with that error, so that clients
// see a fault rather than a normal end.
func (h *Hub) OpenComponentStatus(ctx context.Context, log model.EventLog, rel model.RelationService, f ComponentFilter,
	emit func(ComponentStatus) bool, end func(error)) error {
	if _, err := model.Authorize(ctx, model.ScopeComponentsRead); err != nil {
		return err
	}
	last := map[string]string{}
	var failed error // written and read on the forwarder's goroutine only
	fail := func(err error) bool {
		if ctx.Err() == nil { // a client that left is not a fault
			failed = model.Internal(err, "live: component status")
		}
		return false
	}
	return h.Open(ctx, log, model.EventFilter{}, "", func(e *model.Event) bool {
		affects, err := rel.AffectsOf(ctx, []string{e.Incident.ID})
		if err != nil {
			return fail(err)
		}
		// The incident's components now, and those the change took away.
		var ids []string
		for _, a := range affects[e.Incident.ID] {
			ids = append(ids, a.ComponentID)
		}
		ids = append(ids, e.Components...)
		slices.Sort(ids)
		ids = slices.DeleteFunc(slices.Compact(ids), func(id string) bool {
			return len(f.ComponentIDs) > 0 && !slices.Contains(f.ComponentIDs, id)
		})
		if len(ids) == 0 {
			return true
		}
		comps, err := rel.ComponentsByID(ctx, ids)
		if err != nil {
			return fail(err)
		}
		affecting, err := rel.AffectingOf(ctx, ids)
		if err != nil {
			return fail(err)
		}
		for _, id := range ids {
			c := comps[id]
			if c == nil || !f.match(c) {
				continue
			}
			st := model.ComponentState{Component: c, Incidents: affecting[id]}
			status := "operational"
			if w := st.Worst(); w >= 0 {
				status = w.String()
			}
			if last[id] == status {
				continue
			}
			last[id] = status
			if !emit(ComponentStatus{EventID: e.Cursor, Component: c, Status: status, At: e.At}) {
				return false
			}
		}
		return true
	}, func(why error) {
		if why == nil {
			why = failed
		}
		end(why)
	})
}
