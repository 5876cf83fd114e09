package graph_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// TestWebhooksAndIdempotencyOverGraphQL: endpoints are managed on this
// door too (secret once, the tenant's own only); createIncident with an
// idempotencyKey creates once and answers the same incident again.
func TestWebhooksAndIdempotencyOverGraphQL(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		ten := apitest.Tenant("ghooks")
		admin := s.Key(ten, model.ScopeWebhooksAdmin)
		_, r := s.GQL(admin, `mutation { createWebhook(input: {url: "https://hooks.example.com/a", events: ["incident.created"], filter: {severities: [HIGH]}}) { secret webhook { id events enabled filter { severities } } } }`, nil)
		var d struct {
			CreateWebhook struct {
				Secret  string
				Webhook struct {
					ID      string
					Events  []string
					Enabled bool
				}
			}
		}
		if err := json.Unmarshal(r.Data, &d); err != nil || !strings.HasPrefix(d.CreateWebhook.Secret, "whsec_") || !d.CreateWebhook.Webhook.Enabled ||
			len(d.CreateWebhook.Webhook.Events) != 1 {
			t.Fatalf("createWebhook: %s %+v %v", r.Data, r.Errors, err)
		}
		if _, r := s.GQL(admin, `mutation { createWebhook(input: {url: "http://10.0.0.1/x", events: ["incident.created"]}) { secret } }`, nil); r.Code() != "ValidationError" {
			t.Errorf("a private target: %+v", r)
		}
		_, r = s.GQL(admin, `{ webhooks { id url } }`, nil)
		if !strings.Contains(string(r.Data), d.CreateWebhook.Webhook.ID) {
			t.Errorf("webhooks: %s", r.Data)
		}
		_, r = s.GQL(s.Key(apitest.Tenant("ghooks-other"), model.ScopeWebhooksAdmin), `{ webhooks { id } }`, nil)
		if string(r.Data) != `{"webhooks":[]}` {
			t.Errorf("another tenant: %s", r.Data)
		}
		if _, r := s.GQL(s.Key(ten, model.ScopeIncidentsWrite), `{ webhooks { id } }`, nil); r.Code() != "Forbidden" {
			t.Errorf("without webhooks:admin: %+v", r)
		}

		key := s.Key(ten, model.ScopeIncidentsWrite)
		create := `mutation($k: String, $t: String!) { createIncident(input: {title: $t, severity: LOW, occurredAt: "2024-01-15T14:30:00Z"}, idempotencyKey: $k) { id } }`
		ids := map[string]bool{}
		for range 3 {
			_, r := s.GQL(key, create, map[string]any{"k": "same", "t": "once"})
			var c struct{ CreateIncident struct{ ID string } }
			if err := json.Unmarshal(r.Data, &c); err != nil || c.CreateIncident.ID == "" {
				t.Fatalf("create: %s %+v", r.Data, r.Errors)
			}
			ids[c.CreateIncident.ID] = true
		}
		if len(ids) != 1 {
			t.Errorf("three creates with one key made %d incidents", len(ids))
		}
		if _, r := s.GQL(key, create, map[string]any{"k": "same", "t": "other"}); r.Code() != "BusinessRuleViolation" {
			t.Errorf("the key with another input: %+v", r)
		}
	})
}
