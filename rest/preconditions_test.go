package rest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// TestConditionalIncidentEdits: two clients edit one incident from the
// same version: the second gets 412 with the current ETag and nothing the
// first wrote is lost; GET answers 304 while a copy is current; If-Match
// guards DELETE too; a weak or malformed tag never passes.
func TestConditionalIncidentEdits(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("etag"), model.ScopeIncidentsWrite)
		created := s.Do("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}).Expect(t, 201)
		id := created.Map(t)["id"].(string)
		path := "/v1/incidents/" + id
		v0 := s.Do("GET", path, key, nil).Expect(t, 200).Header.Get("ETag")
		if v0 == "" || v0 != created.Header.Get("ETag") {
			t.Fatalf("ETag %q, create's %q", v0, created.Header.Get("ETag"))
		}
		if r := s.Do("GET", path, key, nil, "If-None-Match", v0); r.Status != http.StatusNotModified || r.Header.Get("ETag") != v0 {
			t.Errorf("If-None-Match current: %d %v", r.Status, r.Header)
		}

		a := s.Do("PATCH", path, key, map[string]any{"title": "from A"}, "If-Match", v0).Expect(t, 200)
		v1 := a.Header.Get("ETag")
		if v1 == v0 || v1 == "" {
			t.Fatalf("the version did not move: %s", v1)
		}
		stale := s.Do("PATCH", path, key, map[string]any{"severity": "high"}, "If-Match", v0)
		wantProblem(t, stale, 412, "PreconditionFailed")
		if stale.Header.Get("ETag") != v1 {
			t.Errorf("412 carries %q, the current is %q", stale.Header.Get("ETag"), v1)
		}
		var now struct{ Title, Severity string }
		s.Do("GET", path, key, nil).JSON(t, &now)
		if now.Title != "from A" || now.Severity != "low" {
			t.Errorf("after the refused write: %+v", now)
		}
		s.Do("GET", path, key, nil, "If-None-Match", v0).Expect(t, 200) // the copy is stale
		b2 := s.Do("PATCH", path, key, map[string]any{"severity": "high"}, "If-Match", v1).Expect(t, 200)
		v2 := b2.Header.Get("ETag")

		wantProblem(t, s.Do("PATCH", path, key, map[string]any{"title": "x"}, "If-Match", "W/"+v2), 412, "PreconditionFailed")
		wantProblem(t, s.Do("PATCH", path, key, map[string]any{"title": "x"}, "If-Match", "no-quotes"), 400, "ValidationError")
		s.Do("PATCH", path, key, map[string]any{"title": "any"}, "If-Match", `"other", `+v2).Expect(t, 200)
		v3 := s.Do("PATCH", path, key, map[string]any{"title": "star"}, "If-Match", "*").Expect(t, 200).Header.Get("ETag")
		wantProblem(t, s.Do("DELETE", path, key, nil, "If-Match", v2), 412, "PreconditionFailed")
		s.Do("DELETE", path, key, nil, "If-Match", v3).Expect(t, 204)
		wantProblem(t, s.Do("PATCH", path, key, map[string]any{"title": "x"}, "If-Match", "*"), 404, "NotFound")
	})
}

// TestPutReplaces: PUT needs the required fields and clears the optional
// ones it leaves out, with PATCH's rules, audit and ETag; components too.
func TestPutReplaces(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		ten := apitest.Tenant("put")
		key := s.Key(ten, model.ScopeIncidentsWrite, model.ScopeComponentsWrite)
		auditor := s.Key(ten, model.ScopeAuditRead)
		id := s.Do("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z",
			"description": "d", "service": "api", "tags": []string{"x"}}).Expect(t, 201).Map(t)["id"].(string)
		p := wantProblem(t, s.Do("PUT", "/v1/incidents/"+id, key, map[string]any{"title": "only"}), 400, "ValidationError")
		if len(p.Details) != 3 {
			t.Errorf("missing fields: %+v", p.Details)
		}
		var got struct {
			Title, Status string
			Description   *string
			Service       *string
			Tags          []string
			ResolvedAt    *string
		}
		res := s.Do("PUT", "/v1/incidents/"+id, key, map[string]any{"title": "whole", "severity": "high", "status": "resolved",
			"occurredAt": "2024-01-15T14:30:00Z"}).Expect(t, 200)
		res.JSON(t, &got)
		if got.Title != "whole" || got.Description != nil || got.Service != nil || len(got.Tags) != 0 || got.Status != "resolved" ||
			got.ResolvedAt == nil || res.Header.Get("ETag") == "" {
			t.Errorf("after PUT: %+v", got)
		}
		// The lifecycle rules hold: resolvedAt before occurredAt is refused.
		wantProblem(t, s.Do("PUT", "/v1/incidents/"+id, key, map[string]any{"title": "whole", "severity": "high", "status": "resolved",
			"occurredAt": "2024-01-15T14:30:00Z", "resolvedAt": "2024-01-01T00:00:00Z"}), 422, "BusinessRuleViolation")
		var trail struct {
			Data []struct{ Action, ResourceID string }
		}
		s.Do("GET", "/v1/audit-events?resourceId="+id, auditor, nil).JSON(t, &trail)
		if len(trail.Data) != 2 || trail.Data[0].Action != "incident.update" {
			t.Errorf("audit: %+v", trail.Data)
		}

		cid := s.Do("POST", "/v1/components", key, map[string]any{"displayName": "API", "labels": map[string]string{"a": "b"}}).Expect(t, 201).Map(t)["id"].(string)
		wantProblem(t, s.Do("PUT", "/v1/components/"+cid, key, map[string]any{"labels": map[string]string{}}), 400, "ValidationError")
		cv := s.Do("GET", "/v1/components/"+cid, key, nil).Expect(t, 200).Header.Get("ETag")
		var comp struct {
			DisplayName string
			Labels      map[string]string
		}
		put := s.Do("PUT", "/v1/components/"+cid, key, map[string]any{"displayName": "API 2"}, "If-Match", cv).Expect(t, 200)
		put.JSON(t, &comp)
		if comp.DisplayName != "API 2" || len(comp.Labels) != 0 {
			t.Errorf("component after PUT: %+v", comp)
		}
		wantProblem(t, s.Do("PATCH", "/v1/components/"+cid, key, map[string]any{"displayName": "late"}, "If-Match", cv), 412, "PreconditionFailed")
		if r := s.Do("GET", "/v1/components/"+cid, key, nil, "If-None-Match", put.Header.Get("ETag")); r.Status != 304 {
			t.Errorf("component If-None-Match: %d", r.Status)
		}
		wantProblem(t, s.Do("DELETE", "/v1/components/"+cid, key, nil, "If-Match", cv), 412, "PreconditionFailed")
		s.Do("DELETE", "/v1/components/"+cid, key, nil, "If-Match", put.Header.Get("ETag")).Expect(t, 204)
	})
}

// TestRequirePreconditions: a tenant that requires them gets 428 for a
// change without If-Match, on incidents and components; others are not
// affected; only its administrators set it.
func TestRequirePreconditions(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		ten, other := apitest.Tenant("strict"), apitest.Tenant("lax")
		admin := s.Key(ten, model.ScopeAPIKeysAdmin)
		key := s.Key(ten, model.ScopeIncidentsWrite, model.ScopeComponentsWrite)
		okey := s.Key(other, model.ScopeIncidentsWrite)
		wantProblem(t, s.Do("PUT", "/v1/settings", key, map[string]any{"requirePreconditions": true}), 403, "Forbidden")
		wantProblem(t, s.Do("PUT", "/v1/settings", admin, map[string]any{"requirePreconditions": "yes"}), 400, "ValidationError")
		var st struct{ RequirePreconditions bool }
		s.Do("PUT", "/v1/settings", admin, map[string]any{"requirePreconditions": true}).JSON(t, &st)
		s.Do("GET", "/v1/settings", admin, nil).JSON(t, &st)
		if !st.RequirePreconditions {
			t.Fatal("not set")
		}
		body := map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}
		created := s.Do("POST", "/v1/incidents", key, body).Expect(t, 201) // creating needs no precondition
		id := created.Map(t)["id"].(string)
		wantProblem(t, s.Do("PATCH", "/v1/incidents/"+id, key, map[string]any{"title": "x"}), 428, "PreconditionRequired")
		wantProblem(t, s.Do("DELETE", "/v1/incidents/"+id, key, nil), 428, "PreconditionRequired")
		s.Do("PATCH", "/v1/incidents/"+id, key, map[string]any{"title": "x"}, "If-Match", created.Header.Get("ETag")).Expect(t, 200)
		cid := s.Do("POST", "/v1/components", key, map[string]any{"displayName": "C"}).Expect(t, 201).Map(t)["id"].(string)
		wantProblem(t, s.Do("PATCH", "/v1/components/"+cid, key, map[string]any{"displayName": "D"}), 428, "PreconditionRequired")
		// Another tenant is not affected.
		oid := s.Do("POST", "/v1/incidents", okey, body).Expect(t, 201).Map(t)["id"].(string)
		s.Do("PATCH", "/v1/incidents/"+oid, okey, map[string]any{"title": "free"}).Expect(t, 200)
		s.Do("PUT", "/v1/settings", admin, map[string]any{"requirePreconditions": false}).Expect(t, 200)
		s.Do("PATCH", "/v1/incidents/"+id, key, map[string]any{"title": "y"}).Expect(t, 200)
	})
}

// conditional is one single resource of the REST door under the ETag rule:
// made fresh (its path and the create's answer), then two clients each
// change it (a, b: method, path and body, from the version both read).
type conditional struct {
	name           string
	create         func(t *testing.T, s *apitest.Server, key string) (path string, res *apitest.Response)
	a, b           func(path string) (method, target string, body any)
	deletes        bool     // DELETE path applies If-Match
	keepsBoth      []string // what a GET finds once both changes applied, in its body
	requireRefused bool     // a tenant requiring preconditions refuses a's change without one
}

func conditionals() []conditional {
	patch := func(body any) func(string) (string, string, any) {
		return func(p string) (string, string, any) { return "PATCH", p, body }
	}
	return []conditional{
		{name: "impact type", deletes: true, requireRefused: true,
			create: func(t *testing.T, s *apitest.Server, key string) (string, *apitest.Response) {
				r := s.Do("POST", "/v1/impact-types", key, map[string]any{"displayName": "Slow"}).Expect(t, 201)
				return r.Header.Get("Location"), r
			},
			a: patch(map[string]any{"displayName": "Sluggish"}), b: patch(map[string]any{"description": "from B"}),
			keepsBoth: []string{`"displayName":"Sluggish"`, `"description":"from B"`}},
		{name: "severity", deletes: true, requireRefused: true,
			create: func(t *testing.T, s *apitest.Server, key string) (string, *apitest.Response) {
				r := s.Do("POST", "/v1/severities", key, map[string]any{"displayName": "Sev 2", "value": 60}).Expect(t, 201)
				return r.Header.Get("Location"), r
			},
			a: patch(map[string]any{"value": 61}), b: patch(map[string]any{"value": 62}),
			keepsBoth: []string{`"value":62`}},
		{name: "webhook endpoint", deletes: true, requireRefused: true,
			create: func(t *testing.T, s *apitest.Server, key string) (string, *apitest.Response) {
				r := s.Do("POST", "/v1/webhooks", key, map[string]any{"url": "https://hooks.example.com/c", "events": []string{"incident.created"}}).Expect(t, 201)
				return r.Header.Get("Location"), r
			},
			a: patch(map[string]any{"description": "from A"}), b: patch(map[string]any{"enabled": false}),
			keepsBoth: []string{`"description":"from A"`, `"enabled":false`}},
		{name: "webhook secret rotation", requireRefused: true,
			create: func(t *testing.T, s *apitest.Server, key string) (string, *apitest.Response) {
				r := s.Do("POST", "/v1/webhooks", key, map[string]any{"url": "https://hooks.example.com/r", "events": []string{"incident.created"}}).Expect(t, 201)
				return r.Header.Get("Location"), r
			},
			a:         func(p string) (string, string, any) { return "POST", p + "/rotate-secret", nil },
			b:         patch(map[string]any{"description": "after the rotation"}),
			keepsBoth: []string{`"previousSecretUntil":"`, `"description":"after the rotation"`}},
		{name: "api key", deletes: true, requireRefused: true,
			create: func(t *testing.T, s *apitest.Server, key string) (string, *apitest.Response) {
				r := s.Do("POST", "/v1/api-keys", key, map[string]any{"name": "ci", "scopes": []string{"incidents:read"}}).Expect(t, 201)
				return r.Header.Get("Location"), r
			},
			// A rotates (the key then expires in an hour); B, who read it
			// before, revokes it.
			a: func(p string) (string, string, any) {
				return "POST", p + "/rotate", map[string]any{"overlapSeconds": 3600}
			},
			b:         func(p string) (string, string, any) { return "DELETE", p, nil },
			keepsBoth: []string{`"expiresAt":"`, `"revokedAt":"`}},
		{name: "phases", requireRefused: true,
			create: func(t *testing.T, s *apitest.Server, key string) (string, *apitest.Response) {
				return "/v1/phases", s.Do("POST", "/v1/phases", key, map[string]any{"phases": []string{"triage"}}).Expect(t, 201)
			},
			a: func(p string) (string, string, any) {
				return "POST", p, map[string]any{"phases": []string{"triage", "fix"}}
			},
			b: func(p string) (string, string, any) {
				return "POST", p, map[string]any{"phases": []string{"triage", "fix", "verify"}}
			},
			keepsBoth: []string{`"phases":["triage","fix","verify"]`, `"generation":3`}},
		{name: "settings",
			create: func(t *testing.T, s *apitest.Server, key string) (string, *apitest.Response) {
				return "/v1/settings", s.Do("GET", "/v1/settings", key, nil).Expect(t, 200)
			},
			a:         func(p string) (string, string, any) { return "PUT", p, map[string]any{"requirePreconditions": true} },
			b:         func(p string) (string, string, any) { return "PUT", p, map[string]any{"requirePreconditions": false} },
			keepsBoth: []string{`"requirePreconditions":false`}},
	}
}

// TestConditionalEditsOfEveryResource: every single resource but
// incidents and components (tested above) on the same rule. The create's
// ETag is the GET's; If-None-Match gives 304 while current. Two clients
// change it from the version both read: the first applies, the second gets
// 412 with the current ETag and nothing the first did is lost; the second
// then applies from that ETag. DELETE is guarded the same way. A tenant
// requiring preconditions gets 428 without If-Match (not for its settings).
func TestConditionalEditsOfEveryResource(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		scopes := []model.Scope{model.ScopeAPIKeysAdmin, model.ScopeWebhooksAdmin, model.ScopeComponentsWrite, model.ScopeIncidentsRead}
		for _, c := range conditionals() {
			t.Run(c.name, func(t *testing.T) {
				ten := apitest.Tenant("cond")
				ka, kb := s.Key(ten, scopes...), s.Key(ten, scopes...) // two clients
				path, created := c.create(t, s, ka)
				v0 := s.Do("GET", path, kb, nil).Expect(t, 200).Header.Get("ETag")
				if v0 == "" || v0 != created.Header.Get("ETag") {
					t.Fatalf("GET's ETag %q, the create's %q", v0, created.Header.Get("ETag"))
				}
				if r := s.Do("GET", path, kb, nil, "If-None-Match", `"other", `+v0); r.Status != 304 || r.Header.Get("ETag") != v0 || len(r.Body) != 0 {
					t.Errorf("If-None-Match current: %d %q %s", r.Status, r.Header.Get("ETag"), r.Body)
				}

				m, target, body := c.a(path)
				ra := s.Do(m, target, ka, body, "If-Match", v0)
				if ra.Status >= 300 {
					t.Fatalf("A: %d %s", ra.Status, ra.Body)
				}
				cur := s.Do("GET", path, kb, nil).Expect(t, 200)
				v1 := cur.Header.Get("ETag")
				if v1 == v0 {
					t.Fatalf("A's change did not move the version")
				}
				if target == path && ra.Header.Get("ETag") != v1 {
					t.Errorf("A's answer carries %q, a GET %q", ra.Header.Get("ETag"), v1)
				}
				m, target, body = c.b(path)
				stale := s.Do(m, target, kb, body, "If-Match", v0)
				wantProblem(t, stale, 412, "PreconditionFailed")
				if stale.Header.Get("ETag") != v1 {
					t.Errorf("412 carries %q, the current is %q", stale.Header.Get("ETag"), v1)
				}
				if after := s.Do("GET", path, kb, nil); after.Header.Get("ETag") != v1 || string(after.Body) != string(cur.Body) {
					t.Errorf("the refused change changed it: %s, was %s", after.Body, cur.Body)
				}
				s.Do("GET", path, kb, nil, "If-None-Match", v0).Expect(t, 200) // B's copy is stale
				if r := s.Do(m, target, kb, body, "If-Match", v1); r.Status >= 300 {
					t.Fatalf("B from the current version: %d %s", r.Status, r.Body)
				}
				both := s.Do("GET", path, ka, nil).Expect(t, 200)
				for _, want := range c.keepsBoth {
					if !strings.Contains(string(both.Body), want) {
						t.Errorf("after both changes, %s lacks %s", both.Body, want)
					}
				}
				v2 := both.Header.Get("ETag")
				wantProblem(t, s.Do(m, target, kb, body, "If-Match", "no-quotes"), 400, "ValidationError")
				if c.deletes {
					wantProblem(t, s.Do("DELETE", path, ka, nil, "If-Match", v1), 412, "PreconditionFailed")
				}

				// A tenant that requires preconditions.
				admin := s.Key(ten, model.ScopeAPIKeysAdmin)
				s.Do("PUT", "/v1/settings", admin, map[string]any{"requirePreconditions": true}).Expect(t, 200)
				m, target, body = c.a(path)
				if c.requireRefused {
					wantProblem(t, s.Do(m, target, ka, body), 428, "PreconditionRequired")
					if c.deletes {
						wantProblem(t, s.Do("DELETE", path, ka, nil), 428, "PreconditionRequired")
					}
				}
				if c.deletes {
					s.Do("DELETE", path, ka, nil, "If-Match", v2).Expect(t, 204)
				}
				// The switch is turned off without a precondition.
				s.Do("PUT", "/v1/settings", admin, map[string]any{"requirePreconditions": false}).Expect(t, 200)
			})
		}
	})
}

// TestMaintenanceConditionalCancel: a window never changes, so its only
// conditional write is its cancellation; the create's ETag is the GET's, and
// a DELETE under another version is refused with the current one.
func TestMaintenanceConditionalCancel(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		ten := apitest.Tenant("mcond")
		key := s.Key(ten, model.ScopeComponentsWrite, model.ScopeAPIKeysAdmin)
		c := s.Do("POST", "/v1/components", key, map[string]any{"displayName": "DB"}).Expect(t, 201).Map(t)["id"].(string)
		now := time.Now().UTC()
		created := s.Do("POST", "/v1/maintenance", key, map[string]any{"description": "Upgrade", "components": []string{c},
			"startsAt": now.Add(time.Hour).Format(time.RFC3339), "endsAt": now.Add(2 * time.Hour).Format(time.RFC3339)}).Expect(t, 201)
		path := created.Header.Get("Location")
		v := s.Do("GET", path, key, nil).Expect(t, 200).Header.Get("ETag")
		if v == "" || v != created.Header.Get("ETag") || !strings.HasSuffix(path, "/"+created.Map(t)["id"].(string)) {
			t.Fatalf("GET %s: ETag %q, the create's %q", path, v, created.Header.Get("ETag"))
		}
		if r := s.Do("GET", path, key, nil, "If-None-Match", v); r.Status != 304 || r.Header.Get("ETag") != v {
			t.Errorf("If-None-Match current: %d %q", r.Status, r.Header.Get("ETag"))
		}
		wantProblem(t, s.Do("GET", path+"?x=1", key, nil), 400, "ValidationError")
		wantProblem(t, s.Do("GET", "/v1/maintenance/mnt_nope", key, nil), 404, "NotFound")
		other := s.Key(apitest.Tenant("mcond2"), model.ScopeComponentsWrite)
		wantProblem(t, s.Do("GET", path, other, nil), 404, "NotFound")
		wantProblem(t, s.Do("DELETE", path, other, nil), 404, "NotFound")

		stale := s.Do("DELETE", path, key, nil, "If-Match", `"stale"`)
		wantProblem(t, stale, 412, "PreconditionFailed")
		if stale.Header.Get("ETag") != v {
			t.Errorf("412 carries %q, the current is %q", stale.Header.Get("ETag"), v)
		}
		wantProblem(t, s.Do("DELETE", path, key, nil, "If-Match", "no-quotes"), 400, "ValidationError")
		s.Do("PUT", "/v1/settings", key, map[string]any{"requirePreconditions": true}).Expect(t, 200)
		wantProblem(t, s.Do("DELETE", path, key, nil), 428, "PreconditionRequired")
		s.Do("DELETE", path, key, nil, "If-Match", v).Expect(t, 204)
		wantProblem(t, s.Do("DELETE", path, key, nil, "If-Match", v), 404, "NotFound")
	})
}
