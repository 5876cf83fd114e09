package rest

import (
	"encoding/json"
	"net/http"

	"github.com/incidentd/incidentd/model"
)

type statusHandlers struct {
	svc model.StatusService
}

type summaryJSON struct {
	GeneratedAt   string               `json:"generatedAt"`
	Components    []componentStateJSON `json:"components"`
	OpenIncidents []incidentJSON       `json:"openIncidents"`
	Maintenance   []maintenanceJSON    `json:"maintenance"`
	// Updates are the open incidents' timelines, by incident id (public
	// summaries only).
	Updates map[string][]updateJSON `json:"openIncidentUpdates,omitempty"`
}

// toSummaryJSON renders a summary; public ones leave out who did what.
func toSummaryJSON(s *model.StatusSummary, public bool) summaryJSON {
	out := summaryJSON{GeneratedAt: formatTime(s.GeneratedAt), Components: make([]componentStateJSON, len(s.Components)),
		OpenIncidents: make([]incidentJSON, len(s.OpenIncidents)), Maintenance: make([]maintenanceJSON, len(s.Maintenance))}
	for i, st := range s.Components {
		out.Components[i] = toComponentStateJSON(st)
	}
	for i, inc := range s.OpenIncidents {
		out.OpenIncidents[i] = toIncidentJSON(inc)
	}
	for i, m := range s.Maintenance {
		out.Maintenance[i] = toMaintenanceJSON(m)
	}
	if public {
		for i := range out.Components {
			out.Components[i].CreatedBy, out.Components[i].UpdatedBy = "", ""
		}
		for i := range out.OpenIncidents {
			// Service and tags are internal routing, not for the public
			// (GraphQL's PublicIncident has neither).
			out.OpenIncidents[i].CreatedBy, out.OpenIncidents[i].UpdatedBy = "", ""
			out.OpenIncidents[i].Service, out.OpenIncidents[i].Tags = nil, []string{}
		}
		for i := range out.Maintenance {
			out.Maintenance[i].CreatedBy = ""
		}
		out.Updates = make(map[string][]updateJSON, len(s.OpenIncidents))
		for _, inc := range s.OpenIncidents {
			ups := make([]updateJSON, len(s.Updates[inc.ID]))
			for i, u := range s.Updates[inc.ID] {
				ups[i] = toUpdateJSON(u)
				ups[i].CreatedBy = ""
			}
			out.Updates[inc.ID] = ups
		}
	}
	return out
}

func (h statusHandlers) summary(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	s, err := h.svc.Summary(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toSummaryJSON(s, false))
}

func (h statusHandlers) publication(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeComponentsWrite)
	if !ok {
		return
	}
	f := newFields(raw, "public", "allowedOrigins")
	var pub model.Publication
	if v, ok := raw["public"]; !ok || json.Unmarshal(v, &pub.Public) != nil {
		f.fail("public", "public must be true or false")
	}
	if o := f.strings("allowedOrigins"); o.Set && !o.Null {
		pub.AllowedOrigins = o.Value
	}
	if len(f.errs) > 0 {
		writeError(w, r, model.Invalid("Invalid request body", f.errs...))
		return
	}
	if err := h.svc.SetPublication(r.Context(), pub); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
