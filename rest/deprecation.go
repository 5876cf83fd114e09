package rest

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The versioning policy (README "Versioning"): a deprecated route or
// field keeps working until its sunset, and every answer of a deprecated
// route says so: Deprecation (RFC 9745: when it was deprecated), Sunset
// (RFC 8594: when it stops) and Link relations to its successor and to the
// policy.

// deprecation is one deprecated thing.
type deprecation struct {
	since, sunset time.Time
	// successor maps the request path to the path that replaces it.
	successor func(path string) string
}

// apiV1Alias: /api/v1 duplicated every /v1 route. It stays for the
// monitoring protocol's own path (/api/v1/component_status, its
// contract), and is deprecated for everything else.
var apiV1Alias = deprecation{
	since:     time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC),
	sunset:    time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC),
	successor: func(path string) string { return strings.TrimPrefix(path, "/api") },
}

// policyLink is where the policy is written down.
const policyLink = "https://github.com/incidentd/incidentd#versioning"

// deprecated marks the answers of the routes it wraps, except those keep
// says are not deprecated.
func deprecated(d deprecation, keep func(*http.Request) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !keep(r) {
				h := w.Header()
				h.Set("Deprecation", fmt.Sprintf("@%d", d.since.Unix()))
				h.Set("Sunset", d.sunset.Format(http.TimeFormat))
				h.Add("Link", fmt.Sprintf(`<%s>; rel="successor-version", <%s>; rel="deprecation"`, d.successor(r.URL.EscapedPath()), policyLink))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// monitoringPath reports whether r is for the monitoring protocol's route.
func monitoringPath(r *http.Request) bool {
	return strings.TrimSuffix(r.URL.Path, "/") == "/api/v1/component_status"
}
