package webhook

import (
	"encoding/json"
	"time"

	"github.com/incidentd/incidentd/model"
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

// incidentJSON mirrors the incidents contract's Incident as the REST door
// shows it (without affects, which events do not carry).
type incidentJSON struct {
	ID          string        `json:"id"`
	Title       string        `json:"title"`
	Description *string       `json:"description"`
	Severity    string        `json:"severity"`
	Status      string        `json:"status"`
	Service     *string       `json:"service"`
	Tags        []string      `json:"tags"`
	OccurredAt  string        `json:"occurredAt"`
	ResolvedAt  *string       `json:"resolvedAt"`
	CreatedAt   string        `json:"createdAt"`
	UpdatedAt   string        `json:"updatedAt"`
	CreatedBy   string        `json:"createdBy"`
	UpdatedBy   string        `json:"updatedBy"`
	IsDeleted   bool          `json:"isDeleted"`
	Phase       *phaseRefJSON `json:"phase"`
}

type phaseRefJSON struct {
	Generation int `json:"generation"`
	Order      int `json:"order"`
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// IncidentData is the default data of incident messages.
func IncidentData(e *model.Event) any {
	i := e.Incident
	out := incidentJSON{ID: i.ID, Title: i.Title, Description: i.Description, Severity: string(i.Severity), Status: string(i.Status),
		Service: i.Service, Tags: i.Tags, OccurredAt: formatTime(i.OccurredAt), CreatedAt: formatTime(i.CreatedAt),
		UpdatedAt: formatTime(i.UpdatedAt), CreatedBy: i.CreatedBy, UpdatedBy: i.UpdatedBy, IsDeleted: i.IsDeleted}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if i.ResolvedAt != nil {
		s := formatTime(*i.ResolvedAt)
		out.ResolvedAt = &s
	}
	if i.Phase != nil {
		out.Phase = &phaseRefJSON{Generation: i.Phase.Generation, Order: i.Phase.Order}
	}
	return out
}

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
	b := body{Type: m.Type, Timestamp: formatTime(m.Event.At)}
	switch m.Type {
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
		b.Data = e.opt.Payload(m.Event)
	}
	return json.Marshal(b)
}
