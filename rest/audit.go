package rest

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/incidentd/incidentd/model"
)

type auditEventJSON struct {
	ID           string                  `json:"id"`
	Actor        string                  `json:"actor"`
	Credential   string                  `json:"credential"`
	Action       string                  `json:"action"`
	ResourceType string                  `json:"resourceType"`
	ResourceID   string                  `json:"resourceId"`
	RequestID    string                  `json:"requestId"`
	Changes      map[string]model.Change `json:"changes"`
	At           string                  `json:"at"`
}

type auditHandlers struct{ log model.AuditLog }

// list serves GET /v1/audit-events, newest first, with cursor pages.
func (h auditHandlers) list(w http.ResponseWriter, r *http.Request) {
	q := model.AuditQuery{Limit: model.DefaultLimit}
	var errs []model.FieldError
	for name, vs := range r.URL.Query() {
		v := strings.Join(vs, ",")
		if v == "" {
			continue
		}
		switch name {
		case "action":
			q.Action = v
		case "resourceId":
			q.ResourceID = v
		case "actor":
			q.ActorID = v
		case "cursor":
			q.After = v
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil {
				n = 0
			}
			q.Limit = n
		case "from", "to":
			t, ok := parseQueryTime(v)
			if !ok {
				errs = append(errs, model.FieldError{Field: name, Message: name + " must be an RFC 3339 date-time, e.g. 2024-01-15T14:30:00Z"})
			} else if name == "from" {
				q.From = &t
			} else {
				q.To = &t
			}
		default:
			errs = append(errs, model.FieldError{Field: name, Message: "unknown query parameter " + name})
		}
	}
	if len(errs) > 0 {
		writeError(w, r, model.Invalid("Invalid query parameters", sortDetails(errs)...))
		return
	}
	page, err := h.log.List(r.Context(), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Data       []auditEventJSON `json:"data"`
		Pagination struct {
			Limit      int     `json:"limit"`
			HasMore    bool    `json:"hasMore"`
			NextCursor *string `json:"nextCursor"`
		} `json:"pagination"`
	}{Data: make([]auditEventJSON, len(page.Items))}
	for i, e := range page.Items {
		out.Data[i] = auditEventJSON{ID: e.ID, Actor: e.ActorID, Credential: e.CredentialID, Action: e.Action, ResourceType: e.ResourceType,
			ResourceID: e.ResourceID, RequestID: e.RequestID, Changes: e.Changes, At: e.At.UTC().Format(time.RFC3339Nano)}
	}
	out.Pagination.Limit, out.Pagination.HasMore = q.Limit, page.HasMore
	if page.NextCursor != "" {
		out.Pagination.NextCursor = &page.NextCursor
	}
	writeJSON(w, http.StatusOK, out)
}
