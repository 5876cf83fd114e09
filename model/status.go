package model

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// StatusSummary is what a status widget shows: every component's current
// worst impact, the open incidents, and the maintenance to come.
type StatusSummary struct {
	Components    []ComponentState
	OpenIncidents []*Incident
	Maintenance   []*Maintenance
	GeneratedAt   time.Time
	// Updates are the open incidents' timelines (the latest
	// MaxHistoryUpdates entries, oldest first), in public summaries only.
	Updates map[string][]IncidentUpdate
}

// MaxSummaryComponents bounds a summary's components.
const MaxSummaryComponents = 1000

// StatusService serves the status summary.
type StatusService interface {
	// Summary of the caller's tenant (components:read and incidents:read).
	// Codes: unauthorized, forbidden.
	Summary(ctx context.Context) (*StatusSummary, error)
	// SetPublication publishes (or withdraws) the tenant's summary for
	// anyone, read-only, and sets the origins whose pages may embed it
	// (components:write). Codes: unauthorized, forbidden, invalid.
	SetPublication(ctx context.Context, p Publication) error
	// Publication returns a published tenant's publication without
	// credentials. Codes: not_found (unknown or unpublished tenant: the
	// same answer).
	Publication(ctx context.Context, tenant string) (*Publication, error)
	// PublicSummary returns a published tenant's summary without credentials.
	// Codes: not_found (unknown or unpublished tenant: the same answer).
	PublicSummary(ctx context.Context, tenant string) (*StatusSummary, error)
	// PublicHistory returns a published tenant's incidents that occurred
	// in the last days days (1 to MaxHistoryDays), newest first, at most
	// MaxHistory, each with the latest MaxHistoryUpdates entries of its
	// timeline, without credentials. Codes: not_found, invalid.
	PublicHistory(ctx context.Context, tenant string, days int) ([]PublicIncident, error)
}

// PublicIncident is an incident as a status page shows it: with its
// timeline (oldest first).
type PublicIncident struct {
	Incident *Incident
	Updates  []IncidentUpdate
}

// Bounds of a public history.
const (
	MaxHistoryDays    = 90
	MaxHistory        = 100
	MaxHistoryUpdates = 20
)

// Publication is how a tenant's status is published.
type Publication struct {
	Public bool
	// AllowedOrigins are the web origins ("https://status.example.com")
	// whose pages may read the public status from a browser (CORS) and
	// frame the hosted status page; "*" allows every origin.
	AllowedOrigins []string
}

// MaxAllowedOrigins bounds a tenant's allowed origins.
const MaxAllowedOrigins = 50

// CheckPublication validates p and normalises its origins (lower case,
// without default ports, sorted, once each).
func CheckPublication(p *Publication) error {
	if len(p.AllowedOrigins) > MaxAllowedOrigins {
		return Invalid("Invalid publication", FieldError{Field: "allowedOrigins",
			Message: fmt.Sprintf("at most %d allowed origins", MaxAllowedOrigins)})
	}
	seen := map[string]bool{}
	var out []string
	for i, o := range p.AllowedOrigins {
		n, ok := NormalizeOrigin(o)
		if !ok && o != "*" {
			return Invalid("Invalid publication", FieldError{Field: fmt.Sprintf("allowedOrigins[%d]", i),
				Message: `an allowed origin is "*" or a scheme (http or https) and a host with an optional port, nothing else, e.g. https://status.example.com`})
		}
		if o == "*" {
			n = "*"
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	slices.Sort(out)
	p.AllowedOrigins = out
	return nil
}

// NormalizeOrigin returns o as a browser sends it in an Origin header
// (lower case scheme and host, no default port), or false when o is not
// an http(s) origin.
func NormalizeOrigin(o string) (string, bool) {
	if len(o) > 300 || !utf8.ValidString(o) {
		return "", false
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || strings.HasSuffix(o, "/") ||
		strings.ContainsAny(u.Host, "*/ ") {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", false
		}
		port = strconv.Itoa(n) // 0443 is 443
	}
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	// A host is a DNS name or an IP address, nothing a header could read
	// as more (a CSP's ; or , would start a directive or a policy).
	if _, err := netip.ParseAddr(host); err != nil && strings.Trim(host, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
		return "", false
	}
	if host == "" {
		return "", false
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return u.Scheme + "://" + host + ":" + port, true
	}
	return u.Scheme + "://" + host, true
}

// Allows reports whether a browser page of origin (an Origin header) may
// read p's public status.
func (p *Publication) Allows(origin string) bool {
	o, ok := NormalizeOrigin(origin)
	for _, a := range p.AllowedOrigins {
		if a == "*" || (ok && a == o) {
			return true
		}
	}
	return false
}

// AuditStatusPublication records a change of a tenant's publication.
const AuditStatusPublication = "status.publication"
