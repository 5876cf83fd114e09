package rest_test

import (
	"testing"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

func TestComponents(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("cmp")
		key := s.Key(tenant, model.ScopeComponentsWrite, model.ScopeAuditRead)
		mk := func(name string, labels map[string]string) map[string]any {
			t.Helper()
			body := map[string]any{"displayName": name}
			if labels != nil {
				body["labels"] = labels
			}
			res := s.Do("POST", "/v1/components", key, body)
			if res.Status != 201 {
				t.Fatalf("create: %d %s", res.Status, res.Body)
			}
			return res.Map(t)
		}
		c1 := mk("Component 1", map[string]string{"region": "Reg1"})
		mk("Component 1", map[string]string{"region": "Reg2"})
		mk("Database", nil)
		id := c1["id"].(string)
		var page struct {
			Data []struct {
				ID, DisplayName string
				Labels          map[string]string
			}
			Pagination struct{ TotalCount int }
		}
		s.Do("GET", "/v1/components?name=comp&label=region:Reg1", key, nil).JSON(t, &page)
		if len(page.Data) != 1 || page.Data[0].ID != id || page.Pagination.TotalCount != 1 {
			t.Errorf("filter: %+v", page)
		}
		s.Do("GET", "/v1/components?limit=2", key, nil).JSON(t, &page)
		if len(page.Data) != 2 || page.Pagination.TotalCount != 3 {
			t.Errorf("page: %+v", page)
		}
		res := s.Do("PATCH", "/v1/components/"+id, key, map[string]any{"labels": map[string]string{"region": "Reg3", "tier": "gold"}})
		if res.Status != 200 || res.Map(t)["displayName"] != "Component 1" {
			t.Errorf("patch: %d %s", res.Status, res.Body)
		}
		for body, field := range map[string]string{
			`{"displayName":""}`: "displayName", `{"labels":{"bad key":"x"}}`: "labels.bad key", `{"labels":{"a":1}}`: "labels",
			`{"labels":null}`: "labels", `{"color":"red"}`: "color",
		} {
			p := wantProblem(t, s.Do("PATCH", "/v1/components/"+id, key, body), 400, "ValidationError")
			if len(p.Details) == 0 || p.Details[0].Field != field {
				t.Errorf("%s: %+v", body, p.Details)
			}
		}
		wantProblem(t, s.Do("POST", "/v1/components", key, map[string]any{"labels": map[string]string{}}), 400, "ValidationError")
		wantProblem(t, s.Do("GET", "/v1/components?label=nocolon", key, nil), 400, "ValidationError")
		// Scopes and tenants.
		wantProblem(t, s.Do("GET", "/v1/components", s.Key(tenant, model.ScopeIncidentsWrite), nil), 403, "Forbidden")
		reader := s.Key(tenant, model.ScopeRead)
		if r := s.Do("GET", "/v1/components/"+id, reader, nil); r.Status != 200 {
			t.Errorf("read alias: %d", r.Status)
		}
		wantProblem(t, s.Do("DELETE", "/v1/components/"+id, reader, nil), 403, "Forbidden")
		other := s.Key(apitest.Tenant("o"), model.ScopeComponentsWrite)
		wantProblem(t, s.Do("GET", "/v1/components/"+id, other, nil), 404, "NotFound")
		wantProblem(t, s.Do("PATCH", "/v1/components/"+id, other, map[string]any{"displayName": "x"}), 404, "NotFound")
		if r := s.Do("DELETE", "/v1/components/"+id, key, nil); r.Status != 204 {
			t.Errorf("delete: %d", r.Status)
		}
		wantProblem(t, s.Do("GET", "/v1/components/"+id, key, nil), 404, "NotFound")
		var trail struct{ Data []struct{ Action string } }
		s.Do("GET", "/v1/audit-events?resourceId="+id, key, nil).JSON(t, &trail)
		if len(trail.Data) != 3 || trail.Data[0].Action != "component.delete" {
			t.Errorf("audit %+v", trail.Data)
		}
	})
}
