package graph_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// TestExpectedVersion: GraphQL's version is REST's ETag; updateIncident
// and deleteComponent with a stale expectedVersion change nothing and say
// PreconditionFailed; a tenant requiring preconditions refuses changes
// without one (PreconditionRequired).
func TestExpectedVersion(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		ten := apitest.Tenant("gver")
		key := s.Key(ten, model.ScopeIncidentsWrite, model.ScopeComponentsWrite)
		admin := s.Key(ten, model.ScopeAPIKeysAdmin)
		created := s.Do("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}).Expect(t, 201)
		id := created.Map(t)["id"].(string)
		version := func() string {
			t.Helper()
			_, r := s.GQL(key, `query($id: ID!) { incident(id: $id) { version } }`, map[string]any{"id": id})
			var d struct{ Incident struct{ Version string } }
			if err := json.Unmarshal(r.Data, &d); err != nil || d.Incident.Version == "" {
				t.Fatalf("version: %s %v", r.Data, err)
			}
			return d.Incident.Version
		}
		v0 := version()
		if `"`+v0+`"` != created.Header.Get("ETag") {
			t.Errorf("version %s, ETag %s", v0, created.Header.Get("ETag"))
		}
		update := `mutation($id: ID!, $v: String, $title: String) { updateIncident(id: $id, input: {title: $title}, expectedVersion: $v) { title version } }`
		if _, r := s.GQL(key, update, map[string]any{"id": id, "v": v0, "title": "A"}); len(r.Errors) > 0 {
			t.Fatalf("first: %+v", r.Errors)
		}
		if _, r := s.GQL(key, update, map[string]any{"id": id, "v": v0, "title": "B"}); r.Code() != "PreconditionFailed" {
			t.Errorf("stale: %+v", r)
		}
		var now struct{ Title string }
		s.Do("GET", "/v1/incidents/"+id, key, nil).JSON(t, &now)
		if now.Title != "A" {
			t.Errorf("after the refused update: %q", now.Title)
		}

		cid := s.Do("POST", "/v1/components", key, map[string]any{"displayName": "C"}).Expect(t, 201).Map(t)["id"].(string)
		del := `mutation($id: ID!, $v: String) { deleteComponent(id: $id, expectedVersion: $v) }`
		if _, r := s.GQL(key, del, map[string]any{"id": cid, "v": "stale"}); r.Code() != "PreconditionFailed" {
			t.Errorf("stale component delete: %+v", r)
		}

		if _, r := s.GQL(key, `mutation { setRequirePreconditions(required: true) { requirePreconditions } }`, nil); r.Code() != "Forbidden" {
			t.Errorf("without apikeys:admin: %+v", r)
		}
		if _, r := s.GQL(admin, `mutation { setRequirePreconditions(required: true) { requirePreconditions } }`, nil); len(r.Errors) > 0 {
			t.Fatal(r.Errors)
		}
		if _, r := s.GQL(key, update, map[string]any{"id": id, "title": "C"}); r.Code() != "PreconditionRequired" {
			t.Errorf("required, none given: %+v", r)
		}
		if _, r := s.GQL(key, update, map[string]any{"id": id, "v": version(), "title": "C"}); len(r.Errors) > 0 {
			t.Errorf("required, given: %+v", r.Errors)
		}
		_, r := s.GQL(admin, `{ settings { requirePreconditions } }`, nil)
		if string(r.Data) != `{"settings":{"requirePreconditions":true}}` {
			t.Errorf("settings: %s", r.Data)
		}
	})
}

// gqlVersioned is one resource of TestExpectedVersionOfEveryResource: its
// REST path (the ETag to compare), the query reading its version, and a
// mutation taking $v (expectedVersion) and $n (a value to set).
type gqlVersioned struct {
	name     string
	create   func(t *testing.T, s *apitest.Server, key string) (restPath string, vars map[string]any)
	read     string // a query whose data holds one "version"
	change   string // a mutation with $v: String and $n
	n        func(i int) any
	required bool // a tenant requiring preconditions refuses change without $v
}

// versionIn finds the one "version" member in a response's data.
func versionIn(t *testing.T, data json.RawMessage) string {
	t.Helper()
	var found []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "version" {
					found = append(found, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	walk(v)
	if len(found) != 1 {
		t.Fatalf("versions in %s: %v", data, found)
	}
	return found[0]
}

// TestExpectedVersionOfEveryResource: API keys, impact types, severities,
// phase lists, webhook endpoints and settings carry a version equal to
// REST's ETag; a change with a stale expectedVersion is a
// PreconditionFailed error and changes nothing; with the current one it
// applies; a tenant requiring preconditions refuses changes without one
// (PreconditionRequired), but not of its settings.
func TestExpectedVersionOfEveryResource(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		scopes := []model.Scope{model.ScopeAPIKeysAdmin, model.ScopeWebhooksAdmin, model.ScopeComponentsWrite, model.ScopeIncidentsRead}
		str := func(i int) any { return fmt.Sprint("value ", i) }
		cases := []gqlVersioned{
			{name: "api key", required: true, n: func(i int) any { return 3600 + i },
				create: func(t *testing.T, s *apitest.Server, key string) (string, map[string]any) {
					r := s.Do("POST", "/v1/api-keys", key, map[string]any{"name": "k", "scopes": []string{"incidents:read"}}).Expect(t, 201)
					return r.Header.Get("Location"), map[string]any{"id": r.Map(t)["id"]}
				},
				read:   `query($id: ID!) { apiKey(id: $id) { version } }`,
				change: `mutation($id: ID!, $v: String, $n: Int) { rotateApiKey(id: $id, overlapSeconds: $n, expectedVersion: $v) { key } }`},
			{name: "impact type", required: true, n: str,
				create: func(t *testing.T, s *apitest.Server, key string) (string, map[string]any) {
					r := s.Do("POST", "/v1/impact-types", key, map[string]any{"displayName": "Slow"}).Expect(t, 201)
					return r.Header.Get("Location"), map[string]any{"id": r.Map(t)["id"]}
				},
				read:   `query($id: ID!) { impactType(id: $id) { version } }`,
				change: `mutation($id: ID!, $v: String, $n: String) { updateImpactType(id: $id, input: {description: $n}, expectedVersion: $v) { version } }`},
			{name: "severity", required: true, n: func(i int) any { return 60 + i },
				create: func(t *testing.T, s *apitest.Server, key string) (string, map[string]any) {
					r := s.Do("POST", "/v1/severities", key, map[string]any{"displayName": "Sev", "value": 55}).Expect(t, 201)
					return r.Header.Get("Location"), map[string]any{"name": "Sev"}
				},
				read:   `query($name: String!) { severity(displayName: $name) { version } }`,
				change: `mutation($name: String!, $v: String, $n: Int) { updateSeverity(displayName: $name, input: {value: $n}, expectedVersion: $v) { version } }`},
			{name: "phases", required: true, n: func(i int) any { return []string{"triage", fmt.Sprint("step ", i)} },
				create: func(t *testing.T, s *apitest.Server, key string) (string, map[string]any) {
					s.Do("POST", "/v1/phases", key, map[string]any{"phases": []string{"triage"}}).Expect(t, 201)
					return "/v1/phases", map[string]any{}
				},
				read:   `{ phases { version } }`,
				change: `mutation($v: String, $n: [String!]!) { replacePhases(phases: $n, expectedVersion: $v) { version } }`},
			{name: "webhook endpoint", required: true, n: str,
				create: func(t *testing.T, s *apitest.Server, key string) (string, map[string]any) {
					r := s.Do("POST", "/v1/webhooks", key, map[string]any{"url": "https://hooks.example.com/g", "events": []string{"incident.created"}}).Expect(t, 201)
					return r.Header.Get("Location"), map[string]any{"id": r.Map(t)["id"]}
				},
				read:   `{ webhooks { version } }`,
				change: `mutation($id: ID!, $v: String, $n: String) { updateWebhook(id: $id, input: {description: $n}, expectedVersion: $v) { version } }`},
			{name: "settings", n: func(i int) any { return i%2 == 1 },
				create: func(*testing.T, *apitest.Server, string) (string, map[string]any) {
					return "/v1/settings", map[string]any{}
				},
				read:   `{ settings { version } }`,
				change: `mutation($v: String, $n: Boolean!) { setRequirePreconditions(required: $n, expectedVersion: $v) { version } }`},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ten := apitest.Tenant("gvers")
				key := s.Key(ten, scopes...)
				path, vars := c.create(t, s, key)
				with := func(v any, n int) map[string]any {
					out := map[string]any{"v": v, "n": c.n(n)}
					for k, x := range vars {
						out[k] = x
					}
					return out
				}
				read := func() string {
					t.Helper()
					_, r := s.GQL(key, c.read, vars)
					if len(r.Errors) > 0 {
						t.Fatalf("read: %+v", r.Errors)
					}
					return versionIn(t, r.Data)
				}
				v0 := read()
				if etag := s.Do("GET", path, key, nil).Expect(t, 200).Header.Get("ETag"); etag != `"`+v0+`"` {
					t.Errorf("version %s, ETag %s", v0, etag)
				}
				if _, r := s.GQL(key, c.change, with(v0, 1)); len(r.Errors) > 0 {
					t.Fatalf("from the current version: %+v", r.Errors)
				}
				v1 := read()
				if v1 == v0 {
					t.Fatal("the change did not move the version")
				}
				if _, r := s.GQL(key, c.change, with(v0, 2)); r.Code() != "PreconditionFailed" {
					t.Errorf("stale: %+v", r)
				}
				if read() != v1 {
					t.Error("a refused change moved the version")
				}
				if _, r := s.GQL(s.Key(ten, model.ScopeAPIKeysAdmin), `mutation { setRequirePreconditions(required: true) { requirePreconditions } }`, nil); len(r.Errors) > 0 {
					t.Fatal(r.Errors)
				}
				_, r := s.GQL(key, c.change, with(nil, 3))
				switch {
				case c.required && r.Code() != "PreconditionRequired":
					t.Errorf("required, none given: %+v", r)
				case !c.required && len(r.Errors) > 0:
					t.Errorf("the settings need no precondition: %+v", r.Errors)
				}
				if _, r := s.GQL(key, c.change, with(read(), 4)); len(r.Errors) > 0 {
					t.Errorf("required, given: %+v", r.Errors)
				}
			})
		}
	})
}

// TestMaintenanceVersionAndReplay: a window's version is REST's ETag;
// createMaintenance with an idempotencyKey makes one window however often
// it is sent; deleteMaintenance under a stale version changes nothing, and
// maintenanceWindow reads one window (null once cancelled, or another
// tenant's).
func TestMaintenanceVersionAndReplay(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("gmnt"), model.ScopeComponentsWrite)
		other := s.Key(apitest.Tenant("gmnt2"), model.ScopeComponentsWrite)
		cid := s.Do("POST", "/v1/components", key, map[string]any{"displayName": "DB"}).Expect(t, 201).Map(t)["id"].(string)
		create := `mutation($c: ID!, $d: String!, $k: String) { createMaintenance(input: {description: $d, components: [$c],
			startsAt: "2099-01-01T00:00:00Z", endsAt: "2099-01-01T02:00:00Z"}, idempotencyKey: $k) { id version components { id } } }`
		vars := map[string]any{"c": cid, "d": "Upgrade", "k": "m-1"}
		_, r1 := s.GQL(key, create, vars)
		_, r2 := s.GQL(key, create, vars)
		if len(r1.Errors) > 0 || string(r1.Data) != string(r2.Data) {
			t.Fatalf("createMaintenance, then its replay: %s %+v / %s", r1.Data, r1.Errors, r2.Data)
		}
		var got struct {
			CreateMaintenance struct {
				ID, Version string
				Components  []struct{ ID string }
			}
		}
		if err := json.Unmarshal(r1.Data, &got); err != nil || len(got.CreateMaintenance.Components) != 1 {
			t.Fatalf("%s %v", r1.Data, err)
		}
		m := got.CreateMaintenance
		var list struct{ Data []struct{ ID string } }
		s.Do("GET", "/v1/maintenance", key, nil).JSON(t, &list)
		if len(list.Data) != 1 {
			t.Errorf("%d windows from one key", len(list.Data))
		}
		if _, r := s.GQL(key, create, map[string]any{"c": cid, "d": "Other", "k": "m-1"}); r.Code() != "BusinessRuleViolation" {
			t.Errorf("the key with another input: %+v", r)
		}
		if etag := s.Do("GET", "/v1/maintenance/"+m.ID, key, nil).Expect(t, 200).Header.Get("ETag"); etag != `"`+m.Version+`"` {
			t.Errorf("version %s, ETag %s", m.Version, etag)
		}
		read := `query($id: ID!) { maintenanceWindow(id: $id) { id version } }`
		if _, r := s.GQL(key, read, map[string]any{"id": m.ID}); !strings.Contains(string(r.Data), m.Version) {
			t.Errorf("maintenanceWindow: %s %+v", r.Data, r.Errors)
		}
		if _, r := s.GQL(other, read, map[string]any{"id": m.ID}); string(r.Data) != `{"maintenanceWindow":null}` {
			t.Errorf("another tenant reads %s %+v", r.Data, r.Errors)
		}
		del := `mutation($id: ID!, $v: String) { deleteMaintenance(id: $id, expectedVersion: $v) }`
		if _, r := s.GQL(key, del, map[string]any{"id": m.ID, "v": "stale"}); r.Code() != "PreconditionFailed" {
			t.Errorf("stale delete: %+v", r)
		}
		if _, r := s.GQL(other, del, map[string]any{"id": m.ID}); r.Code() != "NotFound" {
			t.Errorf("another tenant's delete: %+v", r)
		}
		s.Do("GET", "/v1/maintenance/"+m.ID, key, nil).Expect(t, 200)
		if _, r := s.GQL(key, del, map[string]any{"id": m.ID, "v": m.Version}); len(r.Errors) > 0 {
			t.Errorf("delete: %+v", r.Errors)
		}
		if _, r := s.GQL(key, read, map[string]any{"id": m.ID}); string(r.Data) != `{"maintenanceWindow":null}` {
			t.Errorf("after the cancellation: %s", r.Data)
		}
	})
}
