package model

import (
	"slices"
	"testing"
	"time"
)

// Rule: severities rank critical 4 .. low 1 and statuses open 1 .. closed 4;
// anything else ranks 0 and is not valid; only resolved and closed are ended.
func TestRanks(t *testing.T) {
	sev := map[Severity]int{SeverityCritical: 4, SeverityHigh: 3, SeverityMedium: 2, SeverityLow: 1, "": 0, "CRITICAL": 0}
	for s, want := range sev {
		if got := s.Rank(); got != want {
			t.Errorf("%q.Rank() = %d, want %d", s, got, want)
		}
		if s.Valid() != (want > 0) {
			t.Errorf("%q.Valid() = %v", s, s.Valid())
		}
	}
	st := map[Status]int{StatusOpen: 1, StatusInvestigating: 2, StatusResolved: 3, StatusClosed: 4, "": 0, "Open": 0}
	for s, want := range st {
		if got := s.Rank(); got != want {
			t.Errorf("%q.Rank() = %d, want %d", s, got, want)
		}
		if s.Valid() != (want > 0) {
			t.Errorf("%q.Valid() = %v", s, s.Valid())
		}
	}
	ended := map[Status]bool{StatusOpen: false, StatusInvestigating: false, StatusResolved: true, StatusClosed: true, "": false}
	for s, want := range ended {
		if s.Ended() != want {
			t.Errorf("%q.Ended() = %v", s, !want)
		}
	}
	if !slices.Equal(Severities, []Severity{"critical", "high", "medium", "low"}) ||
		!slices.Equal(Statuses, []Status{"open", "investigating", "resolved", "closed"}) {
		t.Errorf("lists %v %v", Severities, Statuses)
	}
}

// Rule: NewIncident applies the defaults (status open, tags []), stamps
// resolvedAt when created ended, normalizes times to UTC microseconds, and
// refuses invalid input and a resolution before the occurrence.
func TestNewIncident(t *testing.T) {
	now := time.Date(2024, 2, 1, 10, 0, 0, 123456789, time.FixedZone("", 3600))
	nowN := time.Date(2024, 2, 1, 9, 0, 0, 123456000, time.UTC)
	occurred := time.Date(2024, 1, 31, 12, 0, 0, 999, time.FixedZone("", -3600))

	inc, err := NewIncident(IncidentCreate{Title: "t", Severity: SeverityLow, OccurredAt: occurred}, "inc_1", "acme", "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	want := Incident{ID: "inc_1", TenantID: "acme", Title: "t", Severity: SeverityLow, Status: StatusOpen, Tags: []string{},
		OccurredAt: time.Date(2024, 1, 31, 13, 0, 0, 0, time.UTC), CreatedAt: nowN, UpdatedAt: nowN, CreatedBy: "alice", UpdatedBy: "alice"}
	if inc.Tags == nil || !sameIncident(inc, &want) || inc.ID != want.ID || inc.TenantID != want.TenantID ||
		inc.CreatedAt != nowN || inc.UpdatedAt != nowN || inc.OccurredAt != want.OccurredAt || inc.CreatedBy != "alice" || inc.UpdatedBy != "alice" {
		t.Errorf("got %+v\nwant %+v", inc, want)
	}

	for _, st := range []Status{StatusResolved, StatusClosed} {
		inc, err := NewIncident(IncidentCreate{Title: "t", Severity: SeverityLow, Status: st, Tags: []string{"a"}, OccurredAt: occurred}, "i", "t", "a", now)
		if err != nil {
			t.Fatal(err)
		}
		if inc.Status != st || inc.ResolvedAt == nil || *inc.ResolvedAt != nowN || !slices.Equal(inc.Tags, []string{"a"}) {
			t.Errorf("%s: status %s resolvedAt %v tags %v", st, inc.Status, inc.ResolvedAt, inc.Tags)
		}
	}
	inc, err = NewIncident(IncidentCreate{Title: "t", Severity: SeverityLow, Status: StatusInvestigating, OccurredAt: occurred}, "i", "t", "a", now)
	if err != nil || inc.ResolvedAt != nil || inc.Status != StatusInvestigating {
		t.Errorf("investigating: %v %+v", err, inc)
	}

	_, err = NewIncident(IncidentCreate{Severity: SeverityLow, OccurredAt: occurred}, "i", "t", "a", now)
	wantInvalid(t, err, "Invalid request body", []FieldError{{"title", "title must be between 1 and 200 characters"}})

	// Created resolved, but occurring after now: resolvedAt (now) precedes it.
	_, err = NewIncident(IncidentCreate{Title: "t", Severity: SeverityLow, Status: StatusResolved, OccurredAt: now.Add(time.Hour)}, "i", "t", "a", now)
	e := AsError(err)
	if e.Code != CodeBusinessRule || e.Message != "an incident cannot be resolved before it occurred" ||
		!slices.Equal(e.Details, []FieldError{{"resolvedAt", "resolvedAt must not be before occurredAt"}}) {
		t.Errorf("resolved in the future: %v", err)
	}
	// Resolved at the very instant it occurred is fine.
	if _, err := NewIncident(IncidentCreate{Title: "t", Severity: SeverityLow, Status: StatusResolved, OccurredAt: nowN}, "i", "t", "a", now); err != nil {
		t.Errorf("resolved when it occurred: %v", err)
	}
}

// Rule: ApplyPatch sets exactly the fields sent (null clears the clearable
// ones), copies instead of sharing the tags, and leaves cur untouched.
func TestApplyPatchFields(t *testing.T) {
	now := t0.Add(time.Hour)
	later := t0.Add(30 * time.Minute)
	cur := base()
	cur.Description, cur.Service, cur.Phase, cur.Tags = ptr("d"), ptr("api"), &PhaseRef{1, 1}, []string{"x"}

	p := IncidentPatch{Title: Some("new"), Description: Some("d2"), Severity: Some(SeverityCritical), Service: Some("web"),
		Tags: Some([]string{"a", "b"}), OccurredAt: Some(t0.Add(-time.Hour)), Phase: Some(PhaseRef{2, 0})}
	next, changed, err := ApplyPatch(cur, p, "bob", now)
	if err != nil || !changed {
		t.Fatalf("err %v changed %v", err, changed)
	}
	if next.Title != "new" || *next.Description != "d2" || next.Severity != SeverityCritical || *next.Service != "web" ||
		!slices.Equal(next.Tags, []string{"a", "b"}) || !next.OccurredAt.Equal(t0.Add(-time.Hour)) || *next.Phase != (PhaseRef{2, 0}) ||
		next.Status != StatusOpen || next.ResolvedAt != nil || next.UpdatedBy != "bob" || !next.UpdatedAt.Equal(now) || next.CreatedBy != "a" {
		t.Errorf("patched %+v", next)
	}
	if cur.Title != "t" || *cur.Description != "d" || !slices.Equal(cur.Tags, []string{"x"}) || *cur.Phase != (PhaseRef{1, 1}) {
		t.Errorf("cur changed: %+v", cur)
	}
	next.Tags[0] = "z"
	if cur.Tags[0] != "x" {
		t.Error("next shares cur's tags")
	}

	next, changed, err = ApplyPatch(cur, IncidentPatch{Description: Null[string](), Service: Null[string](), Phase: Null[PhaseRef]()}, "bob", now)
	if err != nil || !changed || next.Description != nil || next.Service != nil || next.Phase != nil {
		t.Errorf("nulls: %v %v %+v", err, changed, next)
	}

	// An explicit resolvedAt on an open incident is kept (explicit wins).
	next, changed, err = ApplyPatch(cur, IncidentPatch{ResolvedAt: Some(later)}, "bob", now)
	if err != nil || !changed || next.ResolvedAt == nil || !next.ResolvedAt.Equal(later) || next.Status != StatusOpen {
		t.Errorf("explicit resolvedAt: %v %v %+v", err, changed, next)
	}

	// Investigating to open: neither is ended, resolvedAt stays nil.
	inv := base()
	inv.Status = StatusInvestigating
	next, _, err = ApplyPatch(inv, IncidentPatch{Status: Some(StatusOpen)}, "bob", now)
	if err != nil || next.ResolvedAt != nil || next.Status != StatusOpen {
		t.Errorf("investigating to open: %v %+v", err, next)
	}

	// A patch that sets every field to its current value changes nothing.
	same := IncidentPatch{Title: Some(cur.Title), Description: Some("d"), Severity: Some(cur.Severity), Status: Some(cur.Status),
		Service: Some("api"), Tags: Some([]string{"x"}), OccurredAt: Some(cur.OccurredAt), Phase: Some(PhaseRef{1, 1}), ResolvedAt: Null[time.Time]()}
	next, changed, err = ApplyPatch(cur, same, "bob", now)
	if err != nil || changed || next != cur {
		t.Errorf("no-op patch: %v %v", err, changed)
	}
	// Each single field that differs is a change.
	for name, p := range map[string]IncidentPatch{
		"title": {Title: Some("u")}, "description": {Description: Null[string]()}, "severity": {Severity: Some(SeverityHigh)},
		"status": {Status: Some(StatusInvestigating)}, "service": {Service: Some("other")}, "tags": {Tags: Some([]string{})},
		"occurredAt": {OccurredAt: Some(t0.Add(-time.Minute))}, "resolvedAt": {ResolvedAt: Some(later)},
		"phase": {Phase: Some(PhaseRef{1, 2})},
	} {
		if _, changed, err := ApplyPatch(cur, p, "bob", now); err != nil || !changed {
			t.Errorf("%s: changed %v err %v", name, changed, err)
		}
	}
}

// Rule: pointer equality helpers compare values, and nil only equals nil.
func TestEqPtr(t *testing.T) {
	one, one2, two := 1, 1, 2
	cases := []struct {
		a, b *int
		want bool
	}{
		{nil, nil, true}, {nil, &one, false}, {&one, nil, false}, {&one, &one2, true}, {&one, &two, false},
	}
	for _, c := range cases {
		if eqPtr(c.a, c.b) != c.want {
			t.Errorf("eqPtr(%v, %v) = %v", c.a, c.b, !c.want)
		}
	}
	a, b := t0, t0.In(time.FixedZone("", 3600))
	c := t0.Add(time.Nanosecond)
	tcases := []struct {
		a, b *time.Time
		want bool
	}{
		{nil, nil, true}, {nil, &a, false}, {&a, nil, false}, {&a, &b, true}, {&a, &c, false},
	}
	for _, tc := range tcases {
		if eqTimePtr(tc.a, tc.b) != tc.want {
			t.Errorf("eqTimePtr(%v, %v) = %v", tc.a, tc.b, !tc.want)
		}
	}
}

// Rule: the timeline records status, severity and phase changes, in that
// order, naming phases when a name is known.
func TestAutoUpdates(t *testing.T) {
	names := func(r PhaseRef) string {
		if r == (PhaseRef{1, 1}) {
			return "Fixing"
		}
		return ""
	}
	cur := base()
	next := base()
	if got := AutoUpdates(cur, next, names); got != nil {
		t.Errorf("no change: %v", got)
	}
	next.Status, next.Severity, next.Phase = StatusResolved, SeverityHigh, &PhaseRef{1, 1}
	next.Title = "other" // not recorded by itself
	want := []UpdateInput{
		{"Status changed", "from open to resolved"},
		{"Severity changed", "from low to high"},
		{"Phase changed", `from none to "Fixing" (generation 1, order 1)`},
	}
	if got := AutoUpdates(cur, next, names); !slices.Equal(got, want) {
		t.Errorf("got %q", got)
	}
	cur.Phase = &PhaseRef{1, 1}
	next = base()
	next.Phase = &PhaseRef{2, 0}
	want = []UpdateInput{{"Phase changed", `from "Fixing" (generation 1, order 1) to generation 2, order 0`}}
	if got := AutoUpdates(cur, next, names); !slices.Equal(got, want) {
		t.Errorf("got %q", got)
	}
	want = []UpdateInput{{"Phase changed", "from generation 1, order 1 to generation 2, order 0"}}
	if got := AutoUpdates(cur, next, nil); !slices.Equal(got, want) {
		t.Errorf("without names: %q", got)
	}
	next.Phase = &PhaseRef{1, 1}
	if got := AutoUpdates(cur, next, nil); got != nil {
		t.Errorf("equal phases in different pointers: %q", got)
	}
}

// Rule: a maintenance window is active from its start (inclusive) to its end
// (exclusive).
func TestMaintenanceActive(t *testing.T) {
	m := &Maintenance{StartsAt: t0, EndsAt: t0.Add(time.Hour)}
	for at, want := range map[time.Time]bool{
		t0.Add(-time.Nanosecond): false, t0: true, t0.Add(30 * time.Minute): true,
		t0.Add(time.Hour - time.Nanosecond): true, t0.Add(time.Hour): false,
	} {
		if m.Active(at) != want {
			t.Errorf("Active(%v) = %v", at, !want)
		}
	}
}

// Rule: a window needs a description (1..5000, not blank), a start and an
// end in range with the end strictly after the start, and 1..1000 components.
func TestMaintenanceInputValidate(t *testing.T) {
	valid := func() MaintenanceInput {
		return MaintenanceInput{Description: "upgrade", StartsAt: t0, EndsAt: t0.Add(time.Hour), ComponentIDs: []string{"cmp_a"}}
	}
	comps := FieldError{"components", "components must list 1 to 1000 component ids"}
	cases := []struct {
		name   string
		change func(*MaintenanceInput)
		want   []FieldError
	}{
		{"valid", func(*MaintenanceInput) {}, nil},
		{"description at limit", func(in *MaintenanceInput) { in.Description = text(5000) }, nil},
		{"description missing", func(in *MaintenanceInput) { in.Description = "" },
			[]FieldError{{"description", "description must be between 1 and 5000 characters"}}},
		{"description blank", func(in *MaintenanceInput) { in.Description = "  " }, []FieldError{{"description", "description must not be blank"}}},
		{"description too long", func(in *MaintenanceInput) { in.Description = text(5001) },
			[]FieldError{{"description", "description must be between 1 and 5000 characters"}}},
		{"start missing", func(in *MaintenanceInput) { in.StartsAt = time.Time{} }, []FieldError{{"startsAt", "startsAt is required"}}},
		{"end missing", func(in *MaintenanceInput) { in.EndsAt = time.Time{} }, []FieldError{{"endsAt", "endsAt is required"}}},
		{"both missing", func(in *MaintenanceInput) { in.StartsAt, in.EndsAt = time.Time{}, time.Time{} },
			[]FieldError{{"startsAt", "startsAt is required"}, {"endsAt", "endsAt is required"}}},
		{"start out of range", func(in *MaintenanceInput) { in.StartsAt = minTime.Add(-time.Hour) },
			[]FieldError{{"startsAt", "startsAt must be between years 0001 and 9999"}}},
		{"end out of range", func(in *MaintenanceInput) { in.EndsAt = maxTime.Add(time.Hour) },
			[]FieldError{{"endsAt", "endsAt must be between years 0001 and 9999"}}},
		{"end equals start", func(in *MaintenanceInput) { in.EndsAt = in.StartsAt }, []FieldError{{"endsAt", "endsAt must be after startsAt"}}},
		{"end before start", func(in *MaintenanceInput) { in.EndsAt = in.StartsAt.Add(-time.Nanosecond) },
			[]FieldError{{"endsAt", "endsAt must be after startsAt"}}},
		{"end just after start", func(in *MaintenanceInput) { in.EndsAt = in.StartsAt.Add(time.Nanosecond) }, nil},
		{"no components", func(in *MaintenanceInput) { in.ComponentIDs = nil }, []FieldError{comps}},
		{"1000 components", func(in *MaintenanceInput) { in.ComponentIDs = items(1000) }, nil},
		{"1001 components", func(in *MaintenanceInput) { in.ComponentIDs = items(1001) }, []FieldError{comps}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := valid()
			c.change(&in)
			wantErrs(t, in.Validate(), c.want)
		})
	}
}
