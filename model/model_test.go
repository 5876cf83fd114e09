package model

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 15, 14, 30, 0, 0, time.UTC)

func base() *Incident {
	return &Incident{ID: "inc_x", Title: "t", Severity: SeverityLow, Status: StatusOpen, Tags: []string{}, OccurredAt: t0,
		CreatedBy: "a", UpdatedBy: "a", CreatedAt: t0, UpdatedAt: t0}
}

func TestApplyPatchLifecycle(t *testing.T) {
	now := t0.Add(2 * time.Hour)
	later := t0.Add(time.Hour)
	before := t0.Add(-time.Second)
	resolved := base()
	resolved.Status, resolved.ResolvedAt = StatusResolved, &later
	cases := []struct {
		name     string
		cur      *Incident
		patch    IncidentPatch
		status   Status
		resolved *time.Time
		code     Code
	}{
		{"resolve stamps now", base(), IncidentPatch{Status: Some(StatusResolved)}, StatusResolved, &now, ""},
		{"close stamps now", base(), IncidentPatch{Status: Some(StatusClosed)}, StatusClosed, &now, ""},
		{"explicit wins", base(), IncidentPatch{Status: Some(StatusResolved), ResolvedAt: Some(later)}, StatusResolved, &later, ""},
		{"reopen clears", resolved, IncidentPatch{Status: Some(StatusOpen)}, StatusOpen, nil, ""},
		{"close keeps stamp", resolved, IncidentPatch{Status: Some(StatusClosed)}, StatusClosed, &later, ""},
		{"null clears", resolved, IncidentPatch{ResolvedAt: Null[time.Time]()}, StatusResolved, nil, ""},
		{"resolved before occurred", base(), IncidentPatch{ResolvedAt: Some(before)}, "", nil, CodeBusinessRule},
		{"moving occurredAt past resolvedAt", resolved, IncidentPatch{OccurredAt: Some(now)}, "", nil, CodeBusinessRule},
		{"bad status", base(), IncidentPatch{Status: Some(Status("x"))}, "", nil, CodeInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next, changed, err := ApplyPatch(c.cur, c.patch, "b", now)
			if c.code != "" {
				if ErrorCode(err) != c.code {
					t.Fatalf("err %v, want %s", err, c.code)
				}
				return
			}
			if err != nil || !changed {
				t.Fatalf("err %v changed %v", err, changed)
			}
			if next.Status != c.status || !eqTimePtr(next.ResolvedAt, c.resolved) || next.UpdatedBy != "b" || !next.UpdatedAt.Equal(now) {
				t.Errorf("got %s %v by %s", next.Status, next.ResolvedAt, next.UpdatedBy)
			}
			if c.cur.UpdatedBy != "a" {
				t.Error("ApplyPatch changed its input")
			}
		})
	}
	if _, changed, err := ApplyPatch(base(), IncidentPatch{Title: Some("t")}, "b", now); err != nil || changed {
		t.Errorf("a patch to the same value: changed %v, err %v", changed, err)
	}
}

func TestScopes(t *testing.T) {
	cases := []struct {
		held []Scope
		want Scope
		ok   bool
	}{
		{[]Scope{ScopeIncidentsRead}, ScopeIncidentsRead, true},
		{[]Scope{ScopeIncidentsRead}, ScopeIncidentsWrite, false},
		{[]Scope{ScopeIncidentsWrite}, ScopeIncidentsRead, true},
		{[]Scope{ScopeRead}, ScopeIncidentsRead, true},
		{[]Scope{ScopeRead}, ScopeIncidentsWrite, false},
		{[]Scope{ScopeWrite}, ScopeIncidentsWrite, true},
		{nil, ScopeIncidentsRead, false},
		{[]Scope{ScopeWrite}, ScopeAPIKeysAdmin, false},
		{[]Scope{ScopeRead}, ScopeAuditRead, false},
		{[]Scope{ScopeComponentsRead}, ScopeIncidentsRead, false},
		{[]Scope{ScopeComponentsWrite}, ScopeComponentsRead, true},
		{[]Scope{ScopeAPIKeysAdmin}, ScopeAPIKeysAdmin, true},
	}
	for _, c := range cases {
		p := &Principal{TenantID: "t", Scopes: c.held}
		if p.Has(c.want) != c.ok {
			t.Errorf("%v has %s: %v", c.held, c.want, !c.ok)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	svc := "api"
	for _, f := range SortFields {
		q := &IncidentQuery{Sort: Sort{Field: f, Desc: true}, Limit: 5, Filter: IncidentFilter{Service: &svc, Statuses: []Status{StatusOpen}}}
		inc := base()
		inc.Title = "héllo, \"world\""
		c, err := DecodeCursor(NewCursor(q, inc))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		q.After = c
		if err := q.Validate(); err != nil {
			t.Errorf("%s: own cursor rejected: %v", f, err)
		}
		other := *q
		other.Filter.Statuses = []Status{StatusClosed}
		if err := other.Validate(); ErrorCode(err) != CodeInvalid {
			t.Errorf("%s: cursor accepted for another filter", f)
		}
		tk, ik, sk := SortKey(inc, f)
		if !c.KeyTime.Equal(tk) || c.KeyInt != ik || c.KeyString != sk || c.ID != inc.ID {
			t.Errorf("%s: cursor key %+v", f, c)
		}
	}
}

func TestFilterKeyIsCanonical(t *testing.T) {
	a := IncidentFilter{Statuses: []Status{StatusClosed, StatusOpen, StatusOpen}, Keyword: "DB"}
	b := IncidentFilter{Statuses: []Status{StatusOpen, StatusClosed}, Keyword: "db"}
	if a.Key() != b.Key() {
		t.Errorf("%q != %q", a.Key(), b.Key())
	}
}

func TestAPIKeyFormat(t *testing.T) {
	key, prefix, hash := NewAPIKeySecret()
	got, ok := ParseAPIKey(key)
	if !ok || got != prefix || string(HashAPIKey(key)) != string(hash) || !strings.HasPrefix(key, prefix+"_") {
		t.Fatalf("key %s prefix %s", key, prefix)
	}
	for _, bad := range []string{"", key + "x", key[:len(key)-1], strings.ToUpper(key), "ik_" + strings.Repeat("a", 12)} {
		if _, ok := ParseAPIKey(bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	q := &IncidentQuery{Sort: DefaultSort, Limit: 5}
	f.Add(NewCursor(q, base()))
	f.Add("eyJ2IjoxfQ")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeCursor(s)
		if err != nil {
			if ErrorCode(err) != CodeInvalid {
				t.Fatalf("non-invalid error %v", err)
			}
			return
		}
		if c.ID == "" {
			t.Fatal("cursor without id accepted")
		}
	})
}
