package model

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// Rule (the monitoring contract, beyond TestDecideIngest): the incident's size may come
// from Size; the component's own incident is never its target; an incident
// without components is never a target, whatever its Size.
func TestDecideIngestEdges(t *testing.T) {
	cases := []struct {
		name   string
		open   []OpenIncident
		impact Impact
		want   IngestDecision
	}{
		{"Size says the incident has other components",
			[]OpenIncident{{ID: "a", Components: map[string]Impact{"c": ImpactMinor}, Size: 3}}, ImpactMajor,
			IngestDecision{Action: IngestMoveToNew, Source: "a"}},
		{"Size says the incident has other components, target exists",
			[]OpenIncident{{ID: "b", Components: map[string]Impact{"y": ImpactMajor}}, {ID: "a", Components: map[string]Impact{"c": ImpactMinor}, Size: 2}}, ImpactMajor,
			IngestDecision{Action: IngestMove, Source: "a", Target: "b"}},
		{"Size 1 is alone",
			[]OpenIncident{{ID: "a", Components: map[string]Impact{"c": ImpactMinor}, Size: 1}}, ImpactOutage,
			IngestDecision{Action: IngestRaise, Source: "a", Target: "a"}},
		{"own incident already at the impact is not a target",
			[]OpenIncident{{ID: "a", Components: map[string]Impact{"c": ImpactMinor, "d": ImpactMajor}}}, ImpactMajor,
			IngestDecision{Action: IngestMoveToNew, Source: "a"}},
		{"own incident found after others",
			[]OpenIncident{{ID: "b", Components: map[string]Impact{"y": ImpactMinor}}, {ID: "a", Components: map[string]Impact{"c": ImpactMajor}}}, ImpactMinor,
			IngestDecision{Action: IngestNoChange, Source: "a", Target: "a"}},
		{"a lower report is answered by the higher incident",
			[]OpenIncident{{ID: "a", Components: map[string]Impact{"c": ImpactMajor, "d": ImpactMajor}}, {ID: "b", Components: map[string]Impact{"y": ImpactMinor}}}, ImpactMinor,
			IngestDecision{Action: IngestNoChange, Source: "a", Target: "a"}},
		{"maintenance report joins a maintenance incident",
			[]OpenIncident{{ID: "m", Components: map[string]Impact{"y": ImpactMaintenance}}}, ImpactMaintenance,
			IngestDecision{Action: IngestAdd, Target: "m"}},
		{"maintenance report opens its own incident beside a minor one",
			[]OpenIncident{{ID: "a", Components: map[string]Impact{"y": ImpactMinor}}}, ImpactMaintenance,
			IngestDecision{Action: IngestCreate}},
		{"an incident's impact is its highest component's",
			[]OpenIncident{{ID: "a", Components: map[string]Impact{"x": ImpactMinor, "y": ImpactOutage}}}, ImpactMinor,
			IngestDecision{Action: IngestCreate}},
		{"an empty incident with a Size is no target",
			[]OpenIncident{{ID: "e", Components: map[string]Impact{}, Size: 2}}, ImpactMinor,
			IngestDecision{Action: IngestCreate}},
	}
	for _, c := range cases {
		if got := DecideIngest(c.open, "c", c.impact); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// Rule: an incident's (and a component's) impact is the highest of its
// parts, -1 when there are none.
func TestHighestImpact(t *testing.T) {
	for _, c := range []struct {
		levels []Impact
		want   Impact
	}{
		{nil, -1},
		{[]Impact{ImpactMaintenance}, ImpactMaintenance},
		{[]Impact{ImpactMinor, ImpactOutage, ImpactMajor}, ImpactOutage},
	} {
		o := OpenIncident{Components: map[string]Impact{}}
		var s ComponentState
		for i, l := range c.levels {
			o.Components[fmt.Sprint(i)] = l
			s.Incidents = append(s.Incidents, AffectingIncident{Impact: l})
		}
		if o.Impact() != c.want || s.Worst() != c.want {
			t.Errorf("%v: incident %d, component %d, want %d", c.levels, o.Impact(), s.Worst(), c.want)
		}
	}
	if (&OpenIncident{Components: map[string]Impact{"a": 1, "b": 1}}).size() != 2 || (&OpenIncident{Size: 5}).size() != 5 {
		t.Error("size")
	}
}

// Rule: names and numbers of levels parse, surrounding space and case
// ignored for names; anything else is refused.
func TestParseImpactEdges(t *testing.T) {
	for in, want := range map[string]Impact{" Outage ": ImpactOutage, "MAINTENANCE": ImpactMaintenance, "1": ImpactMinor, "2": ImpactMajor} {
		if got, ok := ParseImpact(in); !ok || got != want {
			t.Errorf("%q: %v %v", in, got, ok)
		}
	}
	for _, bad := range []string{"5", "-2", "1.0", "minor,", "critical"} {
		if got, ok := ParseImpact(bad); ok {
			t.Errorf("%q accepted as %v", bad, got)
		}
	}
}

// Rule: a report names a component (1..200, not blank), an impact 0..3, an
// optional title (1..200, not blank) and attributes checked as labels but
// reported as attributes.
func TestComponentReportValidate(t *testing.T) {
	impact := FieldError{"impact", "impact must be one of: maintenance, minor, major, outage (or 0..3)"}
	cases := []struct {
		name string
		r    ComponentReport
		want []FieldError
	}{
		{"valid", ComponentReport{Name: "Web", Impact: ImpactMinor, Text: "Slow", Attributes: map[string]string{"region": "eu"}}, nil},
		{"lowest impact", ComponentReport{Name: "Web", Impact: ImpactMaintenance}, nil},
		{"highest impact", ComponentReport{Name: "Web", Impact: ImpactOutage}, nil},
		{"impact below", ComponentReport{Name: "Web", Impact: -1}, []FieldError{impact}},
		{"impact above", ComponentReport{Name: "Web", Impact: 4}, []FieldError{impact}},
		{"name missing", ComponentReport{}, []FieldError{{"name", "name must be between 1 and 200 characters"}}},
		{"name at limit", ComponentReport{Name: text(200)}, nil},
		{"name too long", ComponentReport{Name: text(201)}, []FieldError{{"name", "name must be between 1 and 200 characters"}}},
		{"text blank", ComponentReport{Name: "Web", Text: " "}, []FieldError{{"text", "text must not be blank"}}},
		{"text at limit", ComponentReport{Name: "Web", Text: text(200)}, nil},
		{"text too long", ComponentReport{Name: "Web", Text: text(201)}, []FieldError{{"text", "text must be between 1 and 200 characters"}}},
		{"bad attribute key", ComponentReport{Name: "Web", Attributes: map[string]string{"-r": "eu"}},
			[]FieldError{{"attributes.-r", strings.Replace(labelKeyMessage, "label", "attribute", 1)}}},
		{"attribute value too long", ComponentReport{Name: "Web", Attributes: map[string]string{"r": text(257)}},
			[]FieldError{{"attributes.r", "attributes.r must be at most 256 characters"}}},
		{"too many attributes", ComponentReport{Name: "Web", Attributes: labels(33)},
			[]FieldError{{"attributes", "attributes must have at most 32 entries"}}},
		{"only the first label is renamed", ComponentReport{Name: "Web", Attributes: map[string]string{"labels": text(257)}},
			[]FieldError{{"attributes.labels", "attributes.labels must be at most 256 characters"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErrs(t, c.r.Validate(), c.want)
		})
	}
}

// Rule: monitoring's affect is the level's built-in type at its value; a
// left-out severity of a built-in type is its level's value; the level
// follows LevelOf; affects come back ordered by component.
func TestResolveAffects(t *testing.T) {
	if got := MonitoringAffect("c", ImpactMajor); got != (Affect{ComponentID: "c", Impact: ImpactMajor, TypeID: "imp_major", Severity: 75}) {
		t.Errorf("MonitoringAffect %+v", got)
	}
	got := ResolveAffects([]AffectInput{
		{ComponentID: "d", TypeID: "imp_maintenance"},
		{ComponentID: "b", TypeID: "imp_minor"},
		{ComponentID: "a", TypeID: "imp_custom", Severity: ptr(60)},
		{ComponentID: "c", TypeID: "imp_outage", Severity: ptr(10)},
		{ComponentID: "e", TypeID: "imp_outage"},
		{ComponentID: "f", TypeID: "imp_custom"},
	})
	want := []Affect{
		{ComponentID: "a", TypeID: "imp_custom", Severity: 60, Impact: ImpactMajor},
		{ComponentID: "b", TypeID: "imp_minor", Severity: 50, Impact: ImpactMinor},
		{ComponentID: "c", TypeID: "imp_outage", Severity: 10, Impact: ImpactMinor},
		{ComponentID: "d", TypeID: "imp_maintenance", Severity: 25, Impact: ImpactMaintenance},
		{ComponentID: "e", TypeID: "imp_outage", Severity: 100, Impact: ImpactOutage},
		{ComponentID: "f", TypeID: "imp_custom", Severity: 0, Impact: ImpactMinor},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if got := ResolveAffects(nil); got == nil || len(got) != 0 {
		t.Errorf("no affects: %#v", got)
	}
}

// Rule: replacing affects adds the new components, removes the missing ones
// and changes those whose type or severity moved (a level change alone is
// not a change: it follows from them).
func TestDiffAffects(t *testing.T) {
	af := func(id, typ string, sev int) Affect {
		return Affect{ComponentID: id, TypeID: typ, Severity: sev, Impact: LevelOf(typ, sev)}
	}
	cur := []Affect{af("a", "imp_minor", 50), af("b", "imp_minor", 50), af("c", "imp_custom", 60), af("d", "imp_major", 75)}
	next := []Affect{af("a", "imp_minor", 50), af("b", "imp_minor", 40), af("c", "imp_other", 60), af("e", "imp_outage", 100)}
	d := DiffAffects(cur, next)
	if !slices.Equal(d.Added, []Affect{af("e", "imp_outage", 100)}) ||
		!slices.Equal(d.Removed, []Affect{af("d", "imp_major", 75)}) ||
		!slices.Equal(d.Changed, []Affect{af("b", "imp_minor", 40), af("c", "imp_other", 60)}) {
		t.Errorf("diff %+v", d)
	}
	if d.Empty() {
		t.Error("diff reported empty")
	}
	if !slices.Equal(d.Components(), []string{"b", "c", "d", "e"}) {
		t.Errorf("components %v", d.Components())
	}
	same := DiffAffects(cur, slices.Clone(cur))
	if !same.Empty() || same.Components() != nil {
		t.Errorf("same affects: %+v", same)
	}
	if d := DiffAffects(nil, cur[:1]); !slices.Equal(d.Added, cur[:1]) || d.Removed != nil || d.Changed != nil {
		t.Errorf("from none: %+v", d)
	}
	if d := DiffAffects(cur[:1], nil); !slices.Equal(d.Removed, cur[:1]) || d.Added != nil || d.Changed != nil {
		t.Errorf("to none: %+v", d)
	}
	// Empty needs all three lists empty.
	for _, d := range []AffectsDiff{{Added: cur[:1]}, {Removed: cur[:1]}, {Changed: cur[:1]}} {
		if d.Empty() {
			t.Errorf("%+v reported empty", d)
		}
	}
	if !(AffectsDiff{}).Empty() {
		t.Error("zero diff not empty")
	}
	// Components is sorted and has no repeats.
	d = AffectsDiff{Added: []Affect{af("z", "t", 1)}, Removed: []Affect{af("a", "t", 1)}, Changed: []Affect{af("m", "t", 1), af("a", "t", 1)}}
	if !slices.Equal(d.Components(), []string{"a", "m", "z"}) {
		t.Errorf("components %v", d.Components())
	}
}

// Rule: the timeline entry of an affects change lists additions, changes,
// then removals, by display name (the id when there is none), within the
// description limit.
func TestAffectsUpdate(t *testing.T) {
	names := map[string]string{"a": "Web", "c": "DB"}
	name := func(id string) string { return names[id] }
	d := AffectsDiff{
		Added:   []Affect{{ComponentID: "a", TypeID: "imp_minor", Severity: 20}, {ComponentID: "b", TypeID: "imp_x", Severity: 0}},
		Changed: []Affect{{ComponentID: "x", TypeID: "imp_major", Severity: 75}},
		Removed: []Affect{{ComponentID: "c"}},
	}
	want := UpdateInput{DisplayName: "Affected components changed",
		Description: "added Web (imp_minor, severity 20); added b (imp_x, severity 0); x now imp_major, severity 75; removed DB"}
	if got := AffectsUpdate(d, name); got != want {
		t.Errorf("got %q", got)
	}

	var many AffectsDiff
	for i := range 400 {
		many.Removed = append(many.Removed, Affect{ComponentID: fmt.Sprintf("cmp_%012d", i)})
	}
	got := AffectsUpdate(many, name).Description
	if utf8.RuneCountInString(got) != MaxDescriptionLen || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "removed cmp_000000000000; removed") {
		t.Errorf("long description: %d runes, ends %q", utf8.RuneCountInString(got), got[len(got)-10:])
	}
}

// Rule: truncation keeps text of up to n runes and otherwise cuts to n-1
// runes plus an ellipsis.
func TestTruncateRunes(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""}, {"abc", 3, "abc"}, {"ééé", 3, "ééé"}, {"abcd", 3, "ab…"}, {"éééé", 3, "éé…"},
	} {
		if got := truncateRunes(c.s, c.n); got != c.want {
			t.Errorf("truncateRunes(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}

// Rule: the audit form of affects is reference/type/severity per item.
func TestAffectsChange(t *testing.T) {
	got := AffectsChange([]Affect{{ComponentID: "a", TypeID: "imp_minor", Severity: 50, Impact: ImpactMinor}, {ComponentID: "b", TypeID: "t", Severity: 0}})
	want := []map[string]any{{"reference": "a", "type": "imp_minor", "severity": 50}, {"reference": "b", "type": "t", "severity": 0}}
	if !slices.EqualFunc(got, want, func(a, b map[string]any) bool { return maps.Equal(a, b) }) {
		t.Errorf("got %v", got)
	}
	if got := AffectsChange(nil); got == nil || len(got) != 0 {
		t.Errorf("none: %#v", got)
	}
}
