package model

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Versions and preconditions: every single resource (incident, component,
// API key, impact type, severity, phase list, webhook endpoint, the tenant's
// settings) has a version that names its content (equal fields, equal
// version; every write of an edited resource moves updatedAt or another of
// its fields, so every change moves it). A version covers the resource's
// own fields, not what moves without anyone editing it: a component's
// derived status, an API key's lastUsedAt, a webhook endpoint's
// failingSince. REST's ETag is the version in quotes; GraphQL's version
// field is the version. A write may carry the version its caller expects
// (If-Match, expectedVersion): the store then applies it only to that
// version, checked under the row's lock, so of two clients editing from the
// same version the second fails instead of overwriting the first.

// versionOf hashes a value's canonical JSON (struct fields in order, map
// keys sorted).
func versionOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("model: version of an unencodable value: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:15])
}

// stamp is a time as the stores keep it (UTC, microseconds), so that an
// incident read back names the same version as the one written.
func stamp(t time.Time) string { return t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano) }

// stampPtr is stamp of an optional time (nil stays nil).
func stampPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := stamp(*t)
	return &s
}

// orEmpty is s, or an empty slice for nil (so that nil and empty name one version).
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Version names the incident's content.
func (i *Incident) Version() string {
	return versionOf([]any{i.ID, i.Title, i.Description, i.Severity, i.Status, i.Service, orEmpty(i.Tags), stamp(i.OccurredAt), stampPtr(i.ResolvedAt),
		stamp(i.CreatedAt), stamp(i.UpdatedAt), i.CreatedBy, i.UpdatedBy, i.IsDeleted, i.Phase})
}

// Version names the component's content.
func (c *Component) Version() string {
	labels := c.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return versionOf([]any{c.ID, c.DisplayName, labels, stamp(c.CreatedAt), stamp(c.UpdatedAt), c.CreatedBy, c.UpdatedBy})
}

// Version names the API key's own fields; not lastUsedAt, which moves with
// every use (revoking or rotating moves revokedAt or expiresAt).
func (k *APIKey) Version() string {
	return versionOf([]any{k.ID, k.Name, k.Prefix, orEmpty(k.Scopes), k.Tier, k.ActorID, stamp(k.CreatedAt),
		stampPtr(k.ExpiresAt), stampPtr(k.RevokedAt)})
}

// Version names the impact type's content (a built-in one's never changes).
func (t *ImpactType) Version() string {
	return versionOf([]any{t.ID, t.DisplayName, t.Description, t.BuiltIn, t.Level, stamp(t.CreatedAt), stamp(t.UpdatedAt),
		t.CreatedBy, t.UpdatedBy})
}

// Version names the severity's content (a built-in one's never changes).
func (l *SeverityLevel) Version() string {
	return versionOf([]any{l.DisplayName, l.Value, l.BuiltIn, l.Severity, stamp(l.CreatedAt), stamp(l.UpdatedAt),
		l.CreatedBy, l.UpdatedBy})
}

// Version names one generation of the phase list; replacing the list makes
// a generation with another version.
func (l *PhaseList) Version() string {
	return versionOf([]any{l.Generation, orEmpty(l.Phases), stamp(l.CreatedAt), l.CreatedBy})
}

// Version names the webhook endpoint's own fields (a rotation moves
// previousSecretUntil, the platform disabling it moves enabled and
// disabledReason); not failingSince, which moves with deliveries.
func (ep *WebhookEndpoint) Version() string {
	labels := ep.Filter.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return versionOf([]any{ep.ID, ep.URL, ep.Description, orEmpty(ep.Events), orEmpty(ep.Filter.Severities),
		orEmpty(ep.Filter.Statuses), orEmpty(ep.Filter.Services), orEmpty(ep.Filter.Components), labels, ep.Enabled,
		ep.DisabledReason, stampPtr(ep.PreviousSecretUntil), stamp(ep.CreatedAt), stamp(ep.UpdatedAt), ep.CreatedBy, ep.UpdatedBy})
}

// Version names the tenant's settings.
func (s *TenantSettings) Version() string {
	return versionOf([]any{"settings", s.RequirePreconditions})
}

type expectedKey struct{}

// WithExpectedVersion asks the next write of ctx to apply only if the
// resource is at version v (or at any of a comma-separated list); "*"
// means only if it exists (If-Match: *).
func WithExpectedVersion(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, expectedKey{}, v)
}

// ExpectedVersion returns what WithExpectedVersion set.
func ExpectedVersion(ctx context.Context) (string, bool) {
	v, ok := ctx.Value(expectedKey{}).(string)
	return v, ok
}

// CheckVersion applies ctx's expected version to a resource at current:
// precondition_failed (carrying current) when it differs, and
// precondition_required when required and none was given.
func CheckVersion(ctx context.Context, current string, required bool) error {
	want, ok := ExpectedVersion(ctx)
	switch {
	case !ok && required:
		return &Error{Code: CodePreconditionRequired, Message: "this tenant requires a precondition on every change: send If-Match with the resource's ETag (GraphQL: expectedVersion)"}
	case ok && want != "*" && !slices.Contains(strings.Split(want, ","), current):
		return &Error{Code: CodePreconditionFailed, Version: current,
			Message: "the resource changed since the version you expected; read it again (its current version is in the ETag) and retry"}
	}
	return nil
}

// TenantSettings are a tenant's own rules.
type TenantSettings struct {
	// RequirePreconditions refuses (precondition_required) every change of
	// an existing versioned resource that does not say which version it
	// expects: PATCH, PUT and DELETE, and the POSTs that change one (API
	// key rotate, webhook rotate-secret, phases). Not the settings
	// themselves, so that the switch can always be turned off.
	RequirePreconditions bool
}

// AuditSettings records a change of a tenant's settings.
const AuditSettings = "tenant.settings"

// SettingsService reads and sets the caller's tenant settings
// (apikeys:admin, the tenant's administrators). Codes: unauthorized, forbidden.
type SettingsService interface {
	Get(ctx context.Context) (*TenantSettings, error)
	SetRequirePreconditions(ctx context.Context, required bool) (*TenantSettings, error)
}
