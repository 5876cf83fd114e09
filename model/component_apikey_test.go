package model

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"
)

func labels(n int) map[string]string {
	out := map[string]string{}
	for i := range n {
		out[fmt.Sprintf("k%02d", i)] = "v"
	}
	return out
}

const labelKeyMessage = "label keys must be 1 to 64 characters of letters, digits, '_', '.', '-' or '/', starting with a letter or digit"

// Rule: a component has a display name of 1..200 (required on create, never
// null) and at most 32 labels whose keys are 1..64 of [A-Za-z0-9_.-/]
// starting with a letter or digit and whose values are at most 256
// characters; violations are listed by sorted key.
func TestComponentInputValidate(t *testing.T) {
	cases := []struct {
		name   string
		in     ComponentInput
		create bool
		want   []FieldError
	}{
		{"create", ComponentInput{DisplayName: Some("Web")}, true, nil},
		{"create without name", ComponentInput{}, true, []FieldError{{"displayName", "displayName is required"}}},
		{"patch without name", ComponentInput{}, false, nil},
		{"name null", ComponentInput{DisplayName: Null[string]()}, false, []FieldError{{"displayName", "displayName cannot be null"}}},
		{"name null on create", ComponentInput{DisplayName: Null[string]()}, true, []FieldError{{"displayName", "displayName cannot be null"}}},
		{"name at limit", ComponentInput{DisplayName: Some(text(200))}, true, nil},
		{"name too long", ComponentInput{DisplayName: Some(text(201))}, false, []FieldError{{"displayName", "displayName must be between 1 and 200 characters"}}},
		{"name empty", ComponentInput{DisplayName: Some("")}, false, []FieldError{{"displayName", "displayName must be between 1 and 200 characters"}}},
		{"labels null", ComponentInput{Labels: Null[map[string]string]()}, false, []FieldError{{"labels", "labels cannot be null (send {} to clear them)"}}},
		{"labels cleared", ComponentInput{Labels: Some(map[string]string{})}, false, nil},
		{"32 labels", ComponentInput{Labels: Some(labels(32))}, false, nil},
		{"33 labels", ComponentInput{Labels: Some(labels(33))}, false, []FieldError{{"labels", "labels must have at most 32 entries"}}},
		{"key shapes", ComponentInput{Labels: Some(map[string]string{"a": "", "Z9_.-/x": "v", "9": "v", strings.Repeat("k", 64): "v"})}, false, nil},
		{"key too long", ComponentInput{Labels: Some(map[string]string{strings.Repeat("k", 65): "v"})}, false,
			[]FieldError{{"labels." + strings.Repeat("k", 65), labelKeyMessage}}},
		{"bad keys, sorted", ComponentInput{Labels: Some(map[string]string{"_a": "v", "": "v", "a b": "v", "-a": "v", "é": "v"})}, false,
			[]FieldError{{"labels.", labelKeyMessage}, {"labels.-a", labelKeyMessage}, {"labels._a", labelKeyMessage},
				{"labels.a b", labelKeyMessage}, {"labels.é", labelKeyMessage}}},
		{"value at limit", ComponentInput{Labels: Some(map[string]string{"k": text(256)})}, false, nil},
		{"value too long", ComponentInput{Labels: Some(map[string]string{"k": text(257)})}, false,
			[]FieldError{{"labels.k", "labels.k must be at most 256 characters"}}},
		{"value with NUL", ComponentInput{Labels: Some(map[string]string{"k": "\x00"})}, false,
			[]FieldError{{"labels.k", "labels.k must not contain NUL characters"}}},
		{"bad key skips its value", ComponentInput{Labels: Some(map[string]string{"-k": text(257)})}, false,
			[]FieldError{{"labels.-k", labelKeyMessage}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErrs(t, c.in.Validate(c.create), c.want)
		})
	}
}

// Rule: a component list has limit 1..100, offset 0..1,000,000, a name
// prefix of at most 200 characters and well-formed labels.
func TestComponentQueryValidate(t *testing.T) {
	limit := FieldError{"limit", "limit must be between 1 and 100"}
	offset := FieldError{"offset", "offset must be between 0 and 1000000"}
	cases := []struct {
		name string
		q    ComponentQuery
		want []FieldError
	}{
		{"defaults", ComponentQuery{Limit: 20}, nil},
		{"bounds", ComponentQuery{Limit: 1, Offset: 0}, nil},
		{"upper bounds", ComponentQuery{Limit: 100, Offset: MaxOffset, NamePrefix: text(200), Labels: map[string]string{"region": "eu"}}, nil},
		{"limit 0", ComponentQuery{Limit: 0}, []FieldError{limit}},
		{"limit 101", ComponentQuery{Limit: 101}, []FieldError{limit}},
		{"offset -1", ComponentQuery{Limit: 1, Offset: -1}, []FieldError{offset}},
		{"offset too deep", ComponentQuery{Limit: 1, Offset: MaxOffset + 1}, []FieldError{offset}},
		{"name too long", ComponentQuery{Limit: 1, NamePrefix: text(201)}, []FieldError{{"name", "name must be at most 200 characters"}}},
		{"bad label", ComponentQuery{Limit: 1, Labels: map[string]string{"-x": "v"}}, []FieldError{{"labels.-x", labelKeyMessage}}},
		{"all at once", ComponentQuery{Limit: 0, Offset: -1, NamePrefix: "\x00"}, []FieldError{
			{"name", "name must not contain NUL characters"}, limit, offset}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantInvalid(t, c.q.Validate(), "Invalid query parameters", c.want)
		})
	}
}

// Rule: the audit form of a component lists both fields on creation and
// only the changed ones afterwards.
func TestComponentChanges(t *testing.T) {
	a := &Component{DisplayName: "Web", Labels: map[string]string{"r": "eu"}}
	created := ComponentChanges(nil, a)
	if len(created) != 2 || created["displayName"].Before != nil || created["displayName"].After != "Web" ||
		created["labels"].Before != nil || !maps.Equal(created["labels"].After.(map[string]string), a.Labels) {
		t.Errorf("created %v", created)
	}
	if got := ComponentChanges(a, &Component{DisplayName: "Web", Labels: map[string]string{"r": "eu"}}); len(got) != 0 {
		t.Errorf("unchanged %v", got)
	}
	renamed := ComponentChanges(a, &Component{DisplayName: "API", Labels: a.Labels})
	if len(renamed) != 1 || renamed["displayName"] != (Change{"Web", "API"}) {
		t.Errorf("renamed %v", renamed)
	}
	relabelled := ComponentChanges(a, &Component{DisplayName: "Web", Labels: map[string]string{"r": "us"}})
	if len(relabelled) != 1 || relabelled["labels"].Before.(map[string]string)["r"] != "eu" || relabelled["labels"].After.(map[string]string)["r"] != "us" {
		t.Errorf("relabelled %v", relabelled)
	}
	if NameKey("ÉCLAIR Db") != "éclair db" {
		t.Errorf("NameKey %q", NameKey("ÉCLAIR Db"))
	}
}

// Rule: a key issued from the command line names a tenant of 1..64
// [A-Za-z0-9._-], a name of 1..100, at least one known scope, and an
// optional actor of 1..100.
func TestAPIKeyIssueValidate(t *testing.T) {
	tenant := FieldError{"tenant", "tenant must be 1 to 64 characters of a-z, A-Z, 0-9, '.', '_' or '-'"}
	cases := []struct {
		name string
		in   APIKeyIssue
		want []FieldError
	}{
		{"valid", APIKeyIssue{TenantID: "acme", Name: "ci", Scopes: []Scope{ScopeIncidentsRead}}, nil},
		{"tenant shapes", APIKeyIssue{TenantID: "A.b_c-9" + strings.Repeat("x", 57), Name: "ci", Scopes: KnownScopes, ActorID: "cli"}, nil},
		{"tenant empty", APIKeyIssue{TenantID: "", Name: "ci", Scopes: []Scope{ScopeRead}}, []FieldError{tenant}},
		{"tenant too long", APIKeyIssue{TenantID: strings.Repeat("x", 65), Name: "ci", Scopes: []Scope{ScopeRead}}, []FieldError{tenant}},
		{"tenant with a space", APIKeyIssue{TenantID: "a b", Name: "ci", Scopes: []Scope{ScopeRead}}, []FieldError{tenant}},
		{"name missing", APIKeyIssue{TenantID: "t", Scopes: []Scope{ScopeRead}}, []FieldError{{"name", "name must be between 1 and 100 characters"}}},
		{"name too long", APIKeyIssue{TenantID: "t", Name: text(101), Scopes: []Scope{ScopeRead}}, []FieldError{{"name", "name must be between 1 and 100 characters"}}},
		{"no scope", APIKeyIssue{TenantID: "t", Name: "n"}, []FieldError{{"scopes", "scopes must name at least one scope"}}},
		{"unknown scopes", APIKeyIssue{TenantID: "t", Name: "n", Scopes: []Scope{"admin", ScopeRead, "Read"}},
			[]FieldError{{"scopes", "unknown scope admin"}, {"scopes", "unknown scope Read"}}},
		{"actor blank", APIKeyIssue{TenantID: "t", Name: "n", Scopes: []Scope{ScopeRead}, ActorID: " "}, []FieldError{{"actor", "actor must not be blank"}}},
		{"actor too long", APIKeyIssue{TenantID: "t", Name: "n", Scopes: []Scope{ScopeRead}, ActorID: text(101)},
			[]FieldError{{"actor", "actor must be between 1 and 100 characters"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErrs(t, c.in.Validate(), c.want)
		})
	}
}

// Rule: a key made over the API has a name of 1..100, known scopes that its
// creator holds (implied scopes count), an optional tier of 1..64 and an
// expiry strictly in the future.
func TestAPIKeyCreateValidate(t *testing.T) {
	now := t0
	creator := &Principal{TenantID: "t", Scopes: []Scope{ScopeAPIKeysAdmin, ScopeIncidentsWrite}}
	cases := []struct {
		name    string
		in      APIKeyCreate
		creator *Principal
		want    []FieldError
	}{
		{"valid", APIKeyCreate{Name: "ci", Scopes: []Scope{ScopeIncidentsWrite}, Tier: "pro", ExpiresAt: ptr(now.Add(time.Nanosecond))}, creator, nil},
		{"implied scope", APIKeyCreate{Name: "ci", Scopes: []Scope{ScopeIncidentsRead, ScopeAPIKeysAdmin}}, creator, nil},
		{"no creator to check against", APIKeyCreate{Name: "ci", Scopes: []Scope{ScopeAuditRead}}, nil, nil},
		{"name missing", APIKeyCreate{Scopes: []Scope{ScopeIncidentsRead}}, creator, []FieldError{{"name", "name must be between 1 and 100 characters"}}},
		{"name too long", APIKeyCreate{Name: text(101), Scopes: []Scope{ScopeIncidentsRead}}, creator, []FieldError{{"name", "name must be between 1 and 100 characters"}}},
		{"name at limit", APIKeyCreate{Name: text(100), Scopes: []Scope{ScopeIncidentsRead}}, creator, nil},
		{"no scope", APIKeyCreate{Name: "ci"}, creator, []FieldError{{"scopes", "scopes must name at least one scope"}}},
		{"unknown and escalating scopes, by index", APIKeyCreate{Name: "ci", Scopes: []Scope{ScopeIncidentsRead, "root", ScopeComponentsRead, ScopeAuditRead}}, creator,
			[]FieldError{{"scopes[1]", "unknown scope root"},
				{"scopes[2]", "a key cannot carry components:read, which its creator lacks"},
				{"scopes[3]", "a key cannot carry audit:read, which its creator lacks"}}},
		{"tier at limit", APIKeyCreate{Name: "ci", Scopes: []Scope{ScopeIncidentsRead}, Tier: strings.Repeat("t", 64)}, creator, nil},
		{"tier too long", APIKeyCreate{Name: "ci", Scopes: []Scope{ScopeIncidentsRead}, Tier: strings.Repeat("t", 65)}, creator,
			[]FieldError{{"tier", "tier must be between 1 and 64 characters"}}},
		{"tier blank", APIKeyCreate{Name: "ci", Scopes: []Scope{ScopeIncidentsRead}, Tier: " "}, creator, []FieldError{{"tier", "tier must not be blank"}}},
		{"expires now", APIKeyCreate{Name: "ci", Scopes: []Scope{ScopeIncidentsRead}, ExpiresAt: ptr(now)}, creator,
			[]FieldError{{"expiresAt", "expiresAt must be in the future"}}},
		{"expired", APIKeyCreate{Name: "ci", Scopes: []Scope{ScopeIncidentsRead}, ExpiresAt: ptr(now.Add(-time.Hour))}, creator,
			[]FieldError{{"expiresAt", "expiresAt must be in the future"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErrs(t, c.in.Validate(c.creator, now), c.want)
		})
	}
}

// Rule: keys are ik_ + 12 of [a-z0-9] + _ + 32 of [A-Za-z0-9]; the prefix is
// the first 15 characters; the hash is SHA-256 of the whole key.
func TestAPIKeyShape(t *testing.T) {
	key, prefix, hash := NewAPIKeySecret()
	if len(key) != 3+12+1+32 || len(prefix) != 15 || !apiKeyPattern.MatchString(key) || len(hash) != 32 {
		t.Fatalf("key %q prefix %q hash %d bytes", key, prefix, len(hash))
	}
	good := "ik_abcdefghij09_" + strings.Repeat("aZ9", 10) + "xY"
	if p, ok := ParseAPIKey(good); !ok || p != "ik_abcdefghij09" {
		t.Errorf("ParseAPIKey(%q) = %q %v", good, p, ok)
	}
	if p, ok := ParseAPIKey("ik_ABCDEFGHIJ09_" + strings.Repeat("a", 32)); ok || p != "" {
		t.Errorf("upper-case prefix accepted: %q", p)
	}
	// The SHA-256 of "abc".
	if got := fmt.Sprintf("%x", HashAPIKey("abc")); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("hash %s", got)
	}
	k2, p2, _ := NewAPIKeySecret()
	if k2 == key || p2 == prefix {
		t.Error("two keys alike")
	}
}
