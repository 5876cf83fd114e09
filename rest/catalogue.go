package rest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/incidentd/incidentd/model"
)

// impactTypeJSON is the status-page model's impact type; built-in types also carry the
// monitoring name and level (the monitoring contract) and the severity they line up with.
type impactTypeJSON struct {
	ID          string  `json:"id"`
	DisplayName string  `json:"displayName"`
	Description string  `json:"description"`
	BuiltIn     bool    `json:"builtIn"`
	Name        string  `json:"name,omitempty"`
	Value       *int    `json:"value,omitempty"`
	Severity    string  `json:"severity,omitempty"`
	CreatedAt   *string `json:"createdAt,omitempty"`
	UpdatedAt   *string `json:"updatedAt,omitempty"`
	CreatedBy   string  `json:"createdBy,omitempty"`
	UpdatedBy   string  `json:"updatedBy,omitempty"`
}

func toImpactTypeJSON(t *model.ImpactType) impactTypeJSON {
	out := impactTypeJSON{ID: t.ID, DisplayName: t.DisplayName, Description: t.Description, BuiltIn: t.BuiltIn}
	if t.BuiltIn {
		level := int(t.Level)
		out.Name, out.Value, out.Severity = t.Level.String(), &level, string(t.Level.Severity())
		return out
	}
	out.CreatedAt, out.UpdatedAt = timePtr(t.CreatedAt), timePtr(t.UpdatedAt)
	out.CreatedBy, out.UpdatedBy = t.CreatedBy, t.UpdatedBy
	return out
}

// severityJSON is the status-page model's severity; built-in ones also carry the incidents contract's name.
type severityJSON struct {
	DisplayName string  `json:"displayName"`
	Value       int     `json:"value"`
	BuiltIn     bool    `json:"builtIn"`
	Name        string  `json:"name,omitempty"`
	CreatedAt   *string `json:"createdAt,omitempty"`
	UpdatedAt   *string `json:"updatedAt,omitempty"`
	CreatedBy   string  `json:"createdBy,omitempty"`
	UpdatedBy   string  `json:"updatedBy,omitempty"`
}

func toSeverityJSON(l *model.SeverityLevel) severityJSON {
	out := severityJSON{DisplayName: l.DisplayName, Value: l.Value, BuiltIn: l.BuiltIn, Name: string(l.Severity)}
	if !l.BuiltIn {
		out.CreatedAt, out.UpdatedAt = timePtr(l.CreatedAt), timePtr(l.UpdatedAt)
		out.CreatedBy, out.UpdatedBy = l.CreatedBy, l.UpdatedBy
	}
	return out
}

// phasesJSON is the status-page model's phase list with its generation.
type phasesJSON struct {
	Generation int      `json:"generation"`
	Phases     []string `json:"phases"`
	CreatedAt  *string  `json:"createdAt"`
	CreatedBy  *string  `json:"createdBy"`
}

func toPhasesJSON(l *model.PhaseList) phasesJSON {
	out := phasesJSON{Generation: l.Generation, Phases: l.Phases}
	if l.Generation > 0 {
		out.CreatedAt, out.CreatedBy = timePtr(l.CreatedAt), &l.CreatedBy
	}
	return out
}

func timePtr(t time.Time) *string {
	s := formatTime(t)
	return &s
}

type catalogueHandlers struct{ svc model.CatalogueService }

func (h catalogueHandlers) impactTypeRoutes(r chi.Router) {
	r.Get("/", h.listImpactTypes)
	r.Post("/", h.createImpactType)
	r.Get("/{id}", h.getImpactType)
	r.Patch("/{id}", h.updateImpactType)
	r.Delete("/{id}", h.deleteImpactType)
}

func (h catalogueHandlers) severityRoutes(r chi.Router) {
	r.Get("/", h.listSeverities)
	r.Post("/", h.createSeverity)
	r.Get("/{name}", h.getSeverity)
	r.Patch("/{name}", h.updateSeverity)
	r.Delete("/{name}", h.deleteSeverity)
}

func (h catalogueHandlers) phaseRoutes(r chi.Router) {
	r.Get("/", h.currentPhases)
	r.Post("/", h.replacePhases)
	r.Get("/{generation}", h.phaseGeneration)
}

// listImpactTypes serves GET /v1/impact-types: built-in types first, then
// the tenant's by name. The catalogue is small and bounded, so a list is
// always whole.
func (h catalogueHandlers) listImpactTypes(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	ts, err := h.svc.ImpactTypes(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Data []impactTypeJSON `json:"data"`
	}{Data: make([]impactTypeJSON, len(ts))}
	for i := range ts {
		out.Data[i] = toImpactTypeJSON(&ts[i])
	}
	writeJSON(w, http.StatusOK, out)
}

func decodeImpactType(raw map[string]json.RawMessage, create bool) (model.ImpactTypeInput, error) {
	f := newFields(raw, "displayName", "description")
	in := model.ImpactTypeInput{DisplayName: f.str("displayName"), Description: f.str("description")}
	if len(f.errs) > 0 {
		return in, model.Invalid("Invalid request body", sortDetails(f.merge(in.Validate(create)))...)
	}
	return in, nil
}

func (h catalogueHandlers) createImpactType(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeComponentsWrite)
	if !ok {
		return
	}
	in, err := decodeImpactType(raw, true)
	if err != nil {
		writeError(w, r, err)
		return
	}
	t, err := h.svc.CreateImpactType(r.Context(), in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+t.ID)
	writeVersioned(w, http.StatusCreated, t.Version(), toImpactTypeJSON(t))
}

func (h catalogueHandlers) getImpactType(w http.ResponseWriter, r *http.Request) {
	t, err := h.svc.ImpactType(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	getVersioned(w, r, t.Version(), toImpactTypeJSON(t))
}

func (h catalogueHandlers) updateImpactType(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeComponentsWrite)
	if !ok {
		return
	}
	in, err := decodeImpactType(raw, false)
	if err == nil {
		r, err = withIfMatch(r)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	t, err := h.svc.UpdateImpactType(r.Context(), chi.URLParam(r, "id"), in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeVersioned(w, http.StatusOK, t.Version(), toImpactTypeJSON(t))
}

func (h catalogueHandlers) deleteImpactType(w http.ResponseWriter, r *http.Request) {
	r, err := withIfMatch(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := h.svc.DeleteImpactType(r.Context(), chi.URLParam(r, "id")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listSeverities serves GET /v1/severities: every severity by value.
func (h catalogueHandlers) listSeverities(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	ls, err := h.svc.Severities(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Data []severityJSON `json:"data"`
	}{Data: make([]severityJSON, len(ls))}
	for i := range ls {
		out.Data[i] = toSeverityJSON(&ls[i])
	}
	writeJSON(w, http.StatusOK, out)
}

func decodeSeverity(raw map[string]json.RawMessage, create bool) (model.SeverityInput, error) {
	f := newFields(raw, "displayName", "value")
	in := model.SeverityInput{DisplayName: f.str("displayName"), Value: f.integer("value")}
	if len(f.errs) > 0 {
		return in, model.Invalid("Invalid request body", sortDetails(f.merge(in.Validate(create)))...)
	}
	return in, nil
}

// severityName is the {name} path segment, decoded once: chi matches on
// the escaped path when the request has one.
func severityName(r *http.Request) string {
	name := chi.URLParam(r, "name")
	if r.URL.RawPath != "" {
		if n, err := url.PathUnescape(name); err == nil {
			return n
		}
	}
	return name
}

func (h catalogueHandlers) createSeverity(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeComponentsWrite)
	if !ok {
		return
	}
	in, err := decodeSeverity(raw, true)
	if err != nil {
		writeError(w, r, err)
		return
	}
	l, err := h.svc.CreateSeverity(r.Context(), in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+url.PathEscape(l.DisplayName))
	writeVersioned(w, http.StatusCreated, l.Version(), toSeverityJSON(l))
}

func (h catalogueHandlers) getSeverity(w http.ResponseWriter, r *http.Request) {
	l, err := h.svc.Severity(r.Context(), severityName(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	getVersioned(w, r, l.Version(), toSeverityJSON(l))
}

func (h catalogueHandlers) updateSeverity(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeComponentsWrite)
	if !ok {
		return
	}
	in, err := decodeSeverity(raw, false)
	if err == nil {
		r, err = withIfMatch(r)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	l, err := h.svc.UpdateSeverity(r.Context(), severityName(r), in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeVersioned(w, http.StatusOK, l.Version(), toSeverityJSON(l))
}

func (h catalogueHandlers) deleteSeverity(w http.ResponseWriter, r *http.Request) {
	r, err := withIfMatch(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := h.svc.DeleteSeverity(r.Context(), severityName(r)); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// currentPhases serves GET /v1/phases: the newest generation (generation 0,
// empty, before the tenant defines any).
func (h catalogueHandlers) currentPhases(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	h.writePhases(w, r, 0)
}

// phaseGeneration serves GET /v1/phases/{generation}: old generations stay
// readable, so incidents pointing into them keep their meaning.
func (h catalogueHandlers) phaseGeneration(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	g, err := strconv.Atoi(chi.URLParam(r, "generation"))
	if err != nil || g < 1 {
		writeError(w, r, model.Invalid("Invalid path parameter", model.FieldError{Field: "generation", Message: "generation must be an integer of at least 1"}))
		return
	}
	h.writePhases(w, r, g)
}

func (h catalogueHandlers) writePhases(w http.ResponseWriter, r *http.Request, generation int) {
	l, err := h.svc.Phases(r.Context(), generation)
	if err != nil {
		writeError(w, r, err)
		return
	}
	getVersioned(w, r, l.Version(), toPhasesJSON(l))
}

// replacePhases serves POST /v1/phases {"phases": [...]}: the whole list,
// stored as a new generation.
func (h catalogueHandlers) replacePhases(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeComponentsWrite)
	if !ok {
		return
	}
	f := newFields(raw, "phases") // the server numbers generations
	names := f.strings("phases")
	switch {
	case !names.Set && !f.failed("phases"):
		f.fail("phases", "phases is required")
	case names.Null:
		f.fail("phases", "phases cannot be null")
	}
	if errs := f.merge(model.ValidatePhases(names.Value)); len(errs) > 0 {
		writeError(w, r, model.Invalid("Invalid request body", sortDetails(errs)...))
		return
	}
	r, err := withIfMatch(r) // the version of the current list
	if err != nil {
		writeError(w, r, err)
		return
	}
	l, err := h.svc.ReplacePhases(r.Context(), names.Value)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+strconv.Itoa(l.Generation))
	writeVersioned(w, http.StatusCreated, l.Version(), toPhasesJSON(l))
}
