package rest

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/incidentd/incidentd/model"
)

// problem is one kind of error on the wire: RFC 7807 plus the incidents contract's names.
type problem struct {
	status int
	name   string // the incidents contract's `error`
	title  string
	slug   string // /problems/<slug>
}

func domainProblem(c model.Code, status int, title, slug string) problem {
	return problem{status, c.WireName(), title, slug}
}

// problems maps every domain code to HTTP: the one place that does.
var problems = map[model.Code]problem{
	model.CodeInvalid:      domainProblem(model.CodeInvalid, http.StatusBadRequest, "Validation Error", "validation-error"),
	model.CodeUnauthorized: domainProblem(model.CodeUnauthorized, http.StatusUnauthorized, "Unauthorized", "unauthorized"),
	model.CodeForbidden:    domainProblem(model.CodeForbidden, http.StatusForbidden, "Forbidden", "forbidden"),
	model.CodeNotFound:     domainProblem(model.CodeNotFound, http.StatusNotFound, "Not Found", "not-found"),
	model.CodeConflict:     domainProblem(model.CodeConflict, http.StatusConflict, "Conflict", "conflict"),
	model.CodeBusinessRule: domainProblem(model.CodeBusinessRule, http.StatusUnprocessableEntity, "Business Rule Violation", "business-rule-violation"),
	model.CodeRateLimited:  domainProblem(model.CodeRateLimited, http.StatusTooManyRequests, "Rate Limit Exceeded", "rate-limit-exceeded"),
	model.CodeUnavailable:  domainProblem(model.CodeUnavailable, http.StatusServiceUnavailable, "Service Unavailable", "service-unavailable"),
	model.CodeInternal:     domainProblem(model.CodeInternal, http.StatusInternalServerError, "Internal Server Error", "internal-error"),
	model.CodePreconditionFailed: domainProblem(model.CodePreconditionFailed, http.StatusPreconditionFailed,
		"Precondition Failed", "precondition-failed"),
	model.CodePreconditionRequired: domainProblem(model.CodePreconditionRequired, http.StatusPreconditionRequired,
		"Precondition Required", "precondition-required"),
}

// Problems that only HTTP has.
var (
	probMethodNotAllowed = problem{http.StatusMethodNotAllowed, "MethodNotAllowed", "Method Not Allowed", "method-not-allowed"}
	probTooLarge         = problem{http.StatusRequestEntityTooLarge, "PayloadTooLarge", "Payload Too Large", "payload-too-large"}
	probUnsupportedType  = problem{http.StatusUnsupportedMediaType, "UnsupportedMediaType", "Unsupported Media Type", "unsupported-media-type"}
)

type problemBody struct {
	Type      string             `json:"type"`
	Title     string             `json:"title"`
	Status    int                `json:"status"`
	Detail    string             `json:"detail"`
	Instance  string             `json:"instance"`
	Error     string             `json:"error"`
	Message   string             `json:"message"`
	Details   []model.FieldError `json:"details,omitempty"`
	RequestID string             `json:"requestId"`
}

// writeError renders err as problem+json. Internal errors are logged with the
// request id and never echoed.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := model.AsError(err)
	p, ok := problems[e.Code]
	if !ok {
		p = problems[model.CodeInternal]
	}
	msg := e.Message
	if p.status >= 500 && e.Code == model.CodeInternal {
		slog.ErrorContext(r.Context(), "internal error", "request_id", RequestID(r.Context()), "err", err)
		msg = "An internal error occurred; quote the request id when reporting it"
	}
	if e.Version != "" {
		w.Header().Set("ETag", `"`+e.Version+`"`) // the current representation's
	}
	if e.Code == model.CodeUnavailable {
		slog.WarnContext(r.Context(), "unavailable", "request_id", RequestID(r.Context()), "err", err)
		w.Header().Set("Retry-After", "1")
	}
	writeProblem(w, r, p, msg, e.Details)
}

func writeProblem(w http.ResponseWriter, r *http.Request, p problem, msg string, details []model.FieldError) {
	body := problemBody{
		Type:      "/problems/" + p.slug,
		Title:     p.title,
		Status:    p.status,
		Detail:    msg,
		Instance:  r.URL.EscapedPath(), // as sent: a decoded %2F would name another path
		Error:     p.name,
		Message:   msg,
		Details:   details,
		RequestID: RequestID(r.Context()),
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.status)
	_ = json.NewEncoder(w).Encode(body) // the client may be gone; nothing to do then
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do then
}
