package rest

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/incidentd/incidentd/model"
)

// incidentJSON is the incidents contract's Incident.
type incidentJSON struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description *string  `json:"description"`
	Severity    string   `json:"severity"`
	Status      string   `json:"status"`
	Service     *string  `json:"service"`
	Tags        []string `json:"tags"`
	OccurredAt  string   `json:"occurredAt"`
	ResolvedAt  *string  `json:"resolvedAt"`
	CreatedAt   string   `json:"createdAt"`
	UpdatedAt   string   `json:"updatedAt"`
	CreatedBy   string   `json:"createdBy"`
	UpdatedBy   string   `json:"updatedBy"`
	IsDeleted   bool     `json:"isDeleted"`
	// Phase is the status-page model's {generation, order}, null when none.
	Phase *phaseRefJSON `json:"phase"`
	// Affects is left out where it is not loaded (events, monitoring answers).
	Affects *[]affectJSON `json:"affects,omitempty"`
}

type phaseRefJSON struct {
	Generation int `json:"generation"`
	Order      int `json:"order"`
}

// affectJSON is the status-page model's affect (reference, type, severity) with its
// monitoring level; id repeats reference, as the monitoring contract's answers name it.
type affectJSON struct {
	ID        string `json:"id"`
	Reference string `json:"reference"`
	Type      string `json:"type"`
	Severity  int    `json:"severity"`
	Impact    string `json:"impact"`
}

func toAffectJSON(a model.Affect) affectJSON {
	return affectJSON{ID: a.ComponentID, Reference: a.ComponentID, Type: a.TypeID, Severity: a.Severity, Impact: a.Impact.String()}
}

func toAffectsJSON(as []model.Affect) *[]affectJSON {
	out := make([]affectJSON, len(as))
	for i, a := range as {
		out[i] = toAffectJSON(a)
	}
	return &out
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func toIncidentJSON(i *model.Incident) incidentJSON {
	out := incidentJSON{
		ID: i.ID, Title: i.Title, Description: i.Description,
		Severity: string(i.Severity), Status: string(i.Status), Service: i.Service, Tags: i.Tags,
		OccurredAt: formatTime(i.OccurredAt), CreatedAt: formatTime(i.CreatedAt), UpdatedAt: formatTime(i.UpdatedAt),
		CreatedBy: i.CreatedBy, UpdatedBy: i.UpdatedBy, IsDeleted: i.IsDeleted,
	}
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

type paginationJSON struct {
	TotalCount int     `json:"totalCount"`
	Limit      int     `json:"limit"`
	Offset     int     `json:"offset"`
	HasMore    bool    `json:"hasMore"`
	NextCursor *string `json:"nextCursor"`
}

type incidentListJSON struct {
	Data       []incidentJSON `json:"data"`
	Pagination paginationJSON `json:"pagination"`
}

type incidentHandlers struct {
	svc model.IncidentService
	rel model.RelationService // nil: no /affects
}

func (h incidentHandlers) routes(r chi.Router) {
	r.Get("/", h.list)
	r.Post("/", h.create)
	r.Get("/{id}", h.get)
	r.Patch("/{id}", h.update)
	r.Put("/{id}", h.replace)
	r.Delete("/{id}", h.delete)
	r.Get("/{id}/updates", h.updates)
	r.Post("/{id}/updates", h.addUpdate)
	if h.rel != nil {
		r.Get("/{id}/affects", h.affects)
	}
}

// affects serves the components an incident affects ({id, impact}, the
// shape of a monitoring answer's components). The incident is read first so
// that an unknown or foreign id is a 404, not an empty list.
func (h incidentHandlers) affects(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	id := chi.URLParam(r, "id")
	if _, err := h.svc.Get(r.Context(), id); err != nil {
		writeError(w, r, err)
		return
	}
	as, err := h.rel.AffectsOf(r.Context(), []string{id})
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Data []affectJSON `json:"data"`
	}{Data: make([]affectJSON, 0, len(as[id]))}
	for _, a := range as[id] {
		out.Data = append(out.Data, toAffectJSON(a))
	}
	writeJSON(w, http.StatusOK, out)
}

// updates serves the incident's timeline, oldest first.
func (h incidentHandlers) updates(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	us, err := h.svc.Updates(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Data []updateJSON `json:"data"`
	}{Data: make([]updateJSON, len(us))}
	for i, u := range us {
		out.Data[i] = toUpdateJSON(u)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h incidentHandlers) addUpdate(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeIncidentsWrite)
	if !ok {
		return
	}
	f := newFields(raw, "displayName", "description")
	in := model.UpdateInput{DisplayName: f.str("displayName").Value, Description: f.str("description").Value}
	if len(f.errs) > 0 {
		writeError(w, r, model.Invalid("Invalid request body", sortDetails(f.merge(in.Validate()))...))
		return
	}
	u, err := h.svc.AddUpdate(r.Context(), chi.URLParam(r, "id"), in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toUpdateJSON(*u))
}

func toUpdateJSON(u model.IncidentUpdate) updateJSON {
	return updateJSON{Order: u.Order, DisplayName: u.DisplayName, Description: u.Description, CreatedAt: formatTime(u.CreatedAt), CreatedBy: u.CreatedBy}
}

func (h incidentHandlers) list(w http.ResponseWriter, r *http.Request) {
	q, err := parseIncidentQuery(r.URL.Query())
	if err != nil {
		writeError(w, r, err)
		return
	}
	q.WithAffects = true
	page, err := h.svc.List(r.Context(), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	data := make([]incidentJSON, len(page.Items))
	for i, inc := range page.Items {
		data[i] = toIncidentJSON(inc)
		data[i].Affects = toAffectsJSON(page.Affects[inc.ID])
	}
	out := incidentListJSON{Data: data, Pagination: paginationJSON{
		TotalCount: page.TotalCount, Limit: q.Limit, Offset: q.Offset, HasMore: page.HasMore,
	}}
	if page.NextCursor != "" {
		out.Pagination.NextCursor = &page.NextCursor
	}
	writeJSON(w, http.StatusOK, out)
}

func (h incidentHandlers) create(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeIncidentsWrite)
	if !ok {
		return
	}
	in, err := decodeCreate(raw)
	if err != nil {
		writeError(w, r, err)
		return
	}
	inc, affects, err := h.svc.Create(r.Context(), in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+inc.ID)
	writeIncident(w, http.StatusCreated, inc, affects)
}

// writeIncident answers one incident with its affects.
func writeIncident(w http.ResponseWriter, status int, inc *model.Incident, affects []model.Affect) {
	setETag(w, inc.Version())
	out := toIncidentJSON(inc)
	out.Affects = toAffectsJSON(affects)
	writeJSON(w, status, out)
}

func (h incidentHandlers) get(w http.ResponseWriter, r *http.Request) {
	inc, affects, err := h.svc.GetWithAffects(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if notModified(w, r, inc.Version()) {
		return
	}
	writeIncident(w, http.StatusOK, inc, affects)
}

func (h incidentHandlers) update(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeIncidentsWrite)
	if !ok {
		return
	}
	p, err := decodePatch(raw)
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.apply(w, r, p)
}

// replace serves PUT /v1/incidents/{id}: the whole incident. Required
// fields must be present; an absent optional one is cleared. It is then
// the patch that sets every field, with a PATCH's rules, audit and event.
func (h incidentHandlers) replace(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeIncidentsWrite)
	if !ok {
		return
	}
	p, err := decodeReplace(raw)
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.apply(w, r, p)
}

func (h incidentHandlers) apply(w http.ResponseWriter, r *http.Request, p model.IncidentPatch) {
	r, err := withIfMatch(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	inc, affects, err := h.svc.Update(r.Context(), chi.URLParam(r, "id"), p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeIncident(w, http.StatusOK, inc, affects)
}

func (h incidentHandlers) delete(w http.ResponseWriter, r *http.Request) {
	r, err := withIfMatch(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := h.svc.Delete(r.Context(), chi.URLParam(r, "id")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeBodyError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errBodyTooLarge):
		writeProblem(w, r, probTooLarge, "Request body exceeds 1 MiB", nil)
	case errors.Is(err, errMediaType):
		writeProblem(w, r, probUnsupportedType, "Content-Type must be application/json", nil)
	default:
		writeError(w, r, err)
	}
}
