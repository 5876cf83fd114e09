package model

import (
	"context"
	"slices"
	"testing"
)

// Rule: each monitoring level has its built-in type id, its value (25, 50,
// 75, 100) and its incidents-contract severity; out-of-range levels print as numbers.
func TestImpactLevels(t *testing.T) {
	cases := []struct {
		i        Impact
		name, id string
		value    int
		sev      Severity
	}{
		{ImpactMaintenance, "maintenance", "imp_maintenance", 25, SeverityLow},
		{ImpactMinor, "minor", "imp_minor", 50, SeverityMedium},
		{ImpactMajor, "major", "imp_major", 75, SeverityHigh},
		{ImpactOutage, "outage", "imp_outage", 100, SeverityCritical},
	}
	for _, c := range cases {
		if c.i.String() != c.name || c.i.TypeID() != c.id || c.i.Value() != c.value || c.i.Severity() != c.sev {
			t.Errorf("%d: %s %s %d %s", c.i, c.i.String(), c.i.TypeID(), c.i.Value(), c.i.Severity())
		}
	}
	for i, want := range map[Impact]string{-1: "-1", 4: "4", 10: "10"} {
		if i.String() != want {
			t.Errorf("Impact(%d).String() = %q", int(i), i.String())
		}
	}
}

// Rule: an affect's level is maintenance for the maintenance type whatever
// its severity; any other type is minor up to 50, major up to 75, outage above.
func TestLevelOf(t *testing.T) {
	cases := []struct {
		typeID string
		sev    int
		want   Impact
	}{
		{"imp_maintenance", 0, ImpactMaintenance},
		{"imp_maintenance", 100, ImpactMaintenance},
		{"imp_minor", 0, ImpactMinor},
		{"imp_custom", 50, ImpactMinor},
		{"imp_custom", 51, ImpactMajor},
		{"imp_minor", 75, ImpactMajor},
		{"imp_custom", 76, ImpactOutage},
		{"imp_outage", 100, ImpactOutage},
		{"imp_outage", 10, ImpactMinor},
	}
	for _, c := range cases {
		if got := LevelOf(c.typeID, c.sev); got != c.want {
			t.Errorf("LevelOf(%s, %d) = %s, want %s", c.typeID, c.sev, got, c.want)
		}
	}
}

// Rule: the four built-in types and severities, mildest first, all marked
// built in; lookups by id and by case-insensitive name; copies, not the
// package's own slices.
func TestBuiltIns(t *testing.T) {
	types := BuiltInImpactTypes()
	var ids []string
	for i, ty := range types {
		ids = append(ids, ty.ID)
		if !ty.BuiltIn || ty.Level != Impact(i) || ty.DisplayName == "" || ty.Description == "" {
			t.Errorf("type %+v", ty)
		}
	}
	if !slices.Equal(ids, []string{"imp_maintenance", "imp_minor", "imp_major", "imp_outage"}) {
		t.Errorf("ids %v", ids)
	}
	types[0].ID = "changed"
	if BuiltInImpactTypes()[0].ID != "imp_maintenance" {
		t.Error("BuiltInImpactTypes shares its slice")
	}
	if ty, ok := BuiltInImpactType("imp_major"); !ok || ty.Level != ImpactMajor || ty.DisplayName != "Major" || !ty.BuiltIn {
		t.Errorf("imp_major: %+v %v", ty, ok)
	}
	for _, id := range []string{"", "imp_MAJOR", "major", "imp_custom"} {
		if ty, ok := BuiltInImpactType(id); ok || ty.ID != "" {
			t.Errorf("%q found: %+v", id, ty)
		}
	}

	sevs := BuiltInSeverities()
	want := []SeverityLevel{{DisplayName: "Low", Value: 25, BuiltIn: true, Severity: SeverityLow},
		{DisplayName: "Medium", Value: 50, BuiltIn: true, Severity: SeverityMedium},
		{DisplayName: "High", Value: 75, BuiltIn: true, Severity: SeverityHigh},
		{DisplayName: "Critical", Value: 100, BuiltIn: true, Severity: SeverityCritical}}
	if !slices.Equal(sevs, want) {
		t.Errorf("severities %+v", sevs)
	}
	if s, ok := BuiltInSeverity("hIGH"); !ok || s != want[2] {
		t.Errorf("hIGH: %+v %v", s, ok)
	}
	if s, ok := BuiltInSeverity("Severe"); ok || s != (SeverityLevel{}) {
		t.Errorf("Severe found: %+v", s)
	}
}

// Rule: a severity value names the level with the smallest value at or
// above it; above every level there is no name.
func TestSeverityNameFor(t *testing.T) {
	levels := BuiltInSeverities()
	levels = slices.Insert(levels, 1, SeverityLevel{DisplayName: "Degraded", Value: 40})
	for v, want := range map[int]string{0: "Low", 25: "Low", 26: "Degraded", 40: "Degraded", 41: "Medium", 50: "Medium",
		51: "High", 75: "High", 76: "Critical", 100: "Critical", 101: ""} {
		if got := SeverityNameFor(levels, v); got != want {
			t.Errorf("SeverityNameFor(%d) = %q, want %q", v, got, want)
		}
	}
	if got := SeverityNameFor(nil, 10); got != "" {
		t.Errorf("no levels: %q", got)
	}
}

// Rule: impact types need a display name of 1..100 on create, never null;
// the description is at most 1000 characters and never null.
func TestImpactTypeInputValidate(t *testing.T) {
	cases := []struct {
		name   string
		in     ImpactTypeInput
		create bool
		want   []FieldError
	}{
		{"create", ImpactTypeInput{DisplayName: Some("Slow"), Description: Some(text(1000))}, true, nil},
		{"create without name", ImpactTypeInput{Description: Some("d")}, true, []FieldError{{"displayName", "displayName is required"}}},
		{"empty patch", ImpactTypeInput{}, false, nil},
		{"name null", ImpactTypeInput{DisplayName: Null[string]()}, false, []FieldError{{"displayName", "displayName cannot be null"}}},
		{"name at limit", ImpactTypeInput{DisplayName: Some(text(100))}, false, nil},
		{"name too long", ImpactTypeInput{DisplayName: Some(text(101))}, true, []FieldError{{"displayName", "displayName must be between 1 and 100 characters"}}},
		{"name blank", ImpactTypeInput{DisplayName: Some(" ")}, false, []FieldError{{"displayName", "displayName must not be blank"}}},
		{"description cleared", ImpactTypeInput{Description: Some("")}, false, nil},
		{"description null", ImpactTypeInput{Description: Null[string]()}, false,
			[]FieldError{{"description", `description cannot be null (send "" to clear it)`}}},
		{"description too long", ImpactTypeInput{Description: Some(text(1001))}, false,
			[]FieldError{{"description", "description must be at most 1000 characters"}}},
		{"both wrong", ImpactTypeInput{DisplayName: Null[string](), Description: Null[string]()}, true,
			[]FieldError{{"displayName", "displayName cannot be null"}, {"description", `description cannot be null (send "" to clear it)`}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErrs(t, c.in.Validate(c.create), c.want)
		})
	}
}

// Rule: severities need a display name and a value of 0..100 on create;
// neither may be null.
func TestSeverityInputValidate(t *testing.T) {
	value := FieldError{"value", "value must be an integer between 0 and 100"}
	cases := []struct {
		name   string
		in     SeverityInput
		create bool
		want   []FieldError
	}{
		{"create", SeverityInput{DisplayName: Some("Degraded"), Value: Some(40)}, true, nil},
		{"value 0", SeverityInput{Value: Some(0)}, false, nil},
		{"value 100", SeverityInput{Value: Some(100)}, false, nil},
		{"value -1", SeverityInput{Value: Some(-1)}, false, []FieldError{value}},
		{"value 101", SeverityInput{Value: Some(101)}, false, []FieldError{value}},
		{"value null", SeverityInput{Value: Null[int]()}, false, []FieldError{{"value", "value cannot be null"}}},
		{"empty patch", SeverityInput{}, false, nil},
		{"empty create", SeverityInput{}, true, []FieldError{{"displayName", "displayName is required"}, {"value", "value is required"}}},
		{"create without value", SeverityInput{DisplayName: Some("x")}, true, []FieldError{{"value", "value is required"}}},
		{"name too long", SeverityInput{DisplayName: Some(text(101)), Value: Some(1)}, true,
			[]FieldError{{"displayName", "displayName must be between 1 and 100 characters"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErrs(t, c.in.Validate(c.create), c.want)
		})
	}
}

// Rule: a phase list has 1..32 names of 1..100 characters, not blank, none
// repeated case-insensitively (a repeat names the first occurrence).
func TestValidatePhases(t *testing.T) {
	count := FieldError{"phases", "phases must have between 1 and 32 names"}
	cases := []struct {
		name  string
		names []string
		want  []FieldError
	}{
		{"one", []string{"Investigating"}, nil},
		{"32", items(32), nil},
		{"none", nil, []FieldError{count}},
		{"33", items(33), []FieldError{count}},
		{"name at limit", []string{text(100)}, nil},
		{"name too long", []string{"a", text(101)}, []FieldError{{"phases[1]", "phases[1] must be between 1 and 100 characters"}}},
		{"empty name", []string{""}, []FieldError{{"phases[0]", "phases[0] must be between 1 and 100 characters"}}},
		{"blank name", []string{" "}, []FieldError{{"phases[0]", "phases[0] must not be blank"}}},
		{"repeats", []string{"Fix", "Check", "FIX", "fix"}, []FieldError{{"phases[2]", "phases[2] repeats phases[0]"},
			{"phases[3]", "phases[3] repeats phases[0]"}}},
		{"a bad name is not remembered", []string{" ", " "}, []FieldError{{"phases[0]", "phases[0] must not be blank"},
			{"phases[1]", "phases[1] must not be blank"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErrs(t, ValidatePhases(c.names), c.want)
		})
	}
}

// Rule: a phase ref names a phase only within its own generation and the
// list's bounds (order counts from 0).
func TestPhaseListName(t *testing.T) {
	l := &PhaseList{Generation: 2, Phases: []string{"Investigating", "Fixing", "Monitoring"}}
	cases := []struct {
		ref  PhaseRef
		want string
	}{
		{PhaseRef{2, 0}, "Investigating"},
		{PhaseRef{2, 2}, "Monitoring"},
		{PhaseRef{2, 3}, ""},
		{PhaseRef{2, -1}, ""},
		{PhaseRef{1, 0}, ""},
		{PhaseRef{3, 0}, ""},
	}
	for _, c := range cases {
		if got := l.Name(c.ref); got != c.want {
			t.Errorf("Name(%v) = %q, want %q", c.ref, got, c.want)
		}
	}
	var none *PhaseList
	if got := none.Name(PhaseRef{0, 0}); got != "" {
		t.Errorf("nil list: %q", got)
	}
	if got := (&PhaseList{}).Name(PhaseRef{0, 0}); got != "" {
		t.Errorf("generation 0: %q", got)
	}
}

// Rule: phases render as "none", by position, or by name and position.
func TestDescribePhase(t *testing.T) {
	named := func(PhaseRef) string { return "Fixing" }
	unnamed := func(PhaseRef) string { return "" }
	r := &PhaseRef{3, 1}
	for _, c := range []struct {
		ref  *PhaseRef
		name func(PhaseRef) string
		want string
	}{
		{nil, named, "none"},
		{r, nil, "generation 3, order 1"},
		{r, unnamed, "generation 3, order 1"},
		{r, named, `"Fixing" (generation 3, order 1)`},
	} {
		if got := describePhase(c.ref, c.name); got != c.want {
			t.Errorf("describePhase(%v) = %q, want %q", c.ref, got, c.want)
		}
	}
}

// Rule: the catalogue is read with incidents:read or components:read (or
// what implies them); no credential is unauthorized, other scopes forbidden.
func TestAuthorizeCatalogueRead(t *testing.T) {
	ctx := func(scopes ...Scope) context.Context {
		return WithPrincipal(context.Background(), &Principal{TenantID: "t", Scopes: scopes})
	}
	for _, c := range []struct {
		name string
		ctx  context.Context
		code Code
	}{
		{"incidents:read", ctx(ScopeIncidentsRead), ""},
		{"components:read", ctx(ScopeComponentsRead), ""},
		{"components:write", ctx(ScopeComponentsWrite), ""},
		{"read", ctx(ScopeRead), ""},
		{"admin only", ctx(ScopeAPIKeysAdmin, ScopeAuditRead), CodeForbidden},
		{"no principal", context.Background(), CodeUnauthorized},
		{"no tenant", WithPrincipal(context.Background(), &Principal{Scopes: []Scope{ScopeRead}}), CodeUnauthorized},
	} {
		p, err := AuthorizeCatalogueRead(c.ctx)
		switch {
		case c.code == "" && (err != nil || p != PrincipalFrom(c.ctx)):
			t.Errorf("%s: %v %v", c.name, p, err)
		case c.code != "" && (p != nil || ErrorCode(err) != c.code):
			t.Errorf("%s: %v %v, want %s", c.name, p, err, c.code)
		case c.code == CodeForbidden && AsError(err).Message != "this credential lacks the scope incidents:read or components:read":
			t.Errorf("%s: message %q", c.name, AsError(err).Message)
		case c.code == CodeUnauthorized && AsError(err).Message != "Invalid or missing API key":
			t.Errorf("%s: message %q", c.name, AsError(err).Message)
		}
	}
}
