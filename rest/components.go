package rest

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/incidentd/incidentd/model"
)

type componentJSON struct {
	ID          string            `json:"id"`
	DisplayName string            `json:"displayName"`
	Labels      map[string]string `json:"labels"`
	CreatedAt   string            `json:"createdAt"`
	UpdatedAt   string            `json:"updatedAt"`
	CreatedBy   string            `json:"createdBy"`
	UpdatedBy   string            `json:"updatedBy"`
	// ActivelyAffectedBy is the status-page model's derived list of open impacts; left
	// out where it is not loaded (events, the status summary).
	ActivelyAffectedBy *[]impactJSON `json:"activelyAffectedBy,omitempty"`
}

// impactJSON is an open incident's impact on a component (the status-page model).
type impactJSON struct {
	Reference string `json:"reference"`
	Type      string `json:"type"`
	Severity  int    `json:"severity"`
	Impact    string `json:"impact"`
}

func toComponentJSON(c *model.Component) componentJSON {
	return componentJSON{ID: c.ID, DisplayName: c.DisplayName, Labels: c.Labels, CreatedAt: formatTime(c.CreatedAt),
		UpdatedAt: formatTime(c.UpdatedAt), CreatedBy: c.CreatedBy, UpdatedBy: c.UpdatedBy}
}

type componentHandlers struct {
	svc model.ComponentService
	rel model.RelationService // nil: no activelyAffectedBy
}

// withImpacts renders components with the open impacts on them, read in one batch.
func (h componentHandlers) withImpacts(r *http.Request, cs ...*model.Component) ([]componentJSON, error) {
	out := make([]componentJSON, len(cs))
	ids := make([]string, len(cs))
	for i, c := range cs {
		out[i], ids[i] = toComponentJSON(c), c.ID
	}
	if h.rel == nil || len(cs) == 0 {
		return out, nil
	}
	affecting, err := h.rel.AffectingOf(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		list := make([]impactJSON, len(affecting[id]))
		for j, a := range affecting[id] {
			list[j] = impactJSON{Reference: a.ID, Type: a.TypeID, Severity: a.Severity, Impact: a.Impact.String()}
		}
		out[i].ActivelyAffectedBy = &list
	}
	return out, nil
}

func (h componentHandlers) write(w http.ResponseWriter, r *http.Request, status int, c *model.Component) {
	out, err := h.withImpacts(r, c)
	if err != nil {
		writeError(w, r, err)
		return
	}
	setETag(w, c.Version())
	writeJSON(w, status, out[0])
}

func (h componentHandlers) routes(r chi.Router) {
	r.Get("/", h.list)
	r.Post("/", h.create)
	r.Get("/{id}", h.get)
	r.Patch("/{id}", h.update)
	r.Put("/{id}", h.replace)
	r.Delete("/{id}", h.delete)
}

// decodeComponent reads {"displayName", "labels"}, listing every problem.
func decodeComponent(raw map[string]json.RawMessage, create bool) (model.ComponentInput, error) {
	f := newFields(raw, "displayName", "labels")
	in := model.ComponentInput{DisplayName: f.str("displayName")}
	if v, ok := raw["labels"]; ok {
		if isNull(v) {
			in.Labels = model.Null[map[string]string]()
		} else {
			var m map[string]string
			if err := json.Unmarshal(v, &m); err != nil {
				f.fail("labels", "labels must be an object of string values")
			} else {
				if m == nil {
					m = map[string]string{}
				}
				in.Labels = model.Some(m)
			}
		}
	}
	if len(f.errs) > 0 {
		return in, model.Invalid("Invalid request body", sortDetails(f.merge(in.Validate(create)))...)
	}
	return in, nil
}

func (h componentHandlers) create(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeComponentsWrite)
	if !ok {
		return
	}
	in, err := decodeComponent(raw, true)
	if err != nil {
		writeError(w, r, err)
		return
	}
	c, err := h.svc.Create(r.Context(), in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+c.ID)
	h.write(w, r, http.StatusCreated, c)
}

func (h componentHandlers) get(w http.ResponseWriter, r *http.Request) {
	c, err := h.svc.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if notModified(w, r, c.Version()) {
		return
	}
	h.write(w, r, http.StatusOK, c)
}

func (h componentHandlers) update(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeComponentsWrite)
	if !ok {
		return
	}
	in, err := decodeComponent(raw, false)
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.apply(w, r, in)
}

// replace serves PUT /v1/components/{id}: displayName is required, absent
// labels are cleared; then as PATCH.
func (h componentHandlers) replace(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeComponentsWrite)
	if !ok {
		return
	}
	in, err := decodeComponent(raw, true)
	if err == nil && !in.DisplayName.Set {
		err = model.Invalid("Invalid request body", model.FieldError{Field: "displayName", Message: "displayName is required: PUT replaces the whole component"})
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if !in.Labels.Set {
		in.Labels = model.Some(map[string]string{})
	}
	h.apply(w, r, in)
}

func (h componentHandlers) apply(w http.ResponseWriter, r *http.Request, in model.ComponentInput) {
	r, err := withIfMatch(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	c, err := h.svc.Update(r.Context(), chi.URLParam(r, "id"), in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.write(w, r, http.StatusOK, c)
}

func (h componentHandlers) delete(w http.ResponseWriter, r *http.Request) {
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

// list serves GET /v1/components: name (prefix), label=key:value (repeatable,
// all must match), limit, offset.
func (h componentHandlers) list(w http.ResponseWriter, r *http.Request) {
	p := readQuery(r.URL.Query(), params{"name": scalar, "label": list, "limit": scalar, "offset": scalar})
	q := model.ComponentQuery{NamePrefix: p.str("name"), Limit: p.limit(), Offset: p.offset()}
	p.add(parseLabels(p.list("label"), &q.Labels)...)
	if err := p.err(); err != nil {
		writeError(w, r, err)
		return
	}
	page, err := h.svc.List(r.Context(), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	data, err := h.withImpacts(r, page.Items...)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Data       []componentJSON `json:"data"`
		Pagination paginationJSON  `json:"pagination"`
	}{Data: data, Pagination: paginationJSON{TotalCount: page.TotalCount, Limit: q.Limit, Offset: q.Offset, HasMore: page.HasMore}}
	writeJSON(w, http.StatusOK, out)
}

// parseLabels reads the label list's key:value values into *into (all
// must match).
func parseLabels(vs []string, into *map[string]string) []model.FieldError {
	var errs []model.FieldError
	for _, v := range vs {
		k, val, ok := strings.Cut(v, ":")
		if !ok {
			errs = append(errs, model.FieldError{Field: "label", Message: "label must be key:value"})
			continue
		}
		if *into == nil {
			*into = map[string]string{}
		}
		(*into)[k] = val
	}
	return errs
}
