package rest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/rest"
)

var rw = []model.Scope{model.ScopeIncidentsRead, model.ScopeIncidentsWrite}

type incident struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description *string  `json:"description"`
	Severity    string   `json:"severity"`
	Status      string   `json:"status"`
	Service     *string  `json:"service"`
	Tags        []string `json:"tags"`
	OccurredAt  string   `json:"occurredAt"`
	ResolvedAt  *string  `json:"resolvedAt"`
	CreatedAt   string   `json:"createdAt"`
	UpdatedAt   string   `json:"updatedAt"`
	CreatedBy   string   `json:"createdBy"`
	UpdatedBy   string   `json:"updatedBy"`
	IsDeleted   bool     `json:"isDeleted"`
}

type list struct {
	Data       []incident `json:"data"`
	Pagination struct {
		TotalCount int     `json:"totalCount"`
		Limit      int     `json:"limit"`
		Offset     int     `json:"offset"`
		HasMore    bool    `json:"hasMore"`
		NextCursor *string `json:"nextCursor"`
	} `json:"pagination"`
}

type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
	Details   []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"details"`
}

func create(t *testing.T, s *apitest.Server, key string, body map[string]any) incident {
	t.Helper()
	res := s.Do("POST", "/v1/incidents", key, body)
	if res.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	var inc incident
	res.JSON(t, &inc)
	return inc
}

func wantProblem(t *testing.T, res *apitest.Response, status int, name string) problem {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d: %s", res.Status, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("content type %q", ct)
	}
	var p problem
	res.Refusal(t, &p)
	if p.Error != name || p.Status != status || p.Message == "" || p.RequestID == "" || p.RequestID != res.Header.Get("X-Request-Id") {
		t.Errorf("problem %+v, want error %s", p, name)
	}
	return p
}

func TestCreateGet(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("acme")
		key := s.Key(tenant, rw...)
		inc := create(t, s, key, map[string]any{
			"title": "Database connection timeout in production", "severity": "high",
			"occurredAt": "2024-01-15T16:30:00+02:00", "service": "user-service",
		})
		if !regexp.MustCompile(`^inc_[a-z0-9]{12}$`).MatchString(inc.ID) {
			t.Errorf("id %q", inc.ID)
		}
		if inc.Status != "open" || inc.Tags == nil || len(inc.Tags) != 0 || inc.OccurredAt != "2024-01-15T14:30:00Z" ||
			inc.CreatedBy != "user_"+tenant || inc.UpdatedBy != inc.CreatedBy || inc.IsDeleted || inc.ResolvedAt != nil || inc.Description != nil {
			t.Errorf("defaults: %+v", inc)
		}
		res := s.Do("GET", "/v1/incidents/"+inc.ID, key, nil)
		var got incident
		res.JSON(t, &got)
		if res.Status != 200 || got.ID != inc.ID || *got.Service != "user-service" || got.CreatedAt != inc.CreatedAt {
			t.Errorf("get: %d %+v", res.Status, got)
		}
		for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
			if _, err := strconv.ParseInt(res.Header.Get(h), 10, 64); err != nil {
				t.Errorf("header %s %q: not an integer", h, res.Header.Get(h))
			}
		}
		if !strings.HasPrefix(res.Header.Get("X-Request-Id"), "req_") {
			t.Errorf("X-Request-Id %q", res.Header.Get("X-Request-Id"))
		}
		wantProblem(t, s.Do("GET", "/v1/incidents/inc_000000000000", key, nil), 404, "NotFound")
		// the same routes under /api/v1
		res = s.Do("GET", "/api/v1/incidents/"+inc.ID, key, nil)
		if res.Status != 200 {
			t.Errorf("/api/v1: %d", res.Status)
		}
		res = s.Do("POST", "/api/v1/incidents", key, map[string]any{"title": "x", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
		if res.Status != 201 || !strings.HasPrefix(res.Header.Get("Location"), "/api/v1/incidents/inc_") {
			t.Errorf("/api/v1 create: %d %s", res.Status, res.Header.Get("Location"))
		}
	})
}

func TestCreateValidation(t *testing.T) {
	valid := func() map[string]any {
		return map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}
	}
	with := func(k string, v any) map[string]any { m := valid(); m[k] = v; return m }
	without := func(k string) map[string]any { m := valid(); delete(m, k); return m }
	cases := []struct {
		name  string
		body  any
		field string
		msg   string
	}{
		{"missing title", without("title"), "title", "title must be between 1 and 200 characters"},
		{"empty title", with("title", ""), "title", "title must be between 1 and 200 characters"},
		{"blank title", with("title", "   "), "title", "title must not be blank"},
		{"long title", with("title", strings.Repeat("é", 201)), "title", "title must be between 1 and 200 characters"},
		{"null title", with("title", nil), "title", "title cannot be null"},
		{"title type", with("title", 5), "title", "title must be a string"},
		{"NUL in title", with("title", "a\x00b"), "title", "title must not contain NUL characters"},
		{"long description", with("description", strings.Repeat("d", 5001)), "description", "description must be at most 5000 characters"},
		{"missing severity", without("severity"), "severity", "severity is required"},
		{"bad severity", with("severity", "urgent"), "severity", "severity must be one of: critical, high, medium, low"},
		{"severity case", with("severity", "HIGH"), "severity", "severity must be one of: critical, high, medium, low"},
		{"bad status", with("status", "done"), "status", "status must be one of: open, investigating, resolved, closed"},
		{"missing occurredAt", without("occurredAt"), "occurredAt", "occurredAt is required"},
		{"bad occurredAt", with("occurredAt", "2024-01-15"), "occurredAt", "occurredAt must be an RFC 3339 date-time, e.g. 2024-01-15T14:30:00Z"},
		{"occurredAt type", with("occurredAt", 1700000000), "occurredAt", "occurredAt must be a string"},
		{"long service", with("service", strings.Repeat("s", 101)), "service", "service must be at most 100 characters"},
		{"blank service", with("service", ""), "service", "service must not be blank (send null to leave it unset)"},
		{"tags type", with("tags", "db"), "tags", "tags must be an array of strings"},
		{"tag item type", with("tags", []any{"a", 1}), "tags", "tags must be an array of strings"},
		{"empty tag", with("tags", []string{"a", ""}), "tags[1]", "tags[1] must not be blank"},
		{"long tag", with("tags", []string{strings.Repeat("t", 65)}), "tags[0]", "tags[0] must be between 1 and 64 characters"},
		{"too many tags", with("tags", make([]string, 33)), "tags", "tags must have at most 32 items"},
		{"unknown field", with("priority", 1), "priority", "unknown field priority"},
		{"isDeleted is read-only", with("isDeleted", true), "isDeleted", "unknown field isDeleted"},
	}
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("v"), rw...)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s := s.With(t)
				p := wantProblem(t, s.Do("POST", "/v1/incidents", key, c.body), 400, "ValidationError")
				found := false
				for _, d := range p.Details {
					found = found || (d.Field == c.field && d.Message == c.msg)
				}
				if !found {
					t.Errorf("details %+v lack {%s: %s}", p.Details, c.field, c.msg)
				}
			})
		}
		t.Run("every violation listed", func(t *testing.T) {
			s := s.With(t)
			p := wantProblem(t, s.Do("POST", "/v1/incidents", key, map[string]any{"title": "", "severity": "x", "status": "y", "extra": 1}), 400, "ValidationError")
			var fields []string
			for _, d := range p.Details {
				fields = append(fields, d.Field)
			}
			for _, f := range []string{"title", "severity", "status", "occurredAt", "extra"} {
				if !slices.Contains(fields, f) {
					t.Errorf("details %v lack %s", fields, f)
				}
			}
		})
		res := s.Do("GET", "/v1/incidents", key, nil)
		var l list
		res.JSON(t, &l)
		if l.Pagination.TotalCount != 0 {
			t.Errorf("a rejected create wrote something: %d incidents", l.Pagination.TotalCount)
		}
	})
}

func TestBadBodies(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("b"), rw...)
		inc := create(t, s, key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"})
		bodies := map[string]string{
			"malformed": `{"title": "t",`, "array": `[1,2]`, "null": `null`, "string": `"x"`,
			"empty": ``, "trailing": `{"title":"t"} {}`, "number": `42`, "bad utf8 escape": `{"title":"\ud800"`,
		}
		for name, body := range bodies {
			for _, target := range []struct{ method, path string }{{"POST", "/v1/incidents"}, {"PATCH", "/v1/incidents/" + inc.ID}} {
				t.Run(name+" "+target.method, func(t *testing.T) {
					s := s.With(t)
					wantProblem(t, s.Do(target.method, target.path, key, body), 400, "ValidationError")
				})
			}
		}
		big := `{"title":"t","severity":"low","occurredAt":"2024-01-15T14:30:00Z","description":"` + strings.Repeat("x", 1<<20) + `"}`
		wantProblem(t, s.Do("POST", "/v1/incidents", key, big), 413, "PayloadTooLarge")
		wantProblem(t, s.Do("PATCH", "/v1/incidents/"+inc.ID, key, big), 413, "PayloadTooLarge")
		wantProblem(t, s.Do("POST", "/v1/incidents", key, `title=x`, "Content-Type", "application/x-www-form-urlencoded"), 415, "UnsupportedMediaType")
		// The limit is exact: 1 MiB is read (and refused for what it says),
		// one byte more is not read at all.
		exact := func(n int) string {
			head := `{"title":"t","severity":"low","occurredAt":"2024-01-15T14:30:00Z","description":"`
			return head + strings.Repeat("x", n-len(head)-2) + `"}`
		}
		if body := exact(rest.MaxBodyBytes); len(body) != rest.MaxBodyBytes {
			t.Fatalf("built %d bytes", len(body))
		}
		wantProblem(t, s.Do("POST", "/v1/incidents", key, exact(rest.MaxBodyBytes)), 400, "ValidationError")
		wantProblem(t, s.Do("POST", "/v1/incidents", key, exact(rest.MaxBodyBytes+1)), 413, "PayloadTooLarge")
		// Every JSON-reading route takes JSON and JSON-suffixed types only.
		all := s.KeyFor(apitest.Tenant("ct"), "ct", model.ScopeIncidentsWrite, model.ScopeComponentsWrite, model.ScopeAPIKeysAdmin)
		for _, target := range []struct{ method, path string }{{"POST", "/v1/incidents"}, {"PATCH", "/v1/incidents/" + inc.ID},
			{"POST", "/v1/components"}, {"POST", "/v1/component_status"}, {"POST", "/v1/api-keys"}, {"POST", "/v1/maintenance"}} {
			for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "application/json-seq; x", "not a type"} {
				k := all
				if target.method == "PATCH" {
					k = key
				}
				wantProblem(t, s.Do(target.method, target.path, k, `{}`, "Content-Type", ct), 415, "UnsupportedMediaType")
			}
		}
		for _, ct := range []string{"application/json; charset=utf-8", "application/merge-patch+json", "APPLICATION/JSON"} {
			s.Do("PATCH", "/v1/incidents/"+inc.ID, key, `{"title":"typed"}`, "Content-Type", ct).Expect(t, 200)
		}
		// No Content-Type at all is read as JSON.
		res := s.Do("POST", "/v1/incidents", key, `{"title":"t","severity":"low","occurredAt":"2024-01-15T14:30:00Z"}`, "Content-Type", "")
		if res.Status != 201 {
			t.Errorf("no content type: %d", res.Status)
		}
		wantProblem(t, s.Do("POST", "/v1/incidents/"+inc.ID, key, `{}`), 405, "MethodNotAllowed")
		wantProblem(t, s.Do("GET", "/v1/nothing", key, nil), 404, "NotFound")
	})
}

func TestLifecycleAndPatch(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("p")
		key := s.Key(tenant, rw...)
		inc := create(t, s, key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z",
			"description": "d", "service": "svc", "tags": []string{"a"}})
		patch := func(body any) *apitest.Response { return s.Do("PATCH", "/v1/incidents/"+inc.ID, key, body) }
		get := func(res *apitest.Response) incident {
			t.Helper()
			if res.Status != 200 {
				t.Fatalf("patch: %d %s", res.Status, res.Body)
			}
			var i incident
			res.JSON(t, &i)
			return i
		}
		// Only the fields sent change.
		got := get(patch(map[string]any{"title": "new"}))
		if got.Title != "new" || *got.Description != "d" || *got.Service != "svc" || got.Severity != "low" || len(got.Tags) != 1 {
			t.Errorf("partial: %+v", got)
		}
		if before, err1 := time.Parse(time.RFC3339Nano, inc.UpdatedAt); err1 != nil {
			t.Errorf("updatedAt %q: %v", inc.UpdatedAt, err1)
		} else if after, err2 := time.Parse(time.RFC3339Nano, got.UpdatedAt); err2 != nil || !after.After(before) {
			t.Errorf("updatedAt did not move: %s -> %s (%v)", inc.UpdatedAt, got.UpdatedAt, err2)
		}
		// Resolving stamps resolvedAt.
		got = get(patch(map[string]any{"status": "resolved"}))
		if got.ResolvedAt == nil {
			t.Fatalf("resolve did not stamp resolvedAt")
		}
		// Reopening clears it.
		got = get(patch(map[string]any{"status": "investigating"}))
		if got.ResolvedAt != nil {
			t.Errorf("reopen kept resolvedAt %v", *got.ResolvedAt)
		}
		// Explicit resolvedAt wins.
		got = get(patch(map[string]any{"status": "resolved", "resolvedAt": "2024-01-15T16:45:00Z"}))
		if got.ResolvedAt == nil || *got.ResolvedAt != "2024-01-15T16:45:00Z" {
			t.Errorf("explicit resolvedAt: %v", got.ResolvedAt)
		}
		// Closing keeps an existing resolvedAt.
		got = get(patch(map[string]any{"status": "closed"}))
		if got.ResolvedAt == nil || *got.ResolvedAt != "2024-01-15T16:45:00Z" {
			t.Errorf("closing changed resolvedAt: %v", got.ResolvedAt)
		}
		// resolvedAt: null clears it; nulls clear description and service.
		got = get(patch(map[string]any{"resolvedAt": nil, "description": nil, "service": nil, "tags": []string{}}))
		if got.ResolvedAt != nil || got.Description != nil || got.Service != nil || len(got.Tags) != 0 {
			t.Errorf("nulls: %+v", got)
		}
		// resolvedAt before occurredAt is a business rule violation, and writes nothing.
		p := wantProblem(t, patch(map[string]any{"resolvedAt": "2024-01-15T14:29:59Z", "title": "never"}), 422, "BusinessRuleViolation")
		if len(p.Details) != 1 || p.Details[0].Field != "resolvedAt" {
			t.Errorf("details %+v", p.Details)
		}
		wantProblem(t, patch(map[string]any{"occurredAt": "2030-01-01T00:00:00Z", "resolvedAt": "2029-01-01T00:00:00Z"}), 422, "BusinessRuleViolation")
		if cur := get(s.Do("GET", "/v1/incidents/"+inc.ID, key, nil)); cur.Title != "new" {
			t.Errorf("a rejected patch wrote: %+v", cur)
		}
		// An empty patch changes nothing, not even updatedAt.
		before := get(s.Do("GET", "/v1/incidents/"+inc.ID, key, nil))
		if after := get(patch(map[string]any{})); after.UpdatedAt != before.UpdatedAt {
			t.Errorf("empty patch moved updatedAt")
		}
		// Patch validation.
		for body, field := range map[string]string{
			`{"status":"done"}`: "status", `{"title":null}`: "title", `{"severity":null}`: "severity",
			`{"tags":null}`: "tags", `{"occurredAt":"yesterday"}`: "occurredAt", `{"id":"inc_x"}`: "id",
			`{"resolvedAt":5}`: "resolvedAt", `{"title":""}`: "title",
		} {
			p := wantProblem(t, patch(body), 400, "ValidationError")
			if len(p.Details) == 0 || p.Details[0].Field != field {
				t.Errorf("%s: details %+v", body, p.Details)
			}
		}
		// Create as resolved stamps resolvedAt, and a future occurredAt then breaks the rule.
		res := s.Do("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "status": "resolved", "occurredAt": "2024-01-15T14:30:00Z"})
		var r incident
		res.JSON(t, &r)
		if res.Status != 201 || r.ResolvedAt == nil {
			t.Errorf("create resolved: %d %+v", res.Status, r)
		}
		wantProblem(t, s.Do("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "status": "closed", "occurredAt": "2999-01-15T14:30:00Z"}), 422, "BusinessRuleViolation")
		wantProblem(t, s.Do("PATCH", "/v1/incidents/inc_000000000000", key, map[string]any{"title": "x"}), 404, "NotFound")
	})
}

func TestDelete(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("d"), rw...)
		a := create(t, s, key, map[string]any{"title": "alpha one", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"})
		create(t, s, key, map[string]any{"title": "alpha two", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"})
		res := s.Do("DELETE", "/v1/incidents/"+a.ID, key, nil)
		if res.Status != 204 || len(res.Body) != 0 {
			t.Fatalf("delete: %d %s", res.Status, res.Body)
		}
		wantProblem(t, s.Do("GET", "/v1/incidents/"+a.ID, key, nil), 404, "NotFound")
		wantProblem(t, s.Do("PATCH", "/v1/incidents/"+a.ID, key, map[string]any{"title": "x"}), 404, "NotFound")
		wantProblem(t, s.Do("DELETE", "/v1/incidents/"+a.ID, key, nil), 404, "NotFound")
		for _, q := range []string{"", "?limit=1", "?keyword=alpha", "?keyword=alpha&limit=1&offset=0", "?severity=low&limit=1"} {
			var l list
			s.Do("GET", "/v1/incidents"+q, key, nil).JSON(t, &l)
			if l.Pagination.TotalCount != 1 || (len(l.Data) > 0 && l.Data[0].ID == a.ID) {
				t.Errorf("%s: deleted incident still listed: %+v", q, l)
			}
		}
	})
}

func TestAuthAndTenants(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenantA, tenantB := apitest.Tenant("a"), apitest.Tenant("b")
		keyA := s.Key(tenantA, rw...)
		keyB := s.Key(tenantB, rw...)
		readOnly := s.Key(tenantA, model.ScopeIncidentsRead)
		alias := s.Key(tenantA, model.ScopeRead)
		inc := create(t, s, keyA, map[string]any{"title": "a's", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"})
		body := map[string]any{"title": "x", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}

		for name, hdr := range map[string][]string{
			"none":             nil,
			"malformed":        {"X-API-Key", "not-a-key"},
			"unknown":          {"X-API-Key", "ik_aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
			"wrong secret":     {"X-API-Key", keyA[:len(keyA)-1] + "Z"},
			"basic auth":       {"Authorization", "Basic dXNlcjpwYXNz"},
			"empty bearer":     {"Authorization", "Bearer "},
			"bearer malformed": {"Authorization", "Bearer x.y.z"},
		} {
			t.Run(name, func(t *testing.T) {
				s := s.With(t)
				if name == "wrong secret" && strings.HasSuffix(keyA, "Z") {
					hdr[1] = keyA[:len(keyA)-1] + "Y"
				}
				p := wantProblem(t, s.Do("GET", "/v1/incidents", "", nil, hdr...), 401, "Unauthorized")
				if p.Message != "Invalid or missing API key" && !(name == "bearer malformed" && p.Message == "Invalid or expired bearer token") {
					t.Errorf("message %q", p.Message)
				}
			})
		}
		for name, hdr := range map[string][]string{
			"API-Key": {"API-Key", keyA}, "Bearer": {"Authorization", "Bearer " + keyA}, "bearer lower": {"Authorization", "bearer " + keyA},
		} {
			if res := s.Do("GET", "/v1/incidents/"+inc.ID, "", nil, hdr...); res.Status != 200 {
				t.Errorf("%s: %d", name, res.Status)
			}
		}
		// Scopes: a read key reads but cannot write, even with a bad body.
		if res := s.Do("GET", "/v1/incidents", readOnly, nil); res.Status != 200 {
			t.Errorf("read key list: %d", res.Status)
		}
		if res := s.Do("GET", "/v1/incidents", alias, nil); res.Status != 200 {
			t.Errorf("read alias list: %d", res.Status)
		}
		wantProblem(t, s.Do("POST", "/v1/incidents", readOnly, body), 403, "Forbidden")
		wantProblem(t, s.Do("POST", "/v1/incidents", readOnly, `{bad`), 403, "Forbidden")
		wantProblem(t, s.Do("PATCH", "/v1/incidents/"+inc.ID, alias, map[string]any{"title": "x"}), 403, "Forbidden")
		wantProblem(t, s.Do("DELETE", "/v1/incidents/"+inc.ID, readOnly, nil), 403, "Forbidden")
		// Tenant B never sees, changes or deletes tenant A's incident.
		wantProblem(t, s.Do("GET", "/v1/incidents/"+inc.ID, keyB, nil), 404, "NotFound")
		wantProblem(t, s.Do("PATCH", "/v1/incidents/"+inc.ID, keyB, map[string]any{"title": "pwned"}), 404, "NotFound")
		wantProblem(t, s.Do("DELETE", "/v1/incidents/"+inc.ID, keyB, nil), 404, "NotFound")
		var l list
		s.Do("GET", "/v1/incidents?keyword=a", keyB, nil).JSON(t, &l)
		if l.Pagination.TotalCount != 0 || len(l.Data) != 0 {
			t.Errorf("tenant B lists A's incidents: %+v", l)
		}
		var got incident
		s.Do("GET", "/v1/incidents/"+inc.ID, keyA, nil).JSON(t, &got)
		if got.Title != "a's" {
			t.Errorf("tenant B changed A's incident: %+v", got)
		}
		// An expired key is refused like an unknown one.
		past := time.Now().Add(-time.Minute)
		_, expired, err := s.Store.APIKeys().IssueAPIKey(t.Context(), model.APIKeyIssue{TenantID: tenantA, Name: "old", Scopes: rw, ExpiresAt: &past})
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, s.Do("GET", "/v1/incidents", expired, nil), 401, "Unauthorized")
	})
}

func TestRateLimit(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{RateLimit: "3-M"})
		tenant := apitest.Tenant("r")
		// Two keys of one actor share one budget: minting keys does not
		// multiply it.
		key, sibling := s.Key(tenant, rw...), s.Key(tenant, rw...)
		var reset int64
		for i := 2; i >= 0; i-- {
			k := key
			if i == 1 {
				k = sibling
			}
			start := time.Now().Unix()
			res := s.Do("GET", "/v1/incidents", k, nil)
			if res.Status != 200 || res.Header.Get("X-RateLimit-Limit") != "3" || res.Header.Get("X-RateLimit-Remaining") != fmt.Sprint(i) {
				t.Fatalf("request %d: %d %v", 3-i, res.Status, res.Header)
			}
			// Reset: the Unix second the window ends, within the minute to
			// come, the same for the whole window.
			r, err := strconv.ParseInt(res.Header.Get("X-RateLimit-Reset"), 10, 64)
			if err != nil || r < start || r > start+61 || (reset != 0 && r != reset) {
				t.Errorf("X-RateLimit-Reset %q (now %d, before %d)", res.Header.Get("X-RateLimit-Reset"), start, reset)
			}
			reset = r
		}
		for _, k := range []string{key, sibling} {
			now := time.Now().Unix()
			res := s.Do("GET", "/v1/incidents", k, nil)
			p := wantProblem(t, res, 429, "RateLimitExceeded")
			retry, err := strconv.ParseInt(res.Header.Get("Retry-After"), 10, 64)
			if p.Message != "Rate limit of 3 requests per minute exceeded" || err != nil || retry < 1 || retry > 61 || retry < reset-now-1 || retry > reset-now+1 {
				t.Errorf("429: %+v Retry-After %q, reset in %d s", p, res.Header.Get("Retry-After"), reset-now)
			}
		}
		// Another actor of the tenant, and another tenant, have budgets of their own.
		if res := s.Do("GET", "/v1/incidents", s.KeyFor(tenant, "someone-else", rw...), nil); res.Status != 200 {
			t.Errorf("another actor: %d", res.Status)
		}
		if res := s.Do("GET", "/v1/incidents", s.Key(apitest.Tenant("r2"), rw...), nil); res.Status != 200 {
			t.Errorf("another tenant: %d", res.Status)
		}
		// Failed authentications share the client IP's budget.
		for range 3 {
			wantProblem(t, s.Do("GET", "/v1/incidents", "bad", nil), 401, "Unauthorized")
		}
		wantProblem(t, s.Do("GET", "/v1/incidents", "bad", nil), 429, "RateLimitExceeded")
	})
}

func TestConcurrentWrites(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("c"), rw...)
		const n = 50
		var wg sync.WaitGroup
		errs := make(chan string, n*2)
		for i := range n {
			wg.Go(func() { // no t.Fatal here: failures are sent to the test goroutine
				res, err := s.Try("POST", "/v1/incidents", key, map[string]any{
					"title": fmt.Sprintf("concurrent %d", i), "severity": model.Severities[i%4], "occurredAt": "2024-01-15T14:30:00Z"})
				if err != nil || res.Status != 201 {
					errs <- fmt.Sprintf("create %d: %v %+v", i, err, res)
					return
				}
				var inc incident
				if err := json.Unmarshal(res.Body, &inc); err != nil {
					errs <- fmt.Sprintf("create %d: %v", i, err)
					return
				}
				res, err = s.Try("PATCH", "/v1/incidents/"+inc.ID, key, map[string]any{"status": "resolved", "description": fmt.Sprint(i)})
				if err != nil || res.Status != 200 {
					errs <- fmt.Sprintf("patch %d: %v %+v", i, err, res)
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		var all, resolved list
		s.Do("GET", "/v1/incidents?limit=100", key, nil).JSON(t, &all)
		s.Do("GET", "/v1/incidents?status=resolved&limit=1", key, nil).JSON(t, &resolved)
		if len(all.Data) != n || all.Pagination.TotalCount != n || resolved.Pagination.TotalCount != n {
			t.Errorf("lost writes: %d listed, total %d, resolved %d", len(all.Data), all.Pagination.TotalCount, resolved.Pagination.TotalCount)
		}
		for _, inc := range all.Data {
			if inc.Status != "resolved" || inc.Description == nil {
				t.Errorf("lost patch: %+v", inc)
			}
		}
	})
}

func TestOperational(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/openapi.json": `"openapi"`, "/openapi.yaml": "openapi: 3", "/api/docs/": "swagger"} {
			res := s.Do("GET", path, "", nil)
			if res.Status != 200 || !strings.Contains(strings.ToLower(string(res.Body)), strings.ToLower(want)) {
				t.Errorf("%s: %d %.80s", path, res.Status, res.Body)
			}
		}
		s.Store.Close()
		wantProblem(t, s.Do("GET", "/readyz", "", nil), 503, "ServiceUnavailable")
		if res := s.Do("GET", "/healthz", "", nil); res.Status != 200 {
			t.Errorf("healthz with the database down: %d", res.Status)
		}
	})
}

func TestQueryParameterErrors(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("q"), rw...)
		for q, field := range map[string]string{
			"limit=0": "limit", "limit=101": "limit", "limit=abc": "limit", "offset=-1": "offset", "offset=x": "offset",
			"status=done": "status", "severity=urgent": "severity", "sort=priority:desc": "sort", "sort=title:up": "sort",
			"fromOccurredAt=yesterday": "fromOccurredAt", "toOccurredAt=2024-13-01T00:00:00Z": "toOccurredAt",
			"cursor=!!!": "cursor", "cursor=bm90LWEtY3Vyc29y": "cursor", "page=2": "page", "limit=1&limit=2": "limit",
			"keyword=" + strings.Repeat("k", 201):                                   "keyword",
			"fromOccurredAt=2024-02-01T00:00:00Z&toOccurredAt=2024-01-01T00:00:00Z": "fromOccurredAt",
		} {
			p := wantProblem(t, s.Do("GET", "/v1/incidents?"+q, key, nil), 400, "ValidationError")
			if len(p.Details) == 0 || p.Details[0].Field != field {
				t.Errorf("%s: details %+v", q, p.Details)
			}
		}
		p := wantProblem(t, s.Do("GET", "/v1/incidents?limit=500", key, nil), 400, "ValidationError")
		if p.Details[0].Message != "limit must be between 1 and 100" {
			t.Errorf("seed message: %+v", p.Details)
		}
		// An unencoded '+' in an offset arrives as a space and is still understood.
		if res := s.Do("GET", "/v1/incidents?fromOccurredAt="+url.PathEscape("2024-01-01T00:00:00 01:00"), key, nil); res.Status != 200 {
			t.Errorf("space for plus: %d %s", res.Status, res.Body)
		}
	})
}

func TestIncidentTimeline(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("tl"), rw...)
		inc := create(t, s, key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"})
		s.Do("PATCH", "/v1/incidents/"+inc.ID, key, map[string]any{"status": "investigating", "severity": "high"}).Expect(t, 200)
		s.Do("PATCH", "/v1/incidents/"+inc.ID, key, map[string]any{"title": "renamed"}).Expect(t, 200) // not a timeline change
		// Two entries again, numbered after the first two.
		s.Do("PATCH", "/v1/incidents/"+inc.ID, key, map[string]any{"status": "open", "severity": "medium"}).Expect(t, 200)
		res := s.Do("POST", "/v1/incidents/"+inc.ID+"/updates", key, map[string]any{"displayName": "Mitigated", "description": "rolled back"})
		if res.Status != 201 {
			t.Fatalf("add: %d %s", res.Status, res.Body)
		}
		var tl struct {
			Data []struct {
				Order                    int
				DisplayName, Description string
			}
		}
		s.Do("GET", "/v1/incidents/"+inc.ID+"/updates", key, nil).JSON(t, &tl)
		var names []string
		for i, u := range tl.Data {
			if u.Order != i {
				t.Errorf("order %d at %d", u.Order, i)
			}
			names = append(names, u.DisplayName)
		}
		if strings.Join(names, ",") != "Status changed,Severity changed,Status changed,Severity changed,Mitigated" {
			t.Errorf("timeline %v", names)
		}
		wantProblem(t, s.Do("POST", "/v1/incidents/"+inc.ID+"/updates", key, map[string]any{"displayName": ""}), 400, "ValidationError")
		wantProblem(t, s.Do("POST", "/v1/incidents/"+inc.ID+"/updates", s.Key(apitest.Tenant("tl"), model.ScopeIncidentsRead), map[string]any{"displayName": "x"}), 403, "Forbidden")
		other := s.Key(apitest.Tenant("tl2"), rw...)
		wantProblem(t, s.Do("GET", "/v1/incidents/"+inc.ID+"/updates", other, nil), 404, "NotFound")
		wantProblem(t, s.Do("POST", "/v1/incidents/"+inc.ID+"/updates", other, map[string]any{"displayName": "x"}), 404, "NotFound")
	})
}

// Writes on PostgreSQL are batched with values formatted into the SQL text:
// text that looks like SQL, quoting or placeholders must round-trip exactly,
// through create, patch, timeline and monitoring.
func TestHostileTextRoundTrips(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("hostile"), model.ScopeIncidentsWrite, model.ScopeComponentsWrite)
		texts := []string{`'; DROP TABLE incidents; --`, `\' \\ \n $1 ? ?? $$x$$ E'\x00'`, `"}], {"id": 1`, "émoji 🚨 'quote' \"dq\""}
		for _, text := range texts {
			inc := create(t, s, key, map[string]any{"title": text, "description": text, "severity": "low",
				"occurredAt": "2024-01-15T14:30:00Z", "tags": []string{text[:5]}, "service": text})
			res := s.Do("PATCH", "/v1/incidents/"+inc.ID, key, map[string]any{"title": text + "!", "status": "investigating", "severity": "high"})
			if res.Status != 200 {
				t.Fatalf("patch %q: %d %s", text, res.Status, res.Body)
			}
			var got struct {
				Title, Description, Service string
				Tags                        []string
			}
			s.Do("GET", "/v1/incidents/"+inc.ID, key, nil).JSON(t, &got)
			if got.Title != text+"!" || got.Description != text || got.Service != text || len(got.Tags) != 1 || got.Tags[0] != text[:5] {
				t.Errorf("%q came back as %+v", text, got)
			}
			if r := s.Do("POST", "/v1/incidents/"+inc.ID+"/updates", key, map[string]any{"displayName": text, "description": text}); r.Status != 201 || r.Map(t)["description"] != text {
				t.Errorf("update %q: %d %s", text, r.Status, r.Body)
			}
		}
		comp := s.Do("POST", "/v1/components", key, map[string]any{"displayName": texts[0], "labels": map[string]string{"r": texts[1]}})
		if comp.Status != 201 {
			t.Fatalf("component: %d %s", comp.Status, comp.Body)
		}
		rep := s.Do("POST", "/v1/component_status", key, map[string]any{"name": texts[0], "impact": "major", "text": texts[2],
			"attributes": []map[string]string{{"name": "r", "value": texts[1]}}})
		if rep.Status != 201 || rep.Map(t)["title"] != texts[2] {
			t.Errorf("report: %d %s", rep.Status, rep.Body)
		}
	})
}

// TestTokenBudget: an OIDC token's budget is its principal's, keyed by
// tenant and subject: two tokens of one subject share it (re-issuing a token
// does not renew it), another subject or tenant has its own.
func TestTokenBudget(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		is := apitest.NewIssuer(t)
		o, err := auth.NewOIDC(t.Context(), auth.OIDCConfig{Issuer: is.URL, Audience: "incidentd"}, model.SystemClock{})
		if err != nil {
			t.Fatal(err)
		}
		s := apitest.Start(t, b, apitest.Config{RateLimit: "2-M", OIDC: o})
		tenant := apitest.Tenant("tok")
		token := func(sub, tenant string, iat int64) string {
			return "Bearer " + is.Token(map[string]any{"sub": sub, "tenant_id": tenant, "iat": iat})
		}
		now := time.Now().Unix()
		first, second := token("ana", tenant, now), token("ana", tenant, now-1)
		if first == second {
			t.Fatal("the two tokens are the same")
		}
		for i, tok := range []string{first, second} {
			if res := s.Do("GET", "/v1/incidents", "", nil, "Authorization", tok); res.Status != 200 || res.Header.Get("X-RateLimit-Remaining") != fmt.Sprint(1-i) {
				t.Fatalf("request %d: %d remaining %s", i, res.Status, res.Header.Get("X-RateLimit-Remaining"))
			}
		}
		wantProblem(t, s.Do("GET", "/v1/incidents", "", nil, "Authorization", first), 429, "RateLimitExceeded")
		wantProblem(t, s.Do("GET", "/v1/incidents", "", nil, "Authorization", token("ana", tenant, now-2)), 429, "RateLimitExceeded")
		for name, tok := range map[string]string{"another subject": token("bo", tenant, now), "another tenant": token("ana", apitest.Tenant("tok2"), now)} {
			if res := s.Do("GET", "/v1/incidents", "", nil, "Authorization", tok); res.Status != 200 || res.Header.Get("X-RateLimit-Remaining") != "1" {
				t.Errorf("%s: %d remaining %s", name, res.Status, res.Header.Get("X-RateLimit-Remaining"))
			}
		}
	})
}
