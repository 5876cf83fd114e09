package graph_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/webhook"
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

// TestWebhookDeliveryLogOverGraphQL: the delivery log reads on this door
// too: webhookDeliveries lists without attempts, webhookDelivery gives the
// body sent and every attempt (a receiver answering 500 then 200 shows
// both); another tenant reads null.
func TestWebhookDeliveryLogOverGraphQL(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{Webhooks: webhook.Options{AllowPrivateTargets: true,
			Schedule: []time.Duration{10 * time.Millisecond}, Jitter: -1, Poll: 20 * time.Millisecond}})
		var calls atomic.Int32
		rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				w.WriteHeader(500)
				_, _ = io.WriteString(w, "not now")
				return
			}
			_, _ = io.WriteString(w, "thanks")
		}))
		t.Cleanup(rc.Close)
		ten := apitest.Tenant("glog")
		admin := s.Key(ten, model.ScopeWebhooksAdmin)
		var ep struct{ ID string }
		s.Do("POST", "/v1/webhooks", admin, map[string]any{"url": rc.URL, "events": []string{"incident.created"}}).Expect(t, 201).JSON(t, &ep)
		inc := s.Do("POST", "/v1/incidents", s.Key(ten, model.ScopeIncidentsWrite),
			map[string]any{"title": "logged", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}).Expect(t, 201).Map(t)["id"].(string)

		list := `query($w: ID!) { webhookDeliveries(webhook: $w) { nodes { id state attempts attemptLog { number } } } }`
		var page struct {
			WebhookDeliveries struct {
				Nodes []struct {
					ID, State  string
					Attempts   int
					AttemptLog []struct{ Number int }
				}
			}
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			_, r := s.GQL(admin, list, map[string]any{"w": ep.ID})
			if err := json.Unmarshal(r.Data, &page); err != nil {
				t.Fatalf("%s %+v", r.Data, r.Errors)
			}
			if n := page.WebhookDeliveries.Nodes; len(n) == 1 && n[0].State == "delivered" || time.Now().After(deadline) {
				break
			}
		}
		n := page.WebhookDeliveries.Nodes
		if len(n) != 1 || n[0].State != "delivered" || n[0].Attempts != 2 || n[0].AttemptLog != nil {
			t.Fatalf("webhookDeliveries: %+v", n)
		}

		one := `query($w: ID!, $id: ID!) { webhookDelivery(webhook: $w, id: $id) { id payload
			attemptLog { number at status error latencyMs responseExcerpt } } }`
		_, r := s.GQL(admin, one, map[string]any{"w": ep.ID, "id": n[0].ID})
		var d struct {
			WebhookDelivery struct {
				ID, Payload string
				AttemptLog  []struct {
					Number, Status         int
					At                     time.Time
					Error, ResponseExcerpt string
					LatencyMs              float64
				}
			}
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatalf("%s %+v", r.Data, r.Errors)
		}
		got := d.WebhookDelivery
		if !strings.Contains(got.Payload, inc) || len(got.AttemptLog) != 2 {
			t.Fatalf("webhookDelivery: %s", r.Data)
		}
		for i, want := range []struct {
			status  int
			excerpt string
		}{{500, "not now"}, {200, "thanks"}} {
			a := got.AttemptLog[i]
			if a.Number != i+1 || a.Status != want.status || a.ResponseExcerpt != want.excerpt || a.At.IsZero() || a.LatencyMs <= 0 {
				t.Errorf("attempt %d: %+v", i+1, a)
			}
		}
		_, r = s.GQL(s.Key(apitest.Tenant("glog2"), model.ScopeWebhooksAdmin), one, map[string]any{"w": ep.ID, "id": n[0].ID})
		if string(r.Data) != `{"webhookDelivery":null}` {
			t.Errorf("another tenant reads %s %+v", r.Data, r.Errors)
		}
		if _, r := s.GQL(s.Key(ten, model.ScopeIncidentsWrite), one, map[string]any{"w": ep.ID, "id": n[0].ID}); r.Code() != "Forbidden" {
			t.Errorf("without webhooks:admin: %+v", r)
		}
	})
}
