package graph_test

import (
	"encoding/json"
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
