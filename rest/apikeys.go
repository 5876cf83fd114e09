package rest

import (
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/incidentd/incidentd/model"
)

// apiKeyJSON never carries the hash; Key (the secret) only on create and rotate.
type apiKeyJSON struct {
	ID         string   `json:"id"`
	Prefix     string   `json:"prefix"`
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"`
	Tier       string   `json:"tier"`
	CreatedBy  string   `json:"createdBy"`
	CreatedAt  string   `json:"createdAt"`
	ExpiresAt  *string  `json:"expiresAt"`
	LastUsedAt *string  `json:"lastUsedAt"`
	RevokedAt  *string  `json:"revokedAt"`
	Key        string   `json:"key,omitempty"`
}

func optTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

func toAPIKeyJSON(k *model.APIKey, secret string) apiKeyJSON {
	scopes := make([]string, len(k.Scopes))
	for i, s := range k.Scopes {
		scopes[i] = string(s)
	}
	return apiKeyJSON{ID: k.ID, Prefix: k.Prefix, Name: k.Name, Scopes: scopes, Tier: k.Tier, CreatedBy: k.ActorID,
		CreatedAt: formatTime(k.CreatedAt), ExpiresAt: optTime(k.ExpiresAt), LastUsedAt: optTime(k.LastUsedAt),
		RevokedAt: optTime(k.RevokedAt), Key: secret}
}

type apiKeyHandlers struct{ svc model.APIKeyService }

func (h apiKeyHandlers) routes(r chi.Router) {
	r.Get("/", h.list)
	r.Post("/", h.create)
	r.Get("/{id}", h.get)
	r.Delete("/{id}", h.revoke)
	r.Post("/{id}/rotate", h.rotate)
}

func (h apiKeyHandlers) list(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	keys, err := h.svc.List(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Data       []apiKeyJSON   `json:"data"`
		Pagination paginationJSON `json:"pagination"`
	}{Data: make([]apiKeyJSON, len(keys)), Pagination: paginationJSON{TotalCount: len(keys), Limit: model.MaxAPIKeysListed}}
	for i, k := range keys {
		out.Data[i] = toAPIKeyJSON(k, "")
	}
	writeJSON(w, http.StatusOK, out)
}

func (h apiKeyHandlers) create(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeAPIKeysAdmin)
	if !ok {
		return
	}
	f := newFields(raw, "name", "scopes", "tier", "expiresAt")
	name, tier, exp := f.str("name"), f.str("tier"), f.time("expiresAt")
	scopes := f.strings("scopes")
	in := model.APIKeyCreate{Name: name.Value, Tier: tier.Value, ExpiresAt: ptr(exp)}
	for _, s := range scopes.Value {
		in.Scopes = append(in.Scopes, model.Scope(strings.TrimSpace(s)))
	}
	if len(f.errs) > 0 {
		writeError(w, r, model.Invalid("Invalid request body", sortDetails(f.merge(in.Validate(model.PrincipalFrom(r.Context()), time.Now())))...))
		return
	}
	key, secret, err := h.svc.Create(r.Context(), in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+key.ID)
	keepInstead(r, toAPIKeyJSON(key, ""))
	writeVersioned(w, http.StatusCreated, key.Version(), toAPIKeyJSON(key, secret))
}

func (h apiKeyHandlers) get(w http.ResponseWriter, r *http.Request) {
	key, err := h.svc.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	getVersioned(w, r, key.Version(), toAPIKeyJSON(key, ""))
}

func (h apiKeyHandlers) revoke(w http.ResponseWriter, r *http.Request) {
	r, err := withIfMatch(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if _, err := h.svc.Revoke(r.Context(), chi.URLParam(r, "id")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h apiKeyHandlers) rotate(w http.ResponseWriter, r *http.Request) {
	if _, err := model.Authorize(r.Context(), model.ScopeAPIKeysAdmin); err != nil {
		writeError(w, r, err)
		return
	}
	overlap := model.DefaultRotationOverlap
	if r.ContentLength != 0 {
		raw, err := readObject(r)
		if err != nil {
			writeBodyError(w, r, err)
			return
		}
		f := newFields(raw, "overlapSeconds")
		// null is no integer: the contract does not let it stand for 0 or the default.
		if n := f.wideInteger("overlapSeconds"); n.Null {
			f.fail("overlapSeconds", "overlapSeconds must be an integer")
		} else if n.Set {
			d, err := model.RotationOverlap(n.Value)
			if err != nil {
				f.errs = append(f.errs, model.AsError(err).Details...)
			}
			overlap = d
		}
		if len(f.errs) > 0 {
			writeError(w, r, model.Invalid("Invalid request body", sortDetails(f.errs)...))
			return
		}
	}
	r, err := withIfMatch(r) // the version of the key rotated
	if err != nil {
		writeError(w, r, err)
		return
	}
	key, secret, err := h.svc.Rotate(r.Context(), chi.URLParam(r, "id"), overlap)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/api-keys/"+key.ID)
	keepInstead(r, toAPIKeyJSON(key, ""))
	writeVersioned(w, http.StatusCreated, key.Version(), toAPIKeyJSON(key, secret)) // the successor's
}
