package model

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Helpers shared by the table tests of this package.

// wantErrs fails unless got lists exactly want, in order (nil and empty are
// the same: "no violation").
func wantErrs(t *testing.T, got, want []FieldError) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("violations\n got %q\nwant %q", got, want)
	}
}

// wantInvalid fails unless err is an invalid error with this message and
// exactly these details.
func wantInvalid(t *testing.T, err error, message string, details []FieldError) {
	t.Helper()
	if len(details) == 0 {
		if err != nil {
			t.Errorf("unexpected error %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %q", details)
	}
	e := AsError(err)
	if e.Code != CodeInvalid || e.Message != message {
		t.Errorf("error %v, want invalid %q", err, message)
	}
	wantErrs(t, e.Details, details)
}

// text returns n runes of a two-byte character, so that limits are checked
// to count characters, not bytes.
func text(n int) string { return strings.Repeat("é", n) }

func ptr[T any](v T) *T { return &v }

// items returns n distinct strings.
func items(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("x%d", i)
	}
	return out
}

// Rule: checkText refuses NUL, blank required text, and text outside 1..max
// characters (0..max when optional), counting runes, with the exact messages.
func TestCheckText(t *testing.T) {
	cases := []struct {
		name     string
		s        string
		required bool
		want     []FieldError
	}{
		{"empty required", "", true, []FieldError{{"f", "f must be between 1 and 5 characters"}}},
		{"empty optional", "", false, nil},
		{"blank required", "  \t", true, []FieldError{{"f", "f must not be blank"}}},
		{"blank optional", "   ", false, nil},
		{"one character required", "a", true, nil},
		{"at the limit, in runes", text(5), true, nil},
		{"over the limit required", text(6), true, []FieldError{{"f", "f must be between 1 and 5 characters"}}},
		{"over the limit optional", text(6), false, []FieldError{{"f", "f must be at most 5 characters"}}},
		{"NUL", "a\x00b", false, []FieldError{{"f", "f must not contain NUL characters"}}},
		{"NUL wins over length", text(9) + "\x00", true, []FieldError{{"f", "f must not contain NUL characters"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErrs(t, checkText("f", c.s, 5, c.required), c.want)
		})
	}
}

// Rule: stored times lie in years 0001..9999 (both ends inclusive, any zone).
func TestCheckTime(t *testing.T) {
	cases := []struct {
		t  time.Time
		ok bool
	}{
		{minTime, true},
		{maxTime, true},
		{maxTime.Add(time.Microsecond), false},
		{minTime.Add(-time.Nanosecond), false},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), false},
		// 9999-12-31T23:00 at -02:00 is year 10000 in UTC.
		{time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -2*3600)), false},
		{t0, true},
	}
	for _, c := range cases {
		var want []FieldError
		if !c.ok {
			want = []FieldError{{"at", "at must be between years 0001 and 9999"}}
		}
		wantErrs(t, checkTime("at", c.t), want)
	}
}

func validCreate() IncidentCreate {
	return IncidentCreate{
		Title:       "Database down",
		Description: ptr("details"),
		Severity:    SeverityHigh,
		Status:      StatusInvestigating,
		Service:     ptr("api"),
		Tags:        []string{"db", "prod"},
		OccurredAt:  t0,
		Phase:       &PhaseRef{Generation: 1, Order: 0},
		Affects:     []AffectInput{{ComponentID: "cmp_a", TypeID: "imp_minor"}, {ComponentID: "cmp_b", TypeID: "imp_custom", Severity: ptr(40)}},
	}
}

// Rule: the incidents contract's incident fields (title 1..200 not blank, description
// <= 5000, severity required and known, status optional and known, service
// not blank and <= 100, <= 32 tags of 1..64, occurredAt required in range),
// the status-page model's phase ref and affects.
func TestIncidentCreateValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*IncidentCreate)
		want   []FieldError
	}{
		{"valid", func(*IncidentCreate) {}, nil},
		{"minimal", func(in *IncidentCreate) { *in = IncidentCreate{Title: "t", Severity: SeverityLow, OccurredAt: t0} }, nil},
		{"title at limit", func(in *IncidentCreate) { in.Title = text(200) }, nil},
		{"title too long", func(in *IncidentCreate) { in.Title = text(201) }, []FieldError{{"title", "title must be between 1 and 200 characters"}}},
		{"title missing", func(in *IncidentCreate) { in.Title = "" }, []FieldError{{"title", "title must be between 1 and 200 characters"}}},
		{"title blank", func(in *IncidentCreate) { in.Title = " " }, []FieldError{{"title", "title must not be blank"}}},
		{"description at limit", func(in *IncidentCreate) { in.Description = ptr(text(5000)) }, nil},
		{"description empty", func(in *IncidentCreate) { in.Description = ptr("") }, nil},
		{"description too long", func(in *IncidentCreate) { in.Description = ptr(text(5001)) }, []FieldError{{"description", "description must be at most 5000 characters"}}},
		{"severity missing", func(in *IncidentCreate) { in.Severity = "" }, []FieldError{{"severity", "severity is required"}}},
		{"severity unknown", func(in *IncidentCreate) { in.Severity = "severe" }, []FieldError{{"severity", "severity must be one of: critical, high, medium, low"}}},
		{"severity in upper case", func(in *IncidentCreate) { in.Severity = "HIGH" }, []FieldError{{"severity", "severity must be one of: critical, high, medium, low"}}},
		{"status left out", func(in *IncidentCreate) { in.Status = "" }, nil},
		{"status unknown", func(in *IncidentCreate) { in.Status = "done" }, []FieldError{{"status", "status must be one of: open, investigating, resolved, closed"}}},
		{"service blank", func(in *IncidentCreate) { in.Service = ptr("  ") }, []FieldError{{"service", "service must not be blank (send null to leave it unset)"}}},
		{"service empty", func(in *IncidentCreate) { in.Service = ptr("") }, []FieldError{{"service", "service must not be blank (send null to leave it unset)"}}},
		{"service at limit", func(in *IncidentCreate) { in.Service = ptr(text(100)) }, nil},
		{"service too long", func(in *IncidentCreate) { in.Service = ptr(text(101)) }, []FieldError{{"service", "service must be at most 100 characters"}}},
		{"32 tags", func(in *IncidentCreate) { in.Tags = items(32) }, nil},
		{"33 tags", func(in *IncidentCreate) { in.Tags = items(33) }, []FieldError{{"tags", "tags must have at most 32 items"}}},
		{"blank tag", func(in *IncidentCreate) { in.Tags = []string{"ok", " "} }, []FieldError{{"tags[1]", "tags[1] must not be blank"}}},
		{"empty tag", func(in *IncidentCreate) { in.Tags = []string{""} }, []FieldError{{"tags[0]", "tags[0] must not be blank"}}},
		{"tag at limit", func(in *IncidentCreate) { in.Tags = []string{text(64)} }, nil},
		{"tag too long", func(in *IncidentCreate) { in.Tags = []string{text(65)} }, []FieldError{{"tags[0]", "tags[0] must be between 1 and 64 characters"}}},
		{"occurredAt missing", func(in *IncidentCreate) { in.OccurredAt = time.Time{} }, []FieldError{{"occurredAt", "occurredAt is required"}}},
		{"occurredAt out of range", func(in *IncidentCreate) { in.OccurredAt = maxTime.Add(time.Microsecond) },
			[]FieldError{{"occurredAt", "occurredAt must be between years 0001 and 9999"}}},
		{"phase left out", func(in *IncidentCreate) { in.Phase = nil }, nil},
		{"phase out of range", func(in *IncidentCreate) { in.Phase = &PhaseRef{Generation: 0, Order: -1} }, []FieldError{
			{"phase.generation", "phase.generation must be between 1 and 2147483647"},
			{"phase.order", "phase.order must be between 0 and 2147483647"}}},
		{"bad affect", func(in *IncidentCreate) { in.Affects = []AffectInput{{TypeID: "imp_minor"}} },
			[]FieldError{{"affects[0].reference", "affects[0].reference (a component id) is required"}}},
		{"everything wrong lists everything, in field order", func(in *IncidentCreate) {
			*in = IncidentCreate{Description: ptr(text(5001)), Status: "x", Service: ptr(""), Tags: []string{""}}
		}, []FieldError{
			{"title", "title must be between 1 and 200 characters"},
			{"description", "description must be at most 5000 characters"},
			{"severity", "severity is required"},
			{"status", "status must be one of: open, investigating, resolved, closed"},
			{"service", "service must not be blank (send null to leave it unset)"},
			{"tags[0]", "tags[0] must not be blank"},
			{"occurredAt", "occurredAt is required"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := validCreate()
			c.change(&in)
			wantErrs(t, in.Validate(), c.want)
		})
	}
}

// Rule: a phase ref has generation 1..MaxGeneration and order 0..MaxGeneration
// (the columns are 32-bit).
func TestCheckPhaseRef(t *testing.T) {
	gen := FieldError{"phase.generation", "phase.generation must be between 1 and 2147483647"}
	ord := FieldError{"phase.order", "phase.order must be between 0 and 2147483647"}
	if MaxGeneration != 2147483647 {
		t.Fatalf("MaxGeneration %d, want the largest int32", MaxGeneration)
	}
	cases := []struct {
		ref  PhaseRef
		want []FieldError
	}{
		{PhaseRef{1, 0}, nil},
		{PhaseRef{MaxGeneration, MaxGeneration}, nil},
		{PhaseRef{0, 0}, []FieldError{gen}},
		{PhaseRef{-1, 0}, []FieldError{gen}},
		{PhaseRef{MaxGeneration + 1, 0}, []FieldError{gen}},
		{PhaseRef{1, -1}, []FieldError{ord}},
		{PhaseRef{1, MaxGeneration + 1}, []FieldError{ord}},
		{PhaseRef{0, -1}, []FieldError{gen, ord}},
	}
	for _, c := range cases {
		wantErrs(t, checkPhaseRef(c.ref), c.want)
	}
}

// Rule: affects are at most 1000, each with a component id (not repeated)
// and a type id of at most 64 characters, a severity of 0..100 that may be
// left out only for a built-in type.
func TestCheckAffects(t *testing.T) {
	a := func(ref, typ string, sev *int) AffectInput {
		return AffectInput{ComponentID: ref, TypeID: typ, Severity: sev}
	}
	many := func(n int) []AffectInput {
		out := make([]AffectInput, n)
		for i := range out {
			out[i] = a(fmt.Sprintf("cmp_%d", i), "imp_minor", nil)
		}
		return out
	}
	cases := []struct {
		name string
		in   []AffectInput
		want []FieldError
	}{
		{"none", nil, nil},
		{"built-in types without severity", []AffectInput{a("c1", "imp_maintenance", nil), a("c2", "imp_minor", nil),
			a("c3", "imp_major", nil), a("c4", "imp_outage", nil)}, nil},
		{"custom type with severity", []AffectInput{a("c1", "imp_abc", ptr(0)), a("c2", "imp_abc", ptr(100))}, nil},
		{"1000 items", many(1000), nil},
		{"1001 items: one violation only", many(1001), []FieldError{{"affects", "affects must have at most 1000 items"}}},
		{"missing reference", []AffectInput{a("", "imp_minor", nil)},
			[]FieldError{{"affects[0].reference", "affects[0].reference (a component id) is required"}}},
		{"repeated reference names the first", []AffectInput{a("c1", "imp_minor", nil), a("c2", "imp_minor", nil), a("c1", "imp_major", nil)},
			[]FieldError{{"affects[2].reference", "affects[2].reference repeats affects[0]"}}},
		{"repeated twice", []AffectInput{a("c1", "imp_minor", nil), a("c1", "imp_minor", nil), a("c1", "imp_minor", nil)},
			[]FieldError{{"affects[1].reference", "affects[1].reference repeats affects[0]"},
				{"affects[2].reference", "affects[2].reference repeats affects[0]"}}},
		{"missing type", []AffectInput{a("c1", "", nil)},
			[]FieldError{{"affects[0].type", "affects[0].type (an impact type id) is required"}}},
		{"missing type with severity", []AffectInput{a("c1", "", ptr(10))},
			[]FieldError{{"affects[0].type", "affects[0].type (an impact type id) is required"}}},
		{"custom type without severity", []AffectInput{a("c1", "imp_abc", nil)},
			[]FieldError{{"affects[0].severity", "affects[0].severity is required for an impact type that is not built in"}}},
		{"severity below 0", []AffectInput{a("c1", "imp_minor", ptr(-1))},
			[]FieldError{{"affects[0].severity", "affects[0].severity must be an integer between 0 and 100"}}},
		{"severity above 100", []AffectInput{a("c1", "imp_abc", ptr(101))},
			[]FieldError{{"affects[0].severity", "affects[0].severity must be an integer between 0 and 100"}}},
		{"reference and type at 64", []AffectInput{a(strings.Repeat("c", 64), strings.Repeat("t", 64), ptr(1))}, nil},
		{"reference too long", []AffectInput{a(strings.Repeat("c", 65), "imp_minor", nil)},
			[]FieldError{{"affects[0].reference", "affects[0].reference must be at most 64 characters"}}},
		{"type too long", []AffectInput{a("c1", strings.Repeat("t", 65), ptr(1))},
			[]FieldError{{"affects[0].type", "affects[0].type must be at most 64 characters"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErrs(t, checkAffects(c.in), c.want)
		})
	}
}

// Rule: a patch checks only what it sets; null is refused where the field
// cannot be cleared (title, severity, status, tags, occurredAt, affects) and
// accepted where it can (description, service, resolvedAt, phase).
func TestIncidentPatchValidate(t *testing.T) {
	cases := []struct {
		name  string
		patch IncidentPatch
		want  []FieldError
	}{
		{"empty", IncidentPatch{}, nil},
		{"every field valid", IncidentPatch{Title: Some("t"), Description: Some(text(5000)), Severity: Some(SeverityLow),
			Status: Some(StatusClosed), Service: Some("api"), Tags: Some([]string{"a"}), OccurredAt: Some(t0),
			ResolvedAt: Some(t0), Phase: Some(PhaseRef{1, 0}), Affects: Some([]AffectInput{{ComponentID: "c", TypeID: "imp_minor"}})}, nil},
		{"clearable fields null", IncidentPatch{Description: Null[string](), Service: Null[string](), ResolvedAt: Null[time.Time](),
			Phase: Null[PhaseRef]()}, nil},
		{"clearing lists", IncidentPatch{Tags: Some([]string{}), Affects: Some([]AffectInput{})}, nil},
		{"title null", IncidentPatch{Title: Null[string]()}, []FieldError{{"title", "title cannot be null"}}},
		{"title blank", IncidentPatch{Title: Some(" ")}, []FieldError{{"title", "title must not be blank"}}},
		{"title too long", IncidentPatch{Title: Some(text(201))}, []FieldError{{"title", "title must be between 1 and 200 characters"}}},
		{"description too long", IncidentPatch{Description: Some(text(5001))}, []FieldError{{"description", "description must be at most 5000 characters"}}},
		{"severity null", IncidentPatch{Severity: Null[Severity]()}, []FieldError{{"severity", "severity cannot be null"}}},
		{"severity unknown", IncidentPatch{Severity: Some(Severity("x"))}, []FieldError{{"severity", "severity must be one of: critical, high, medium, low"}}},
		{"status null", IncidentPatch{Status: Null[Status]()}, []FieldError{{"status", "status cannot be null"}}},
		{"status unknown", IncidentPatch{Status: Some(Status(""))}, []FieldError{{"status", "status must be one of: open, investigating, resolved, closed"}}},
		{"service blank", IncidentPatch{Service: Some("")}, []FieldError{{"service", "service must not be blank (send null to leave it unset)"}}},
		{"service too long", IncidentPatch{Service: Some(text(101))}, []FieldError{{"service", "service must be at most 100 characters"}}},
		{"tags null", IncidentPatch{Tags: Null[[]string]()}, []FieldError{{"tags", "tags cannot be null (send [] to clear them)"}}},
		{"too many tags", IncidentPatch{Tags: Some(items(33))}, []FieldError{{"tags", "tags must have at most 32 items"}}},
		{"occurredAt null", IncidentPatch{OccurredAt: Null[time.Time]()}, []FieldError{{"occurredAt", "occurredAt cannot be null"}}},
		{"occurredAt out of range", IncidentPatch{OccurredAt: Some(minTime.Add(-time.Second))},
			[]FieldError{{"occurredAt", "occurredAt must be between years 0001 and 9999"}}},
		{"resolvedAt out of range", IncidentPatch{ResolvedAt: Some(maxTime.Add(time.Second))},
			[]FieldError{{"resolvedAt", "resolvedAt must be between years 0001 and 9999"}}},
		{"phase out of range", IncidentPatch{Phase: Some(PhaseRef{0, 0})},
			[]FieldError{{"phase.generation", "phase.generation must be between 1 and 2147483647"}}},
		{"affects null", IncidentPatch{Affects: Null[[]AffectInput]()}, []FieldError{{"affects", "affects cannot be null (send [] to clear them)"}}},
		{"bad affect", IncidentPatch{Affects: Some([]AffectInput{{ComponentID: "c"}})},
			[]FieldError{{"affects[0].type", "affects[0].type (an impact type id) is required"}}},
		{"every violation, in field order", IncidentPatch{Title: Null[string](), Description: Some(text(5001)), Severity: Null[Severity](),
			Status: Null[Status](), Service: Some(" "), Tags: Null[[]string](), OccurredAt: Null[time.Time](),
			ResolvedAt: Some(maxTime.Add(time.Second)), Phase: Some(PhaseRef{1, -1}), Affects: Null[[]AffectInput]()}, []FieldError{
			{"title", "title cannot be null"},
			{"description", "description must be at most 5000 characters"},
			{"severity", "severity cannot be null"},
			{"status", "status cannot be null"},
			{"service", "service must not be blank (send null to leave it unset)"},
			{"tags", "tags cannot be null (send [] to clear them)"},
			{"occurredAt", "occurredAt cannot be null"},
			{"resolvedAt", "resolvedAt must be between years 0001 and 9999"},
			{"phase.order", "phase.order must be between 0 and 2147483647"},
			{"affects", "affects cannot be null (send [] to clear them)"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErrs(t, c.patch.Validate(), c.want)
		})
	}
}

// Rule: a timeline entry has a display name of 1..200 (not blank) and a
// description of at most 5000 characters.
func TestUpdateInputValidate(t *testing.T) {
	cases := []struct {
		in   UpdateInput
		want []FieldError
	}{
		{UpdateInput{"Fixed", ""}, nil},
		{UpdateInput{text(200), text(5000)}, nil},
		{UpdateInput{"", ""}, []FieldError{{"displayName", "displayName must be between 1 and 200 characters"}}},
		{UpdateInput{" ", ""}, []FieldError{{"displayName", "displayName must not be blank"}}},
		{UpdateInput{text(201), text(5001)}, []FieldError{{"displayName", "displayName must be between 1 and 200 characters"},
			{"description", "description must be at most 5000 characters"}}},
	}
	for _, c := range cases {
		wantErrs(t, c.in.Validate(), c.want)
	}
}
