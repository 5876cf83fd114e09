package webhook

import (
	"encoding/json"
	"time"

	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/rest"
)

// The body of every message: {"type", "timestamp", "data"}, as Standard
// Webhooks suggests. timestamp is when the change was committed (RFC 3339,
// UTC); data is the incident after the change (incident.*), or the
// component and its status (component.status).

type body struct {
	Type      model.WebhookEventType `json:"type"`
	Timestamp string                 `json:"timestamp"`
	Data      any                    `json:"data"`
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// componentStatusJSON is the data of a component.status message.
type componentStatusJSON struct {
	Component struct {
		ID          string            `json:"id"`
		DisplayName string            `json:"displayName"`
		Labels      map[string]string `json:"labels"`
	} `json:"component"`
	// Status is "operational" or the worst impact of the open incidents
	// affecting the component: maintenance, minor, major, outage.
	Status string `json:"status"`
	// IncidentID is the incident whose change moved the component.
	IncidentID string `json:"incidentId"`
}

// render builds a message's body.
func (e *Engine) render(m *model.WebhookMessage) ([]byte, error) {
	b := body{Type: m.Type, Timestamp: formatTime(m.At)}
	switch m.Type {
	case model.WebhookMaintenanceCreated, model.WebhookMaintenanceStarted, model.WebhookMaintenanceEnded:
		b.Data = rest.WebhookMaintenance(m.Maintenance, m.Cancelled) // the window as the REST door shows it
	case model.WebhookComponentStatus:
		var d componentStatusJSON
		c := m.Components[0]
		d.Component.ID, d.Component.DisplayName, d.Component.Labels = c.ID, c.DisplayName, c.Labels
		if d.Component.Labels == nil {
			d.Component.Labels = map[string]string{}
		}
		d.Status, d.IncidentID = m.Status, m.Event.Incident.ID
		b.Data = d
	default:
		b.Data = rest.WebhookIncident(m.Event) // the incident as the REST door shows it
	}
	return json.Marshal(b)
}
