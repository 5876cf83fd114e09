package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Rule: positions order by transaction id first, then by sequence.
func TestPositionCompare(t *testing.T) {
	for _, c := range []struct {
		p, q Position
		want int
	}{
		{Position{0, 1}, Position{0, 1}, 0},
		{Position{0, 1}, Position{0, 2}, -1},
		{Position{0, 2}, Position{0, 1}, 1},
		{Position{1, 9}, Position{2, 1}, -1},
		{Position{2, 1}, Position{1, 9}, 1},
		{Position{-1, 0}, Position{0, 0}, -1},
		{Position{5, 5}, Position{5, 5}, 0},
	} {
		if got := c.p.Compare(c.q); got != c.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", c.p, c.q, got, c.want)
		}
	}
}

// Rule: an event passes a filter when the incident after or before the
// change matches it; members are any-of, empty members do not filter, and
// a service filter needs the incident to have that service.
func TestEventFilterMatch(t *testing.T) {
	inc := func(sv Severity, st Status, svc *string) *Incident {
		return &Incident{Severity: sv, Status: st, Service: svc}
	}
	open := inc(SeverityHigh, StatusOpen, ptr("api"))
	investigating := inc(SeverityHigh, StatusInvestigating, ptr("api"))
	cases := []struct {
		name string
		f    EventFilter
		e    Event
		want bool
	}{
		{"empty filter", EventFilter{}, Event{Incident: open}, true},
		{"nothing to match", EventFilter{}, Event{}, false},
		{"severity any of", EventFilter{Severities: []Severity{SeverityLow, SeverityHigh}}, Event{Incident: open}, true},
		{"severity none of", EventFilter{Severities: []Severity{SeverityLow}}, Event{Incident: open}, false},
		{"status any of", EventFilter{Statuses: []Status{StatusOpen}}, Event{Incident: open}, true},
		{"status none of", EventFilter{Statuses: []Status{StatusClosed}}, Event{Incident: open}, false},
		{"service", EventFilter{Services: []string{"web", "api"}}, Event{Incident: open}, true},
		{"other service", EventFilter{Services: []string{"web"}}, Event{Incident: open}, false},
		{"no service", EventFilter{Services: []string{"api"}}, Event{Incident: inc(SeverityHigh, StatusOpen, nil)}, false},
		{"all members match", EventFilter{Severities: []Severity{SeverityHigh}, Statuses: []Status{StatusOpen}, Services: []string{"api"}}, Event{Incident: open}, true},
		{"one member fails", EventFilter{Severities: []Severity{SeverityHigh}, Statuses: []Status{StatusOpen}, Services: []string{"web"}}, Event{Incident: open}, false},
		{"leaving the state: before matches, after not", EventFilter{Statuses: []Status{StatusOpen}}, Event{Incident: investigating, Before: open}, true},
		{"entering the state: after matches, before not", EventFilter{Statuses: []Status{StatusInvestigating}}, Event{Incident: investigating, Before: open}, true},
		{"neither matches", EventFilter{Statuses: []Status{StatusClosed}}, Event{Incident: investigating, Before: open}, false},
		{"creation not matching", EventFilter{Statuses: []Status{StatusOpen}}, Event{Incident: investigating}, false},
		{"only before", EventFilter{Statuses: []Status{StatusOpen}}, Event{Before: open}, true},
	}
	for _, c := range cases {
		if got := c.f.Match(&c.e); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
}

// Rule: a subscription filter lists each kind of violation once.
func TestEventFilterValidate(t *testing.T) {
	sev := FieldError{"severity", "severity must be one of: critical, high, medium, low"}
	st := FieldError{"status", "status must be one of: open, investigating, resolved, closed"}
	cases := []struct {
		f    EventFilter
		want []FieldError
	}{
		{EventFilter{}, nil},
		{EventFilter{Severities: Severities, Statuses: Statuses, Services: []string{"api", text(100)}}, nil},
		{EventFilter{Severities: []Severity{"x", "y"}}, []FieldError{sev}},
		{EventFilter{Statuses: []Status{"x", StatusOpen, "y"}}, []FieldError{st}},
		{EventFilter{Severities: []Severity{"x"}, Statuses: []Status{"y"}, Services: []string{" ", text(101)}},
			[]FieldError{sev, st, {"services", "services must not be blank"}, {"services", "services must be between 1 and 100 characters"}}},
		{EventFilter{Services: []string{"", ""}}, []FieldError{{"services", "services must be between 1 and 100 characters"}}},
	}
	for _, c := range cases {
		wantErrs(t, c.f.Validate(), c.want)
	}
}

// Rule: the audit query takes a known action, limit 1..100, resource id and
// actor of at most 100 characters, and a cursor of at most 64 characters.
func TestAuditQueryValidate(t *testing.T) {
	action := FieldError{"action", "action must be one of: " + strings.Join(AuditActions, ", ")}
	limit := FieldError{"limit", "limit must be between 1 and 100"}
	cases := []struct {
		name string
		q    AuditQuery
		want []FieldError
	}{
		{"defaults", AuditQuery{Limit: 20}, nil},
		{"limit 1", AuditQuery{Limit: 1}, nil},
		{"limit 100", AuditQuery{Limit: 100, ResourceID: text(100), ActorID: text(100), After: strings.Repeat("c", 64)}, nil},
		{"limit 0", AuditQuery{}, []FieldError{limit}},
		{"limit 101", AuditQuery{Limit: 101}, []FieldError{limit}},
		{"limit -1", AuditQuery{Limit: -1}, []FieldError{limit}},
		{"unknown action", AuditQuery{Limit: 1, Action: "incident.drop"}, []FieldError{action}},
		{"resource too long", AuditQuery{Limit: 1, ResourceID: text(101)}, []FieldError{{"resourceId", "resourceId must be at most 100 characters"}}},
		{"actor too long", AuditQuery{Limit: 1, ActorID: text(101)}, []FieldError{{"actor", "actor must be at most 100 characters"}}},
		{"cursor too long", AuditQuery{Limit: 1, After: strings.Repeat("c", 65)}, []FieldError{BadAuditCursor}},
		{"everything", AuditQuery{Action: "x", ResourceID: "\x00", ActorID: "\x00", After: strings.Repeat("c", 65)}, []FieldError{
			action, limit, {"resourceId", "resourceId must not contain NUL characters"}, {"actor", "actor must not contain NUL characters"}, BadAuditCursor}},
	}
	for _, a := range AuditActions {
		cases = append(cases, struct {
			name string
			q    AuditQuery
			want []FieldError
		}{a, AuditQuery{Limit: 1, Action: a}, nil})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantInvalid(t, c.q.Validate(), "Invalid query parameters", c.want)
		})
	}
	if BadAuditCursor != (FieldError{"cursor", "cursor is invalid: pass pagination.nextCursor unchanged"}) {
		t.Errorf("BadAuditCursor %v", BadAuditCursor)
	}
}

// Rule: the trail records the actions the OpenAPI document enumerates for
// GET /v1/audit-events, each once.
func TestAuditActions(t *testing.T) {
	want := []string{"incident.create", "incident.update", "incident.delete", "apikey.create", "apikey.revoke", "apikey.rotate",
		"component.create", "component.update", "component.delete", "maintenance.create", "maintenance.delete", "status.publication",
		"impact_type.create", "impact_type.update", "impact_type.delete", "severity.create", "severity.update", "severity.delete", "phases.replace", "tenant.settings",
		"webhook.create", "webhook.update", "webhook.delete", "webhook.rotate", "webhook.test", "webhook.redeliver"}
	if !slices.Equal(AuditActions, want) {
		t.Errorf("actions %v", AuditActions)
	}
}

// Rule: the audit changes of an incident list exactly the fields that
// differ; on creation "before" is null and unset fields are left out.
func TestIncidentChanges(t *testing.T) {
	resolved := t0.Add(time.Hour)
	after := &Incident{Title: "t", Description: ptr("d"), Severity: SeverityHigh, Status: StatusResolved, Service: ptr("api"),
		Tags: []string{"a"}, OccurredAt: t0, ResolvedAt: &resolved, Phase: &PhaseRef{1, 2}}
	created := IncidentChanges(nil, after)
	want := map[string]Change{
		"title": {nil, "t"}, "description": {nil, "d"}, "severity": {nil, "high"}, "status": {nil, "resolved"}, "service": {nil, "api"},
		"occurredAt": {nil, "2024-01-15T14:30:00Z"}, "resolvedAt": {nil, "2024-01-15T15:30:00Z"},
	}
	if len(created) != len(want)+2 {
		t.Errorf("created %v", created)
	}
	for k, v := range want {
		if created[k] != v {
			t.Errorf("created %s: %#v, want %#v", k, created[k], v)
		}
	}
	if c := created["tags"]; c.Before != nil || !slices.Equal(c.After.([]string), []string{"a"}) {
		t.Errorf("created tags %#v", c)
	}
	if c := created["phase"]; c.Before != nil || fmt.Sprint(c.After) != "map[generation:1 order:2]" {
		t.Errorf("created phase %#v", c)
	}

	bare := IncidentChanges(nil, &Incident{Title: "t", Severity: SeverityLow, Status: StatusOpen, Tags: []string{}, OccurredAt: t0})
	if len(bare) != 4 || bare["title"] != (Change{nil, "t"}) || bare["occurredAt"] != (Change{nil, "2024-01-15T14:30:00Z"}) {
		t.Errorf("bare creation %v", bare)
	}

	if got := IncidentChanges(after, after); len(got) != 0 {
		t.Errorf("no change %v", got)
	}
	next := *after
	next.Title, next.Description, next.Service, next.Tags, next.ResolvedAt, next.Phase, next.IsDeleted = "u", nil, nil, []string{"b"}, nil, nil, true
	next.OccurredAt = t0.In(time.FixedZone("", 3600)) // the same instant
	got := IncidentChanges(after, &next)
	want = map[string]Change{
		"title": {"t", "u"}, "description": {"d", nil}, "service": {"api", nil}, "resolvedAt": {"2024-01-15T15:30:00Z", nil},
		"isDeleted": {false, true},
	}
	if len(got) != len(want)+2 {
		t.Errorf("update %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("update %s: %#v, want %#v", k, got[k], v)
		}
	}
	if c := got["tags"]; !slices.Equal(c.Before.([]string), []string{"a"}) || !slices.Equal(c.After.([]string), []string{"b"}) {
		t.Errorf("tags %#v", c)
	}
	if c := got["phase"]; fmt.Sprint(c.Before) != "map[generation:1 order:2]" || c.After != nil {
		t.Errorf("phase %#v", c)
	}
}

// Rule: Authorize needs a principal with a tenant and the scope (or one
// implying it), with the documented messages.
func TestAuthorize(t *testing.T) {
	bg := context.Background()
	if _, err := Authorize(bg, ScopeIncidentsRead); ErrorCode(err) != CodeUnauthorized || AsError(err).Message != "Invalid or missing API key" {
		t.Errorf("no principal: %v", err)
	}
	if _, err := Authorize(WithPrincipal(bg, nil), ScopeIncidentsRead); ErrorCode(err) != CodeUnauthorized {
		t.Errorf("nil principal: %v", err)
	}
	if _, err := Authorize(WithPrincipal(bg, &Principal{Scopes: []Scope{ScopeWrite}}), ScopeIncidentsRead); ErrorCode(err) != CodeUnauthorized {
		t.Errorf("no tenant: %v", err)
	}
	p := &Principal{TenantID: "acme", ActorID: "alice", Scopes: []Scope{ScopeIncidentsWrite}}
	ctx := WithPrincipal(bg, p)
	if got, err := Authorize(ctx, ScopeIncidentsRead); err != nil || got != p {
		t.Errorf("implied scope: %v %v", got, err)
	}
	got, err := Authorize(ctx, ScopeComponentsRead)
	if got != nil || ErrorCode(err) != CodeForbidden || AsError(err).Message != "this credential lacks the scope components:read" {
		t.Errorf("missing scope: %v %v", got, err)
	}
	if PrincipalFrom(bg) != nil || PrincipalFrom(ctx) != p {
		t.Error("PrincipalFrom")
	}
	if p.Budget() != "p:acme|alice" {
		t.Errorf("budget %q", p.Budget())
	}
}

// Rule: scope implication: write implies every non-admin scope, read every
// non-admin read scope, x:write implies x:read only.
func TestImpliedScopes(t *testing.T) {
	for _, c := range []struct {
		held, want Scope
		ok         bool
	}{
		{ScopeWrite, ScopeRead, true},
		{ScopeWrite, ScopeComponentsWrite, true},
		{ScopeWrite, ScopeComponentsRead, true},
		{ScopeWrite, ScopeAuditRead, false},
		{ScopeRead, ScopeComponentsRead, true},
		{ScopeRead, ScopeWrite, false},
		{ScopeRead, ScopeComponentsWrite, false},
		{ScopeRead, ScopeAPIKeysAdmin, false},
		{ScopeIncidentsWrite, ScopeComponentsRead, false},
		{ScopeIncidentsWrite, ScopeRead, false},
		{ScopeComponentsWrite, ScopeIncidentsRead, false},
		{ScopeAuditRead, ScopeIncidentsRead, false},
		{ScopeAPIKeysAdmin, ScopeAuditRead, false},
	} {
		if implies(c.held, c.want) != c.ok {
			t.Errorf("%s implies %s: %v", c.held, c.want, !c.ok)
		}
	}
	for _, s := range KnownScopes {
		if !ValidScope(s) {
			t.Errorf("%s invalid", s)
		}
	}
	for _, s := range []Scope{"", "admin", "incidents:delete", "READ"} {
		if ValidScope(s) {
			t.Errorf("%q valid", s)
		}
	}
}

// Rule: the request id travels in the context; none is "".
func TestRequestID(t *testing.T) {
	if RequestIDFrom(context.Background()) != "" || RequestIDFrom(WithRequestID(context.Background(), "req-1")) != "req-1" {
		t.Error("request id")
	}
}

// Rule: random strings have exactly n characters, all drawn from the
// alphabet, every character of which can occur; ids are prefix_ + n of
// [a-z0-9].
func TestRandomString(t *testing.T) {
	if RandomString(0, idAlphabet) != "" || RandomString(1, "x") != "x" || RandomString(3, "x") != "xxx" {
		t.Error("degenerate alphabets")
	}
	s := RandomString(3000, idAlphabet)
	if len(s) != 3000 {
		t.Fatalf("length %d", len(s))
	}
	for _, r := range idAlphabet {
		if !strings.ContainsRune(s, r) {
			// Each character misses 3000 draws with probability (35/36)^3000 < 1e-36.
			t.Errorf("%q never drawn", r)
		}
	}
	if strings.Trim(s, idAlphabet) != "" {
		t.Errorf("characters outside the alphabet in %q", s)
	}
	s = RandomString(1, "ab")
	if s != "a" && s != "b" {
		t.Errorf("one of two: %q", s)
	}
	id := NewID("inc", 12)
	if !regexp.MustCompile(`^inc_[a-z0-9]{12}$`).MatchString(id) {
		t.Errorf("id %q", id)
	}
	before := time.Now()
	now := SystemClock{}.Now()
	if now.Before(before) || now.After(time.Now()) {
		t.Errorf("SystemClock %v", now)
	}
}

// Rule: every code has its wire name; errors print code, message and cause;
// foreign errors become internal ones.
func TestErrors(t *testing.T) {
	for code, want := range map[Code]string{CodeInvalid: "ValidationError", CodeNotFound: "NotFound", CodeConflict: "Conflict",
		CodeUnauthorized: "Unauthorized", CodeForbidden: "Forbidden", CodeRateLimited: "RateLimitExceeded",
		CodeBusinessRule: "BusinessRuleViolation", CodeUnavailable: "ServiceUnavailable", CodeInternal: "InternalError", "other": "InternalError"} {
		if code.WireName() != want {
			t.Errorf("%s: %s", code, code.WireName())
		}
	}
	nf := NotFound("incident", "inc_1")
	if nf.Error() != "not_found: incident with id 'inc_1' not found" || nf.Unwrap() != nil {
		t.Errorf("%q", nf.Error())
	}
	in := Internal(io.EOF, "reading")
	if in.Error() != "internal: internal error: reading: EOF" || !errors.Is(in, io.EOF) || in.Message != "internal error" {
		t.Errorf("%q", in.Error())
	}
	for _, c := range []struct {
		e    *Error
		code Code
		msg  string
	}{
		{Conflict("taken"), CodeConflict, "taken"},
		{Unauthorized("who"), CodeUnauthorized, "who"},
		{Forbidden("no"), CodeForbidden, "no"},
		{BusinessRule("rule", FieldError{"f", "m"}), CodeBusinessRule, "rule"},
		{Invalid("bad", FieldError{"f", "m"}), CodeInvalid, "bad"},
	} {
		if c.e.Code != c.code || c.e.Message != c.msg || c.e.Error() != string(c.code)+": "+c.msg {
			t.Errorf("%+v", c.e)
		}
	}
	if d := BusinessRule("rule", FieldError{"f", "m"}).Details; !slices.Equal(d, []FieldError{{"f", "m"}}) {
		t.Errorf("details %v", d)
	}
	wrapped := fmt.Errorf("ctx: %w", nf)
	if AsError(wrapped) != nf || ErrorCode(wrapped) != CodeNotFound {
		t.Error("wrapped domain error lost")
	}
	foreign := errors.New("boom")
	if e := AsError(foreign); e.Code != CodeInternal || e.Message != "internal error" || e.Err != foreign {
		t.Errorf("foreign %+v", e)
	}
}
