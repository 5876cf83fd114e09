package rest

import (
	"html"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/feeds"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/model"
)

// feedDays is how far back a feed reaches.
const feedDays = 30

// publicBase is the absolute URL this request reached the server at, for
// the links a feed carries (behind a trusted proxy, from its
// X-Forwarded-Proto/Host).
func publicBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	// Only a trusted proxy's forwarding headers name the public URL: a
	// client's would poison the links a cache then serves to everyone.
	if auth.ViaTrustedProxy(r) {
		if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
			scheme = p
		}
		if h := r.Header.Get("X-Forwarded-Host"); h != "" && !strings.ContainsAny(h, "/ ,") {
			host = h
		}
	}
	return scheme + "://" + host
}

// buildFeed is a published tenant's incidents of the last feedDays days,
// newest first, each with its timeline (the latest updates) as content.
func (h publicHandlers) buildFeed(r *http.Request) (*feeds.Feed, error) {
	tenant := chi.URLParam(r, "tenant")
	history, err := h.svc.PublicHistory(r.Context(), tenant, feedDays)
	if err != nil {
		return nil, err
	}
	page := publicBase(r) + "/status/" + tenant
	f := &feeds.Feed{Title: tenant + " status", Link: &feeds.Link{Href: page}, Id: page,
		Description: "Incidents of " + tenant + " and their updates"}
	for _, pi := range history {
		inc := pi.Incident
		var b strings.Builder
		b.WriteString("<p>Status: " + html.EscapeString(string(inc.Status)) + ", severity " + html.EscapeString(string(inc.Severity)) + "</p>")
		if inc.Description != nil && *inc.Description != "" {
			b.WriteString("<p>" + html.EscapeString(*inc.Description) + "</p>")
		}
		if len(pi.Updates) > 0 {
			b.WriteString("<ul>")
			for i := len(pi.Updates) - 1; i >= 0; i-- { // newest first, as readers read
				u := pi.Updates[i]
				b.WriteString("<li><strong>" + html.EscapeString(u.DisplayName) + "</strong> (" + u.CreatedAt.UTC().Format(time.RFC1123) + ")")
				if u.Description != "" {
					b.WriteString(": " + html.EscapeString(u.Description))
				}
				b.WriteString("</li>")
			}
			b.WriteString("</ul>")
		}
		title := inc.Title
		if inc.Status.Ended() {
			title = "[Resolved] " + title
		}
		updated := inc.UpdatedAt
		if n := len(pi.Updates); n > 0 && pi.Updates[n-1].CreatedAt.After(updated) {
			updated = pi.Updates[n-1].CreatedAt
		}
		if updated.After(f.Updated) {
			f.Updated = updated
		}
		f.Add(&feeds.Item{Title: title, Link: &feeds.Link{Href: page + "#" + inc.ID}, Id: page + "#" + inc.ID,
			Created: inc.OccurredAt, Updated: updated, Description: b.String(), Content: b.String()})
	}
	if f.Updated.IsZero() {
		f.Updated = time.Unix(0, 0).UTC()
	}
	return f, nil
}

// feed serves GET /v1/public/{tenant}/feed.atom and feed.rss.
func (h publicHandlers) feed(atom bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !noQuery(w, r) {
			return
		}
		if _, ok := h.admit(w, r); !ok {
			return
		}
		f, err := h.buildFeed(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		var body string
		if atom {
			body, err = f.ToAtom()
		} else {
			body, err = f.ToRss()
		}
		if err != nil {
			writeError(w, r, model.Internal(err, "render feed"))
			return
		}
		ctype := "application/rss+xml; charset=utf-8"
		if atom {
			ctype = "application/atom+xml; charset=utf-8"
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(body))
	}
}
