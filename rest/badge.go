package rest

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/incidentd/incidentd/model"
)

// Badge colours by status, as status pages colour them.
var badgeColours = map[string]string{
	"operational": "#2e7d32", "maintenance": "#1565c0", "minor": "#b58900", "major": "#e65100", "outage": "#c62828",
}

// overallStatus is the worst status of a summary's components, or
// operational.
func overallStatus(s *model.StatusSummary) string {
	worst := model.Impact(-1)
	for _, c := range s.Components {
		worst = max(worst, c.Worst())
	}
	if worst < 0 {
		return "operational"
	}
	return worst.String()
}

// renderBadge draws a flat two-part badge. Widths are estimated at 7 px a
// character (Verdana 11 px averages about that), which is close enough for
// the short texts a badge holds.
func renderBadge(label, value string) []byte {
	lw, vw := 10+7*utf8.RuneCountInString(label), 10+7*utf8.RuneCountInString(value)
	colour := badgeColours[value]
	l, v := html.EscapeString(label), html.EscapeString(value)
	return fmt.Appendf(nil, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="%s: %s">`+
		`<title>%s: %s</title><rect width="%d" height="20" fill="#555"/><rect x="%d" width="%d" height="20" fill="%s"/>`+
		`<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">`+
		`<text x="%d" y="14">%s</text><text x="%d" y="14">%s</text></g></svg>`,
		lw+vw, l, v, l, v, lw, lw, vw, colour, lw/2, l, lw+vw/2, v)
}

// badge serves GET /v1/public/{tenant}/badge.svg: the overall status, or
// one component's with ?component=<id>; ?label= replaces the left text.
func (h publicHandlers) badge(w http.ResponseWriter, r *http.Request) {
	q := readQuery(r.URL.Query(), params{"component": scalar, "label": scalar})
	component, label := q.str("component"), q.str("label")
	if utf8.RuneCountInString(label) > 40 || !utf8.ValidString(label) || strings.IndexFunc(label, unicode.IsControl) >= 0 {
		q.fail("label", "label must be at most 40 printable characters")
	}
	if err := q.err(); err != nil {
		writeError(w, r, err)
		return
	}
	if _, ok := h.admit(w, r); !ok {
		return
	}
	s, err := h.svc.PublicSummary(r.Context(), chi.URLParam(r, "tenant"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	value := overallStatus(s)
	if label == "" {
		label = "status"
	}
	if component != "" {
		value = ""
		for _, c := range s.Components {
			if c.Component.ID == component {
				value = "operational"
				if worst := c.Worst(); worst >= 0 {
					value = worst.String()
				}
				if q.str("label") == "" {
					label = c.Component.DisplayName
				}
			}
		}
		if value == "" {
			writeError(w, r, model.NotFound("Component", component))
			return
		}
	}
	body := renderBadge(label, value)
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	hd := w.Header()
	hd.Set("ETag", etag)
	hd.Set("Cache-Control", "public, max-age=30")
	if NoneMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", "image/svg+xml")
	// The SVG is a document of its own when opened directly: no scripts.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
