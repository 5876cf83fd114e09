package graph_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// TestIdempotencyKeyOnCreates: the create mutations take idempotencyKey on
// REST's rule and keys: a retry answers what the first answered and makes
// nothing more; another input with the key is a BusinessRuleViolation;
// keys are per credential; a secret shown once is never replayed (the
// answer's secret is empty, the resource the same).
func TestIdempotencyKeyOnCreates(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		ten := apitest.Tenant("gidem")
		scopes := []model.Scope{model.ScopeAPIKeysAdmin, model.ScopeWebhooksAdmin, model.ScopeComponentsWrite,
			model.ScopeIncidentsWrite, model.ScopeIncidentsRead}
		key, other := s.Key(ten, scopes...), s.Key(ten, scopes...)
		twice := func(k, query string, vars map[string]any) (first, again json.RawMessage) {
			t.Helper()
			_, r1 := s.GQL(k, query, vars)
			_, r2 := s.GQL(k, query, vars)
			if len(r1.Errors) > 0 || len(r2.Errors) > 0 {
				t.Fatalf("%s: %+v %+v", query, r1.Errors, r2.Errors)
			}
			return r1.Data, r2.Data
		}
		count := func(path, name string) int {
			t.Helper()
			return strings.Count(string(s.Do("GET", path, key, nil).Expect(t, 200).Body), name)
		}

		// createComponent: the same answer, one component.
		comp := `mutation($k: String, $n: String!) { createComponent(input: {displayName: $n}, idempotencyKey: $k) { id displayName version createdAt } }`
		first, again := twice(key, comp, map[string]any{"k": "c-1", "n": "Checkout"})
		if string(first) != string(again) {
			t.Errorf("replay %s, first %s", again, first)
		}
		if n := count("/v1/components", `"displayName":"Checkout"`); n != 1 {
			t.Errorf("%d components from one key", n)
		}
		if _, r := s.GQL(key, comp, map[string]any{"k": "c-1", "n": "Other"}); r.Code() != "BusinessRuleViolation" {
			t.Errorf("the key with another input: %+v", r)
		}
		// Another credential's key of the same name is its own.
		if _, r := s.GQL(other, comp, map[string]any{"k": "c-1", "n": "Other"}); len(r.Errors) > 0 {
			t.Errorf("another credential: %+v", r.Errors)
		}
		if _, r := s.GQL(key, comp, map[string]any{"k": strings.Repeat("x", 256), "n": "Long"}); r.Code() != "ValidationError" {
			t.Errorf("a 256-character key: %+v", r)
		}

		// createApiKey: the secret once, the same key again without it.
		ak := `mutation($k: String) { createApiKey(input: {name: "idem", scopes: ["incidents:read"]}, idempotencyKey: $k) { key apiKey { id version } } }`
		first, again = twice(key, ak, map[string]any{"k": "a-1"})
		var k1, k2 struct {
			CreateAPIKey struct {
				Key    string
				APIKey struct{ ID, Version string }
			} `json:"createApiKey"`
		}
		_ = json.Unmarshal(first, &k1)
		_ = json.Unmarshal(again, &k2)
		if !strings.HasPrefix(k1.CreateAPIKey.Key, "ik_") || k2.CreateAPIKey.Key != "" || k1.CreateAPIKey.APIKey != k2.CreateAPIKey.APIKey ||
			k1.CreateAPIKey.APIKey.ID == "" {
			t.Errorf("createApiKey, then its replay: %s %s", first, again)
		}
		if n := count("/v1/api-keys", `"name":"idem"`); n != 1 {
			t.Errorf("%d keys from one idempotency key", n)
		}
		// The key works: the first answer's secret is the one.
		s.Do("GET", "/v1/incidents", k1.CreateAPIKey.Key, nil).Expect(t, 200)

		// createWebhook: likewise.
		wh := `mutation($k: String) { createWebhook(input: {url: "https://hooks.example.com/idem", events: ["incident.created"]}, idempotencyKey: $k) { secret webhook { id version } } }`
		first, again = twice(key, wh, map[string]any{"k": "w-1"})
		var w1, w2 struct {
			CreateWebhook struct {
				Secret  string
				Webhook struct{ ID, Version string }
			}
		}
		_ = json.Unmarshal(first, &w1)
		_ = json.Unmarshal(again, &w2)
		if !strings.HasPrefix(w1.CreateWebhook.Secret, "whsec_") || w2.CreateWebhook.Secret != "" || w1.CreateWebhook.Webhook != w2.CreateWebhook.Webhook {
			t.Errorf("createWebhook, then its replay: %s %s", first, again)
		}
		if n := count("/v1/webhooks", "/idem"); n != 1 {
			t.Errorf("%d endpoints from one key", n)
		}

		// addIncidentUpdate: one entry; the key on another incident is refused.
		inc := s.Do("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}).Expect(t, 201).Map(t)["id"]
		inc2 := s.Do("POST", "/v1/incidents", key, map[string]any{"title": "u", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}).Expect(t, 201).Map(t)["id"]
		up := `mutation($k: String, $i: ID!) { addIncidentUpdate(incidentId: $i, input: {displayName: "Investigating"}, idempotencyKey: $k) { order createdAt } }`
		first, again = twice(key, up, map[string]any{"k": "u-1", "i": inc})
		if string(first) != string(again) {
			t.Errorf("replay %s, first %s", again, first)
		}
		if n := count("/v1/incidents/"+inc.(string)+"/updates", `"Investigating"`); n != 1 {
			t.Errorf("%d entries from one key", n)
		}
		if _, r := s.GQL(key, up, map[string]any{"k": "u-1", "i": inc2}); r.Code() != "BusinessRuleViolation" {
			t.Errorf("the key on another incident: %+v", r)
		}

		// replacePhases, createImpactType, createSeverity: one generation, one type, one severity.
		first, again = twice(key, `mutation { replacePhases(phases: ["a", "b"], idempotencyKey: "p-1") { generation version } }`, nil)
		if string(first) != string(again) || !strings.Contains(string(first), `"generation":1`) {
			t.Errorf("replacePhases, then its replay: %s %s", first, again)
		}
		first, again = twice(key, `mutation { createImpactType(input: {displayName: "Slow"}, idempotencyKey: "i-1") { id version } }`, nil)
		if string(first) != string(again) {
			t.Errorf("createImpactType, then its replay: %s %s", first, again)
		}
		first, again = twice(key, `mutation { createSeverity(input: {displayName: "Sev", value: 60}, idempotencyKey: "s-1") { displayName version } }`, nil)
		if string(first) != string(again) {
			t.Errorf("createSeverity, then its replay: %s %s", first, again)
		}
		// createIncident keeps its rule.
		first, again = twice(key, `mutation { createIncident(input: {title: "once", severity: LOW, occurredAt: "2024-01-15T14:30:00Z"}, idempotencyKey: "n-1") { id version } }`, nil)
		if string(first) != string(again) {
			t.Errorf("createIncident, then its replay: %s %s", first, again)
		}
	})
}
