package model

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Component is a part of a service whose status the platform tracks (the
// status-page model). Labels (the monitoring contract calls them
// attributes, e.g. region) tell apart components that share a display name.
type Component struct {
	ID          string
	TenantID    string
	DisplayName string
	Labels      map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CreatedBy   string
	UpdatedBy   string
}

// Limits of components.
const (
	MaxComponentNameLen = 200
	MaxLabels           = 32
	MaxLabelKeyLen      = 64
	MaxLabelValueLen    = 256
)

var labelKeyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-/]*$`)

// ComponentInput is the input of a creation, or a patch with Set fields.
type ComponentInput struct {
	DisplayName Optional[string]
	Labels      Optional[map[string]string]
}

// Validate lists every violation; create requires a display name.
func (in *ComponentInput) Validate(create bool) []FieldError {
	var errs []FieldError
	switch {
	case in.DisplayName.Set && in.DisplayName.Null:
		errs = append(errs, FieldError{"displayName", "displayName cannot be null"})
	case in.DisplayName.Set:
		errs = append(errs, checkText("displayName", in.DisplayName.Value, MaxComponentNameLen, true)...)
	case create:
		errs = append(errs, FieldError{"displayName", "displayName is required"})
	}
	if in.Labels.Set && in.Labels.Null {
		errs = append(errs, FieldError{"labels", "labels cannot be null (send {} to clear them)"})
	}
	if len(in.Labels.Value) > MaxLabels {
		errs = append(errs, FieldError{"labels", fmt.Sprintf("labels must have at most %d entries", MaxLabels)})
	}
	keys := make([]string, 0, len(in.Labels.Value))
	for k := range in.Labels.Value {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field := "labels." + k
		if len(k) > MaxLabelKeyLen || !labelKeyPattern.MatchString(k) {
			errs = append(errs, FieldError{field, fmt.Sprintf("label keys must be 1 to %d characters of letters, digits, '_', '.', '-' or '/', starting with a letter or digit", MaxLabelKeyLen)})
			continue
		}
		errs = append(errs, checkText(field, in.Labels.Value[k], MaxLabelValueLen, false)...)
	}
	return errs
}

// ComponentQuery lists components: NamePrefix matches the display name's
// start (case-insensitive); Labels must all match exactly.
type ComponentQuery struct {
	NamePrefix string
	Labels     map[string]string
	Limit      int
	Offset     int
}

// ComponentPage is one page of components, ordered by display name then id.
type ComponentPage struct {
	Items      []*Component
	TotalCount int
	HasMore    bool
}

// ComponentService manages the caller's tenant's components.
type ComponentService interface {
	// Create stores a component. Codes: unauthorized, forbidden, invalid.
	Create(ctx context.Context, in ComponentInput) (*Component, error)
	// Get returns one. Codes: unauthorized, forbidden, not_found.
	Get(ctx context.Context, id string) (*Component, error)
	// List returns a page. Codes: unauthorized, forbidden, invalid.
	List(ctx context.Context, q ComponentQuery) (*ComponentPage, error)
	// Update applies the Set fields. Codes: unauthorized, forbidden, invalid, not_found.
	Update(ctx context.Context, id string, in ComponentInput) (*Component, error)
	// Delete removes a component. Codes: unauthorized, forbidden, not_found.
	Delete(ctx context.Context, id string) error
}

// Validate checks a component query.
func (q *ComponentQuery) Validate() error {
	var errs []FieldError
	errs = append(errs, checkText("name", q.NamePrefix, MaxComponentNameLen, false)...)
	errs = append(errs, CheckLimit("limit", q.Limit)...)
	errs = append(errs, CheckOffset(q.Offset)...)
	in := ComponentInput{Labels: Some(q.Labels)}
	errs = append(errs, in.Validate(false)...)
	if len(errs) > 0 {
		return Invalid("Invalid query parameters", errs...)
	}
	return nil
}

// ComponentChanges lists the fields that differ (before nil: a creation).
func ComponentChanges(before, after *Component) map[string]Change {
	out := map[string]Change{}
	if before == nil {
		out["displayName"] = Change{After: after.DisplayName}
		out["labels"] = Change{After: after.Labels}
		return out
	}
	if before.DisplayName != after.DisplayName {
		out["displayName"] = Change{Before: before.DisplayName, After: after.DisplayName}
	}
	if !maps.Equal(before.Labels, after.Labels) {
		out["labels"] = Change{Before: before.Labels, After: after.Labels}
	}
	return out
}

// Audit actions of components.
const (
	AuditComponentCreate = "component.create"
	AuditComponentUpdate = "component.update"
	AuditComponentDelete = "component.delete"
)

// NameKey is the folded form of a display name that prefix search matches.
// A string that is not valid UTF-8 is no display name and is left as it is
// (ToLower would turn its bad bytes into U+FFFD, naming a stored "a\uFFFDb").
func NameKey(s string) string {
	if !utf8.ValidString(s) {
		return s
	}
	return strings.ToLower(s)
}
