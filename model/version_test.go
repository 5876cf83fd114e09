package model

import (
	"context"
	"testing"
	"time"
)

// versionCase changes one field of a fresh copy of a resource.
type versionCase[T any] struct {
	field string
	edit  func(*T)
}

// checkVersions: every listed edit moves the version, every ignored one
// (what moves without anyone editing the resource, or nil against empty)
// keeps it, and equal content names one version.
func checkVersions[T any](t *testing.T, fresh func() *T, version func(*T) string, moves, keeps []versionCase[T]) {
	t.Helper()
	base := version(fresh())
	if base == "" || base != version(fresh()) {
		t.Fatalf("equal content, versions %q and %q", base, version(fresh()))
	}
	for _, c := range moves {
		v := fresh()
		c.edit(v)
		if version(v) == base {
			t.Errorf("%s changed, the version did not", c.field)
		}
	}
	for _, c := range keeps {
		v := fresh()
		c.edit(v)
		if version(v) != base {
			t.Errorf("%s moved the version", c.field)
		}
	}
}

var (
	vt0 = time.Date(2024, 1, 15, 14, 30, 0, 0, time.UTC)
	vt1 = vt0.Add(time.Hour)
)

func TestAPIKeyVersion(t *testing.T) {
	fresh := func() *APIKey {
		exp := vt1
		return &APIKey{ID: "key_1", TenantID: "t", Name: "ci", Prefix: "ik_abc", Hash: []byte{1}, Scopes: []Scope{ScopeIncidentsRead},
			Tier: "default", ActorID: "a", CreatedAt: vt0, ExpiresAt: &exp}
	}
	checkVersions(t, fresh, (*APIKey).Version, []versionCase[APIKey]{
		{"name", func(k *APIKey) { k.Name = "other" }},
		{"prefix", func(k *APIKey) { k.Prefix = "ik_def" }},
		{"scopes", func(k *APIKey) { k.Scopes = append(k.Scopes, ScopeIncidentsWrite) }},
		{"tier", func(k *APIKey) { k.Tier = "pro" }},
		{"actor", func(k *APIKey) { k.ActorID = "b" }},
		{"expiresAt", func(k *APIKey) { k.ExpiresAt = nil }},
		{"revokedAt", func(k *APIKey) { k.RevokedAt = &vt1 }},
	}, []versionCase[APIKey]{
		{"lastUsedAt", func(k *APIKey) { k.LastUsedAt = &vt1 }},
		{"a nanosecond below the stores' microsecond", func(k *APIKey) { k.CreatedAt = vt0.Add(time.Nanosecond) }},
		{"a time zone", func(k *APIKey) { k.CreatedAt = vt0.In(time.FixedZone("x", 3600)) }},
	})
}

func TestCatalogueVersions(t *testing.T) {
	checkVersions(t, func() *ImpactType {
		return &ImpactType{ID: "imp_1", DisplayName: "Slow", Description: "d", Level: -1, CreatedAt: vt0, UpdatedAt: vt0, CreatedBy: "a", UpdatedBy: "a"}
	}, (*ImpactType).Version, []versionCase[ImpactType]{
		{"displayName", func(v *ImpactType) { v.DisplayName = "slow" }},
		{"description", func(v *ImpactType) { v.Description = "" }},
		{"updatedAt", func(v *ImpactType) { v.UpdatedAt = vt1 }},
		{"updatedBy", func(v *ImpactType) { v.UpdatedBy = "b" }},
	}, nil)
	checkVersions(t, func() *SeverityLevel {
		return &SeverityLevel{DisplayName: "Sev", Value: 30, CreatedAt: vt0, UpdatedAt: vt0, CreatedBy: "a", UpdatedBy: "a"}
	}, (*SeverityLevel).Version, []versionCase[SeverityLevel]{
		{"displayName", func(v *SeverityLevel) { v.DisplayName = "SEV" }},
		{"value", func(v *SeverityLevel) { v.Value = 31 }},
		{"updatedAt", func(v *SeverityLevel) { v.UpdatedAt = vt1 }},
	}, nil)
	checkVersions(t, func() *PhaseList {
		return &PhaseList{Generation: 2, Phases: []string{"a", "b"}, CreatedAt: vt0, CreatedBy: "a"}
	}, (*PhaseList).Version, []versionCase[PhaseList]{
		{"generation", func(v *PhaseList) { v.Generation = 3 }},
		{"phases", func(v *PhaseList) { v.Phases = []string{"b", "a"} }},
	}, nil)
	empty := func() *PhaseList { return &PhaseList{} }
	checkVersions(t, empty, (*PhaseList).Version, nil, []versionCase[PhaseList]{
		{"nil against empty phases", func(v *PhaseList) { v.Phases = []string{} }},
	})
	// The built-in entries each have their own fixed version.
	seen := map[string]bool{}
	for _, b := range BuiltInImpactTypes() {
		seen[b.Version()] = true
	}
	for _, b := range BuiltInSeverities() {
		seen[b.Version()] = true
	}
	if len(seen) != len(BuiltInImpactTypes())+len(BuiltInSeverities()) {
		t.Errorf("built-in versions collide: %v", seen)
	}
}

func TestWebhookEndpointVersion(t *testing.T) {
	fresh := func() *WebhookEndpoint {
		return &WebhookEndpoint{ID: "whe_1", URL: "https://h.example.com", Events: []WebhookEventType{WebhookIncidentCreated}, Enabled: true,
			CreatedAt: vt0, UpdatedAt: vt0, CreatedBy: "a", UpdatedBy: "a"}
	}
	checkVersions(t, fresh, (*WebhookEndpoint).Version, []versionCase[WebhookEndpoint]{
		{"url", func(v *WebhookEndpoint) { v.URL += "/x" }},
		{"description", func(v *WebhookEndpoint) { v.Description = "d" }},
		{"events", func(v *WebhookEndpoint) { v.Events = nil }},
		{"filter.severities", func(v *WebhookEndpoint) { v.Filter.Severities = []Severity{SeverityHigh} }},
		{"filter.statuses", func(v *WebhookEndpoint) { v.Filter.Statuses = []Status{StatusOpen} }},
		{"filter.services", func(v *WebhookEndpoint) { v.Filter.Services = []string{"api"} }},
		{"filter.components", func(v *WebhookEndpoint) { v.Filter.Components = []string{"cmp_1"} }},
		{"filter.labels", func(v *WebhookEndpoint) { v.Filter.Labels = map[string]string{"a": "b"} }},
		{"enabled", func(v *WebhookEndpoint) { v.Enabled = false }},
		{"disabledReason", func(v *WebhookEndpoint) { v.DisabledReason = "410 Gone" }},
		{"previousSecretUntil", func(v *WebhookEndpoint) { v.PreviousSecretUntil = &vt1 }},
		{"updatedAt", func(v *WebhookEndpoint) { v.UpdatedAt = vt1 }},
	}, []versionCase[WebhookEndpoint]{
		{"failingSince", func(v *WebhookEndpoint) { v.FailingSince = &vt1 }},
		{"empty against nil filter members", func(v *WebhookEndpoint) {
			v.Filter = WebhookFilter{EventFilter: EventFilter{Severities: []Severity{}, Statuses: []Status{}, Services: []string{}},
				Components: []string{}, Labels: map[string]string{}}
		}},
	})
}

func TestSettingsVersion(t *testing.T) {
	off, on := &TenantSettings{}, &TenantSettings{RequirePreconditions: true}
	if off.Version() == on.Version() || off.Version() != (&TenantSettings{}).Version() {
		t.Errorf("settings versions: off %s, on %s", off.Version(), on.Version())
	}
}

// TestCheckVersion: the one rule every door and resource applies.
func TestCheckVersion(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		expected string // "" for none
		required bool
		want     Code
	}{
		{"", false, ""},
		{"", true, CodePreconditionRequired},
		{"v1", false, ""},
		{"v1", true, ""},
		{"*", true, ""},
		{"v0", false, CodePreconditionFailed},
		{"v0,v1", true, ""},
		{"v0,weak:never-matches", false, CodePreconditionFailed},
	} {
		cx := ctx
		if c.expected != "" {
			cx = WithExpectedVersion(ctx, c.expected)
		}
		err := CheckVersion(cx, "v1", c.required)
		got := Code("")
		if err != nil {
			got = ErrorCode(err)
		}
		if got != c.want {
			t.Errorf("expected %q, required %v: %q, want %q", c.expected, c.required, got, c.want)
		}
		if c.want == CodePreconditionFailed && AsError(err).Version != "v1" {
			t.Errorf("a 412 carries the current version, got %q", AsError(err).Version)
		}
	}
}
