package rest

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/incidentd/incidentd/model"
)

type maintenanceJSON struct {
	ID          string   `json:"id"`
	Description string   `json:"description"`
	StartsAt    string   `json:"startsAt"`
	EndsAt      string   `json:"endsAt"`
	Components  []string `json:"components"`
	CreatedAt   string   `json:"createdAt"`
	CreatedBy   string   `json:"createdBy"`
}

func toMaintenanceJSON(m *model.Maintenance) maintenanceJSON {
	return maintenanceJSON{ID: m.ID, Description: m.Description, StartsAt: formatTime(m.StartsAt), EndsAt: formatTime(m.EndsAt),
		Components: nonNil(m.ComponentIDs), CreatedAt: formatTime(m.CreatedAt), CreatedBy: m.CreatedBy}
}

type maintenanceHandlers struct{ svc model.MaintenanceService }

func (h maintenanceHandlers) routes(r chi.Router) {
	r.Get("/", h.list)
	r.Post("/", h.create)
	r.Get("/{id}", h.get)
	r.Delete("/{id}", h.delete)
}

func (h maintenanceHandlers) create(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeComponentsWrite)
	if !ok {
		return
	}
	f := newFields(raw, "description", "startsAt", "endsAt", "components")
	in := model.MaintenanceInput{Description: f.str("description").Value, StartsAt: f.time("startsAt").Value,
		EndsAt: f.time("endsAt").Value, ComponentIDs: f.strings("components").Value}
	if len(f.errs) > 0 {
		writeError(w, r, model.Invalid("Invalid request body", sortDetails(f.merge(in.Validate()))...))
		return
	}
	m, err := h.svc.Create(r.Context(), in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+m.ID)
	writeVersioned(w, http.StatusCreated, m.Version(), toMaintenanceJSON(m))
}

// list serves the windows that have not ended, soonest first.
func (h maintenanceHandlers) list(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	ms, err := h.svc.List(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Data []maintenanceJSON `json:"data"`
	}{Data: make([]maintenanceJSON, len(ms))}
	for i, m := range ms {
		out.Data[i] = toMaintenanceJSON(m)
	}
	writeJSON(w, http.StatusOK, out)
}

// get serves one window, ended or not, with its ETag.
func (h maintenanceHandlers) get(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	m, err := h.svc.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	getVersioned(w, r, m.Version(), toMaintenanceJSON(m))
}

func (h maintenanceHandlers) delete(w http.ResponseWriter, r *http.Request) {
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

// WebhookMaintenance is the data of maintenance.* webhook messages: the
// window as this door shows it, and whether it was cancelled (deleted).
func WebhookMaintenance(m *model.Maintenance, cancelled bool) any {
	return struct {
		maintenanceJSON
		Cancelled bool `json:"cancelled"`
	}{toMaintenanceJSON(m), cancelled}
}
