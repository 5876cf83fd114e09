package rest

import (
	"encoding/json"
	"net/http"

	"github.com/incidentd/incidentd/model"
)

type settingsHandlers struct{ svc model.SettingsService }

type settingsJSON struct {
	RequirePreconditions bool `json:"requirePreconditions"`
}

// get serves GET /v1/settings.
func (h settingsHandlers) get(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	s, err := h.svc.Get(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	getVersioned(w, r, s.Version(), settingsJSON{RequirePreconditions: s.RequirePreconditions})
}

// put serves PUT /v1/settings: {"requirePreconditions": bool}; If-Match
// applies, but is never required (the switch can always be turned off).
func (h settingsHandlers) put(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeAPIKeysAdmin)
	if !ok {
		return
	}
	f := newFields(raw, "requirePreconditions")
	var required bool
	if v, ok := raw["requirePreconditions"]; !ok || json.Unmarshal(v, &required) != nil {
		f.fail("requirePreconditions", "requirePreconditions must be true or false")
	}
	if len(f.errs) > 0 {
		writeError(w, r, model.Invalid("Invalid request body", f.errs...))
		return
	}
	r, err := withIfMatch(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s, err := h.svc.SetRequirePreconditions(r.Context(), required)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeVersioned(w, http.StatusOK, s.Version(), settingsJSON{RequirePreconditions: s.RequirePreconditions})
}
