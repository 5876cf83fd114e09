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

// Versions and preconditions: every incident and component has a version
// that names its content (equal fields, equal version; every write moves
// updatedAt, so every change moves it). REST's ETag is the version in
// quotes; GraphQL's version field is the version. A write may carry the
// version its caller expects (If-Match, expectedVersion): the store then
// applies it only to that version, checked under the row's lock, so of two
// clients editing from the same version the second fails instead of
// overwriting the first.

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

// Version names the incident's content.
func (i *Incident) Version() string {
	var resolved *string
	if i.ResolvedAt != nil {
		r := stamp(*i.ResolvedAt)
		resolved = &r
	}
	tags := i.Tags
	if tags == nil {
		tags = []string{}
	}
	return versionOf([]any{i.ID, i.Title, i.Description, i.Severity, i.Status, i.Service, tags, stamp(i.OccurredAt), resolved,
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
	// an incident or component that does not say which version it expects.
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
