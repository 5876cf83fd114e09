package rest

import (
	"net/http"
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
	p := readQuery(r.URL.Query(), params{"action": scalar, "resourceId": scalar, "actor": scalar, "cursor": scalar,
		"limit": scalar, "from": scalar, "to": scalar})
	q := model.AuditQuery{Action: p.str("action"), ResourceID: p.str("resourceId"), ActorID: p.str("actor"), After: p.str("cursor"),
		Limit: p.limit(), From: p.dateTime("from"), To: p.dateTime("to")}
	if err := p.err(); err != nil {
		writeError(w, r, err)
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
