package rest

import (
	"net/http"

	"github.com/incidentd/incidentd/model"
)

type impactTypeJSON struct {
	Name        string         `json:"name"`
	Value       int            `json:"value"`
	DisplayName string         `json:"displayName"`
	Description string         `json:"description"`
	Severity    model.Severity `json:"severity"`
}

type severityLevelJSON struct {
	Name        model.Severity `json:"name"`
	DisplayName string         `json:"displayName"`
	Value       int            `json:"value"`
}

// noQuery refuses query parameters on endpoints that take none, so that a
// misspelt filter is not silently ignored.
func noQuery(w http.ResponseWriter, r *http.Request) bool {
	var errs []model.FieldError
	for name := range r.URL.Query() {
		errs = append(errs, model.FieldError{Field: name, Message: "unknown query parameter " + name})
	}
	if len(errs) > 0 {
		writeError(w, r, model.Invalid("Invalid query parameters", sortDetails(errs)...))
		return false
	}
	return true
}

// impactTypes serves GET /v1/impact-types: the built-in catalogue.
func impactTypes(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	ts, err := model.ImpactTypes(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Data []impactTypeJSON `json:"data"`
	}{Data: make([]impactTypeJSON, len(ts))}
	for i, t := range ts {
		out.Data[i] = impactTypeJSON{Name: t.Impact.String(), Value: int(t.Impact), DisplayName: t.DisplayName,
			Description: t.Description, Severity: t.Impact.Severity()}
	}
	writeJSON(w, http.StatusOK, out)
}

// severities serves GET /v1/severities: seed 000's severities with values.
func severities(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	ls, err := model.SeverityLevels(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Data []severityLevelJSON `json:"data"`
	}{Data: make([]severityLevelJSON, len(ls))}
	for i, l := range ls {
		out.Data[i] = severityLevelJSON{Name: l.Severity, DisplayName: l.DisplayName, Value: l.Value}
	}
	writeJSON(w, http.StatusOK, out)
}
