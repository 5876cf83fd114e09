package rest

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/incidentd/incidentd/model"
)

type ingestHandlers struct{ svc model.IngestService }

type affectJSON struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
}

type updateJSON struct {
	Order       int    `json:"order"`
	DisplayName string `json:"displayName"`
	Description string `json:"description"`
	CreatedAt   string `json:"createdAt"`
}

// reportJSON is seed 001's IncidentSchema answer: the incident the report
// led to, its impact, components and timeline.
type reportJSON struct {
	ID         string       `json:"id"`
	Title      string       `json:"title"`
	Impact     string       `json:"impact"`
	Severity   string       `json:"severity"`
	Status     string       `json:"status"`
	Created    bool         `json:"created"`
	Components []affectJSON `json:"components"`
	Updates    []updateJSON `json:"updates"`
	Incident   incidentJSON `json:"incident"`
}

// report serves POST /v1/component_status (seed 001): body {"name",
// "impact" (name or 0..3), "attributes": [{"name","value"}], "text"}.
func (h ingestHandlers) report(w http.ResponseWriter, r *http.Request) {
	raw, err := readObject(r)
	if err != nil {
		writeBodyError(w, r, err)
		return
	}
	f := newFields(raw, "name", "impact", "attributes", "text")
	rep := model.ComponentReport{Name: f.str("name").Value, Text: f.str("text").Value, Impact: -1}
	if v, ok := raw["impact"]; ok {
		var s string
		var n json.Number
		switch {
		case json.Unmarshal(v, &s) == nil:
		case json.Unmarshal(v, &n) == nil:
			s = n.String()
		}
		if i, ok := model.ParseImpact(s); ok {
			rep.Impact = i
		}
	} else {
		f.fail("impact", "impact is required")
	}
	if v, ok := raw["attributes"]; ok && !isNull(v) {
		var attrs []struct {
			Name  *string `json:"name"`
			Value *string `json:"value"`
		}
		if err := json.Unmarshal(v, &attrs); err != nil {
			f.fail("attributes", `attributes must be an array of {"name", "value"} strings`)
		}
		rep.Attributes = map[string]string{}
		for i, a := range attrs {
			if a.Name == nil || a.Value == nil {
				f.fail("attributes["+strconv.Itoa(i)+"]", `each attribute needs a "name" and a "value"`)
				continue
			}
			rep.Attributes[*a.Name] = *a.Value
		}
	}
	if errs := f.merge(rep.Validate()); len(errs) > 0 {
		writeError(w, r, model.Invalid("Invalid request body", sortDetails(errs)...))
		return
	}
	res, err := h.svc.Report(r.Context(), rep)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := reportJSON{ID: res.Incident.ID, Title: res.Incident.Title, Severity: string(res.Incident.Severity),
		Status: string(res.Incident.Status), Created: res.Created, Incident: toIncidentJSON(res.Incident),
		Components: make([]affectJSON, len(res.Affects)), Updates: make([]updateJSON, len(res.Updates))}
	if res.Impact >= 0 {
		out.Impact = res.Impact.String()
	}
	for i, a := range res.Affects {
		out.Components[i] = affectJSON{ID: a.ComponentID, Impact: a.Impact.String()}
	}
	for i, u := range res.Updates {
		out.Updates[i] = updateJSON{Order: u.Order, DisplayName: u.DisplayName, Description: u.Description, CreatedAt: formatTime(u.CreatedAt)}
	}
	writeJSON(w, http.StatusCreated, out)
}
