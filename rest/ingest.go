package rest

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/incidentd/incidentd/model"
)

type ingestHandlers struct{ svc model.IngestService }

type updateJSON struct {
	Order       int    `json:"order"`
	DisplayName string `json:"displayName"`
	Description string `json:"description"`
	CreatedAt   string `json:"createdAt"`
	CreatedBy   string `json:"createdBy"`
}

// reportJSON is the monitoring contract's IncidentSchema answer: the incident the report
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
	// ComponentCount and UpdateCount are the full counts: components holds
	// the first 100, updates the latest 20 (the rest via the incident's
	// timeline and GraphQL).
	ComponentCount int `json:"componentCount"`
	UpdateCount    int `json:"updateCount"`
	// Incident is null when an active maintenance answered the report.
	Incident    *incidentJSON    `json:"incident"`
	Maintenance *maintenanceJSON `json:"maintenance,omitempty"`
}

// report serves POST /v1/component_status (the monitoring contract): body {"name",
// "impact" (name or 0..3), "attributes": [{"name","value"}], "text"}.
func (h ingestHandlers) report(w http.ResponseWriter, r *http.Request) {
	raw, err := readObject(r)
	if err != nil {
		writeBodyError(w, r, err)
		return
	}
	rep, err := decodeReport(raw)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := h.svc.Report(r.Context(), rep)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := reportJSON{Components: make([]affectJSON, len(res.Affects)), Updates: make([]updateJSON, len(res.Updates)), Created: res.Created,
		ComponentCount: res.AffectCount, UpdateCount: res.UpdateCount}
	if m := res.Maintenance; m != nil {
		mj := toMaintenanceJSON(m)
		out.ID, out.Title, out.Severity, out.Status, out.Maintenance = m.ID, m.Description, string(model.SeverityLow), "maintenance", &mj
	} else {
		ij := toIncidentJSON(res.Incident)
		out.ID, out.Title, out.Severity, out.Status, out.Incident = res.Incident.ID, res.Incident.Title,
			string(res.Incident.Severity), string(res.Incident.Status), &ij
	}
	if res.Impact >= 0 {
		out.Impact = res.Impact.String()
	}
	for i, a := range res.Affects {
		out.Components[i] = toAffectJSON(a)
	}
	for i, u := range res.Updates {
		out.Updates[i] = toUpdateJSON(u)
	}
	writeJSON(w, http.StatusCreated, out)
}

type componentStateJSON struct {
	componentJSON
	Status    string                  `json:"status"`
	Incidents []affectingIncidentJSON `json:"incidents"`
}

// affectingIncidentJSON is an open incident seen from a component (seed
// 003's activelyAffectedBy: reference, type, severity) with its title and level.
type affectingIncidentJSON struct {
	ID        string `json:"id"`
	Reference string `json:"reference"`
	Title     string `json:"title"`
	Type      string `json:"type"`
	Severity  int    `json:"severity"`
	Impact    string `json:"impact"`
}

// status serves GET /v1/component_status (the monitoring contract): components with their
// open incidents; name (prefix), attribute_name + attribute_value (that one
// component: 404 when it does not exist), limit, offset.
func (h ingestHandlers) status(w http.ResponseWriter, r *http.Request) {
	p := readQuery(r.URL.Query(), params{"name": scalar, "attribute_name": scalar, "attribute_value": scalar, "limit": scalar, "offset": scalar})
	q := model.ComponentQuery{NamePrefix: p.str("name"), Limit: p.limit(), Offset: p.offset()}
	attrName, attrValue := p.str("attribute_name"), p.str("attribute_value")
	if (attrName == "") != (attrValue == "") {
		p.fail("attribute_name", "attribute_name and attribute_value go together")
	}
	if err := p.err(); err != nil {
		writeError(w, r, err)
		return
	}
	if attrName != "" {
		q.Labels = map[string]string{attrName: attrValue}
	}
	states, total, err := h.svc.Status(r.Context(), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if attrName != "" && total == 0 {
		writeError(w, r, &model.Error{Code: model.CodeNotFound, Message: "no component with attribute " + attrName + "=" + attrValue})
		return
	}
	out := struct {
		Data       []componentStateJSON `json:"data"`
		Pagination paginationJSON       `json:"pagination"`
	}{Data: make([]componentStateJSON, len(states)), Pagination: paginationJSON{TotalCount: total, Limit: q.Limit, Offset: q.Offset,
		HasMore: q.Offset+len(states) < total}}
	for i, st := range states {
		out.Data[i] = toComponentStateJSON(st)
	}
	writeJSON(w, http.StatusOK, out)
}

func toComponentStateJSON(st model.ComponentState) componentStateJSON {
	js := componentStateJSON{componentJSON: toComponentJSON(st.Component), Status: "operational",
		Incidents: make([]affectingIncidentJSON, len(st.Incidents))}
	if worst := st.Worst(); worst >= 0 {
		js.Status = worst.String()
	}
	for j, a := range st.Incidents {
		js.Incidents[j] = affectingIncidentJSON{ID: a.ID, Reference: a.ID, Title: a.Title, Type: a.TypeID, Severity: a.Severity, Impact: a.Impact.String()}
	}
	return js
}

// decodeReport reads the monitoring contract's report body, listing every problem.
func decodeReport(raw map[string]json.RawMessage) (model.ComponentReport, error) {
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
		return rep, model.Invalid("Invalid request body", sortDetails(errs)...)
	}
	return rep, nil
}
