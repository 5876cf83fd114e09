package rest_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

type auditEvent struct {
	ID, Actor, Credential, Action, ResourceType, ResourceID, RequestID, At string
	Changes                                                                map[string]struct{ Before, After any }
}

type auditPage struct {
	Data       []auditEvent
	Pagination struct {
		HasMore    bool
		NextCursor *string
	}
}

func TestAuditTrail(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("audit")
		key := s.Key(tenant, rw...)
		auditor := s.Key(tenant, model.ScopeAuditRead, model.ScopeAPIKeysAdmin, model.ScopeIncidentsRead)
		res := s.Do("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"}, "X-Request-Id", "req-create-1")
		id := res.Expect(t, 201).Map(t)["id"].(string)
		s.Do("PATCH", "/v1/incidents/"+id, key, map[string]any{"severity": "high", "title": "t"}).Expect(t, 200)
		s.Do("PATCH", "/v1/incidents/"+id, key, map[string]any{}).Expect(t, 200) // a no-op leaves no trace
		wantProblem(t, s.Do("PATCH", "/v1/incidents/"+id, key, map[string]any{"resolvedAt": "2000-01-01T00:00:00Z"}), 422, "BusinessRuleViolation")
		s.Do("DELETE", "/v1/incidents/"+id, key, nil).Expect(t, 204)
		s.Do("POST", "/v1/api-keys", auditor, map[string]any{"name": "k", "scopes": []string{"incidents:read"}}).Expect(t, 201)

		var page auditPage
		s.Do("GET", "/v1/audit-events", auditor, nil).JSON(t, &page)
		var actions []string
		for _, e := range page.Data {
			actions = append(actions, e.Action)
		}
		// The two keys this test began with were issued by the command line's path: actor "cli".
		if len(page.Data) != 6 || actions[0] != "apikey.create" || actions[3] != "incident.create" ||
			page.Data[4].Actor != "cli" || page.Data[5].Actor != "cli" {
			t.Fatalf("trail %v", actions)
		}
		create, update, del := page.Data[3], page.Data[2], page.Data[1]
		if create.RequestID != "req-create-1" || !strings.HasPrefix(create.Credential, "key_") || create.Actor != "user_"+tenant || create.ResourceID != id || create.Changes["title"].After != "t" {
			t.Errorf("create %+v", create)
		}
		if len(update.Changes) != 1 || update.Changes["severity"].Before != "low" || update.Changes["severity"].After != "high" {
			t.Errorf("update changes %+v", update.Changes)
		}
		if del.Changes["isDeleted"].After != true {
			t.Errorf("delete %+v", del.Changes)
		}
		if _, leaked := page.Data[0].Changes["key"]; leaked {
			t.Error("the audit trail holds a secret")
		}
		// Filters and cursor pages.
		var only auditPage
		s.Do("GET", "/v1/audit-events?action=incident.update&resourceId="+url.QueryEscape(id), auditor, nil).JSON(t, &only)
		if len(only.Data) != 1 || only.Data[0].ID != update.ID {
			t.Errorf("filtered %+v", only.Data)
		}
		var p1, p2 auditPage
		s.Do("GET", "/v1/audit-events?limit=3", auditor, nil).JSON(t, &p1)
		s.Do("GET", "/v1/audit-events?limit=3&cursor="+url.QueryEscape(*p1.Pagination.NextCursor), auditor, nil).JSON(t, &p2)
		if len(p1.Data) != 3 || !p1.Pagination.HasMore || len(p2.Data) != 3 || p2.Data[0].ID != create.ID || p2.Pagination.HasMore {
			t.Errorf("pages %d %d", len(p1.Data), len(p2.Data))
		}
		// Scope and tenant.
		wantProblem(t, s.Do("GET", "/v1/audit-events", key, nil), 403, "Forbidden")
		var other auditPage
		s.Do("GET", "/v1/audit-events", s.Key(apitest.Tenant("x"), model.ScopeAuditRead), nil).JSON(t, &other)
		if len(other.Data) != 1 || other.Data[0].Action != "apikey.create" || other.Data[0].Actor != "cli" { // only its own key's creation
			t.Errorf("another tenant sees %+v", other.Data)
		}
		for _, q := range []string{"action=drop", "limit=0", "cursor=zz", "from=yesterday", "bogus=1"} {
			wantProblem(t, s.Do("GET", "/v1/audit-events?"+q, auditor, nil), 400, "ValidationError")
		}
	})
}
