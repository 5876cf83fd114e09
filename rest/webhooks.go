package rest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/incidentd/incidentd/model"
)

// webhookFilterJSON is an endpoint's filter, as subscriptions filter.
type webhookFilterJSON struct {
	Severities []model.Severity  `json:"severities"`
	Statuses   []model.Status    `json:"statuses"`
	Services   []string          `json:"services"`
	Components []string          `json:"components"`
	Labels     map[string]string `json:"labels"`
}

type webhookJSON struct {
	ID                  string            `json:"id"`
	URL                 string            `json:"url"`
	Description         string            `json:"description"`
	Events              []string          `json:"events"`
	Filter              webhookFilterJSON `json:"filter"`
	Enabled             bool              `json:"enabled"`
	DisabledReason      *string           `json:"disabledReason"`
	FailingSince        *string           `json:"failingSince"`
	PreviousSecretUntil *string           `json:"previousSecretUntil"`
	CreatedAt           string            `json:"createdAt"`
	UpdatedAt           string            `json:"updatedAt"`
	CreatedBy           string            `json:"createdBy"`
	UpdatedBy           string            `json:"updatedBy"`
	// Secret is shown once: in the create and rotate answers.
	Secret string `json:"secret,omitempty"`
}

func toWebhookJSON(ep *model.WebhookEndpoint, secret string) webhookJSON {
	out := webhookJSON{ID: ep.ID, URL: ep.URL, Description: ep.Description, Events: make([]string, len(ep.Events)), Enabled: ep.Enabled,
		Filter: webhookFilterJSON{Severities: nonNil(ep.Filter.Severities), Statuses: nonNil(ep.Filter.Statuses),
			Services: nonNil(ep.Filter.Services), Components: nonNil(ep.Filter.Components), Labels: ep.Filter.Labels},
		CreatedAt: formatTime(ep.CreatedAt), UpdatedAt: formatTime(ep.UpdatedAt), CreatedBy: ep.CreatedBy, UpdatedBy: ep.UpdatedBy, Secret: secret}
	if out.Filter.Labels == nil {
		out.Filter.Labels = map[string]string{}
	}
	for i, e := range ep.Events {
		out.Events[i] = string(e)
	}
	if ep.DisabledReason != "" {
		out.DisabledReason = &ep.DisabledReason
	}
	if ep.FailingSince != nil {
		s := formatTime(*ep.FailingSince)
		out.FailingSince = &s
	}
	if ep.PreviousSecretUntil != nil {
		s := formatTime(*ep.PreviousSecretUntil)
		out.PreviousSecretUntil = &s
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

type webhookDeliveryJSON struct {
	ID              string  `json:"id"`
	EndpointID      string  `json:"endpointId"`
	MessageID       string  `json:"messageId"`
	Type            string  `json:"type"`
	ResourceID      string  `json:"resourceId"`
	EventID         string  `json:"eventId"`
	State           string  `json:"state"`
	Attempts        int     `json:"attempts"`
	LastStatus      int     `json:"lastStatus"`
	LastError       string  `json:"lastError"`
	LastLatencyMs   float64 `json:"lastLatencyMs"`
	LastAttemptAt   *string `json:"lastAttemptAt"`
	ResponseExcerpt string  `json:"responseExcerpt"`
	NextAttemptAt   *string `json:"nextAttemptAt"`
	CreatedAt       string  `json:"createdAt"`
	// Payload and AttemptLog are read one delivery at a time only.
	Payload    json.RawMessage       `json:"payload,omitempty"`
	AttemptLog *[]webhookAttemptJSON `json:"attemptLog,omitempty"`
}

type webhookAttemptJSON struct {
	Number          int     `json:"number"`
	At              string  `json:"at"`
	Status          int     `json:"status"`
	Error           string  `json:"error"`
	LatencyMs       float64 `json:"latencyMs"`
	ResponseExcerpt string  `json:"responseExcerpt"`
}

// toDeliveryDetailJSON is a delivery with the body sent and every attempt.
func toDeliveryDetailJSON(d *model.WebhookDelivery) webhookDeliveryJSON {
	out := toDeliveryJSON(d)
	out.Payload = json.RawMessage(d.Payload)
	log := make([]webhookAttemptJSON, len(d.AttemptLog))
	for i, a := range d.AttemptLog {
		log[i] = webhookAttemptJSON{Number: a.Number, At: formatTime(a.At), Status: a.Status, Error: a.Error,
			LatencyMs: model.Milliseconds(a.Latency), ResponseExcerpt: a.ResponseExcerpt}
	}
	out.AttemptLog = &log
	return out
}

func toDeliveryJSON(d *model.WebhookDelivery) webhookDeliveryJSON {
	out := webhookDeliveryJSON{ID: d.ID, EndpointID: d.EndpointID, MessageID: d.MessageID, Type: string(d.Type), ResourceID: d.ResourceID,
		EventID: d.EventID, State: string(d.State), Attempts: d.Attempts, LastStatus: d.LastStatus, LastError: d.LastError,
		LastLatencyMs: model.Milliseconds(d.LastLatency), ResponseExcerpt: d.ResponseExcerpt, CreatedAt: formatTime(d.CreatedAt)}
	if d.LastAttemptAt != nil {
		s := formatTime(*d.LastAttemptAt)
		out.LastAttemptAt = &s
	}
	if d.NextAttemptAt != nil {
		s := formatTime(*d.NextAttemptAt)
		out.NextAttemptAt = &s
	}
	return out
}

type webhookHandlers struct{ svc model.WebhookService }

func (h webhookHandlers) routes(r chi.Router) {
	r.Get("/", h.list)
	r.Post("/", h.create)
	r.Get("/{id}", h.get)
	r.Patch("/{id}", h.update)
	r.Delete("/{id}", h.delete)
	r.Post("/{id}/rotate-secret", h.rotate)
	r.Post("/{id}/test", h.test)
	r.Get("/{id}/deliveries", h.deliveries)
	r.Get("/{id}/deliveries/{delivery}", h.delivery)
	r.Post("/{id}/redeliver", h.redeliverSince)
	r.Post("/{id}/deliveries/{delivery}/redeliver", h.redeliver)
}

// decodeWebhook reads {"url", "description", "events", "filter", "enabled"}.
func decodeWebhook(raw map[string]json.RawMessage) (model.WebhookEndpointInput, []model.FieldError) {
	f := newFields(raw, "url", "description", "events", "filter", "enabled")
	in := model.WebhookEndpointInput{URL: f.str("url"), Description: f.str("description")}
	if ev := f.strings("events"); ev.Set {
		types := make([]model.WebhookEventType, len(ev.Value))
		for i, e := range ev.Value {
			types[i] = model.WebhookEventType(e)
		}
		in.Events = model.Optional[[]model.WebhookEventType]{Set: true, Null: ev.Null, Value: types}
	}
	if v, ok := raw["filter"]; ok {
		var fj webhookFilterJSON
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if isNull(v) {
			in.Filter = model.Some(model.WebhookFilter{})
		} else if err := dec.Decode(&fj); err != nil {
			f.fail("filter", "filter is an object of severities, statuses, services, components (arrays of strings) and labels (an object of strings)")
		} else {
			in.Filter = model.Some(model.WebhookFilter{EventFilter: model.EventFilter{Severities: fj.Severities, Statuses: fj.Statuses,
				Services: fj.Services}, Components: fj.Components, Labels: fj.Labels})
		}
	}
	if v, ok := raw["enabled"]; ok {
		var b bool
		if json.Unmarshal(v, &b) != nil {
			f.fail("enabled", "enabled must be true or false")
		} else {
			in.Enabled = model.Some(b)
		}
	}
	return in, f.errs
}

func (h webhookHandlers) list(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	eps, err := h.svc.List(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := make([]webhookJSON, len(eps))
	for i, ep := range eps {
		out[i] = toWebhookJSON(ep, "")
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (h webhookHandlers) create(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeWebhooksAdmin)
	if !ok {
		return
	}
	in, errs := decodeWebhook(raw)
	if len(errs) > 0 {
		writeError(w, r, model.Invalid("Invalid request body", errs...))
		return
	}
	ep, secret, err := h.svc.Create(r.Context(), in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/webhooks/"+ep.ID)
	keepInstead(r, toWebhookJSON(ep, ""))
	writeVersioned(w, http.StatusCreated, ep.Version(), toWebhookJSON(ep, secret))
}

func (h webhookHandlers) get(w http.ResponseWriter, r *http.Request) {
	ep, err := h.svc.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	getVersioned(w, r, ep.Version(), toWebhookJSON(ep, ""))
}

func (h webhookHandlers) update(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeWebhooksAdmin)
	if !ok {
		return
	}
	in, errs := decodeWebhook(raw)
	if len(errs) > 0 {
		writeError(w, r, model.Invalid("Invalid request body", errs...))
		return
	}
	r, err := withIfMatch(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ep, err := h.svc.Update(r.Context(), chi.URLParam(r, "id"), in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeVersioned(w, http.StatusOK, ep.Version(), toWebhookJSON(ep, ""))
}

func (h webhookHandlers) delete(w http.ResponseWriter, r *http.Request) {
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

func (h webhookHandlers) rotate(w http.ResponseWriter, r *http.Request) {
	r, err := withIfMatch(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ep, secret, err := h.svc.RotateSecret(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	keepInstead(r, toWebhookJSON(ep, ""))
	writeVersioned(w, http.StatusOK, ep.Version(), toWebhookJSON(ep, secret))
}

func (h webhookHandlers) test(w http.ResponseWriter, r *http.Request) {
	d, err := h.svc.SendTest(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, toDeliveryJSON(d))
}

func (h webhookHandlers) deliveries(w http.ResponseWriter, r *http.Request) {
	p := readQuery(r.URL.Query(), params{"limit": scalar, "cursor": scalar})
	q := model.WebhookDeliveryQuery{Limit: p.limit(), Cursor: p.str("cursor")}
	if err := p.err(); err != nil {
		writeError(w, r, err)
		return
	}
	page, err := h.svc.Deliveries(r.Context(), chi.URLParam(r, "id"), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := make([]webhookDeliveryJSON, len(page.Items))
	for i, d := range page.Items {
		out[i] = toDeliveryJSON(d)
	}
	var next *string
	if page.HasMore {
		next = &page.NextCursor
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out, "pagination": map[string]any{"hasMore": page.HasMore, "nextCursor": next}})
}

// delivery serves one delivery with its body and attempt log.
func (h webhookHandlers) delivery(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	d, err := h.svc.Delivery(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "delivery"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toDeliveryDetailJSON(d))
}

func (h webhookHandlers) redeliver(w http.ResponseWriter, r *http.Request) {
	d, err := h.svc.Redeliver(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "delivery"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, toDeliveryJSON(d))
}

// redeliverSince serves POST /v1/webhooks/{id}/redeliver {"since": time}.
func (h webhookHandlers) redeliverSince(w http.ResponseWriter, r *http.Request) {
	raw, ok := readAuthorized(w, r, model.ScopeWebhooksAdmin)
	if !ok {
		return
	}
	f := newFields(raw, "since")
	since := f.time("since")
	if !since.Set || since.Null {
		f.fail("since", "since is required: an RFC 3339 time")
	}
	if len(f.errs) > 0 {
		writeError(w, r, model.Invalid("Invalid request body", f.errs...))
		return
	}
	n, err := h.svc.RedeliverSince(r.Context(), chi.URLParam(r, "id"), since.Value)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("X-Redelivered", strconv.Itoa(n))
	writeJSON(w, http.StatusAccepted, map[string]int{"queued": n})
}

// WebhookIncident is the data of an incident message: the incident as
// this door shows it (the webhook engine sends it).
func WebhookIncident(e *model.Event) any { return toIncidentJSON(e.Incident) }
