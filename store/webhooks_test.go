package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

// asHooks is a context acting in tenant with every scope, webhooks:admin included.
func asHooks(tenant string) context.Context {
	p := model.PrincipalFrom(as(tenant))
	p.Scopes = append(p.Scopes, model.ScopeWebhooksAdmin)
	return model.WithPrincipal(context.Background(), p)
}

func codeOf(err error) model.Code {
	var e *model.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func hookInput(url string, events ...model.WebhookEventType) model.WebhookEndpointInput {
	return model.WebhookEndpointInput{URL: model.Some(url), Events: model.Some(events)}
}

// testRender renders a message as its type and incident or component id.
func testRender(m *model.WebhookMessage) ([]byte, error) {
	id := m.Event.Incident.ID
	if m.Type == model.WebhookComponentStatus {
		id = m.Components[0].ID + ":" + m.Status
	}
	return json.Marshal(map[string]string{"type": string(m.Type), "id": id})
}

// drainFanOut fans out until the stream is read (positions become final
// once older transactions end; the tests' are over).
func drainFanOut(t *testing.T, s *Store) {
	t.Helper()
	for {
		n, err := s.FanOutWebhooks(context.Background(), 100, testRender)
		if err != nil {
			t.Fatal(err)
		}
		if n < 100 {
			return
		}
	}
}

// Rule: endpoints are a tenant resource under webhooks:admin: validated
// (https, public addresses, known event types), audited, invisible to
// other tenants; the secret is shown at creation and rotation only.
func TestWebhookEndpoints(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		s := openStore(t, url, Options{})
		ten, other := tenant("wh"), tenant("wh-other")
		ctx := asHooks(ten)
		svc := s.Webhooks(false)

		if _, _, err := svc.Create(as(ten), hookInput("https://example.com/h", model.WebhookIncidentCreated)); codeOf(err) != model.CodeForbidden {
			t.Fatalf("without webhooks:admin: %v", err)
		}
		for _, bad := range []string{"http://example.com/h", "https://127.0.0.1/h", "https://10.1.2.3/", "https://169.254.169.254/latest",
			"https://[::1]/", "https://localhost/", "https://0.0.0.0/", "https://224.0.0.1/", "https://user:pw@example.com/", "ftp://example.com/", "example.com"} {
			if _, _, err := svc.Create(ctx, hookInput(bad, model.WebhookIncidentCreated)); codeOf(err) != model.CodeInvalid {
				t.Errorf("%s: %v", bad, err)
			}
		}
		if _, _, err := svc.Create(ctx, hookInput("https://example.com/h", "incident.exploded")); codeOf(err) != model.CodeInvalid {
			t.Errorf("unknown event type: %v", err)
		}
		if _, _, err := svc.Create(ctx, model.WebhookEndpointInput{URL: model.Some("https://example.com/h")}); codeOf(err) != model.CodeInvalid {
			t.Errorf("no events: %v", err)
		}
		if _, _, err := s.Webhooks(true).Create(ctx, hookInput("http://127.0.0.1:9/h", model.WebhookIncidentCreated)); err != nil {
			t.Errorf("private targets allowed: %v", err)
		}

		ep, secret, err := svc.Create(ctx, model.WebhookEndpointInput{URL: model.Some("https://example.com/h"), Description: model.Some("ops"),
			Events: model.Some([]model.WebhookEventType{model.WebhookIncidentUpdated, model.WebhookIncidentCreated, model.WebhookIncidentCreated}),
			Filter: model.Some(model.WebhookFilter{EventFilter: model.EventFilter{Severities: []model.Severity{model.SeverityHigh}}, Labels: map[string]string{"region": "eu"}})})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, "whsec_") || !ep.Enabled || len(ep.Events) != 2 || ep.Filter.Labels["region"] != "eu" || ep.Description != "ops" {
			t.Fatalf("created %+v %q", ep, secret)
		}
		got, err := svc.Get(ctx, ep.ID)
		if err != nil || got.URL != ep.URL || got.Filter.Severities[0] != model.SeverityHigh {
			t.Fatalf("get %+v %v", got, err)
		}
		if _, err := svc.Get(asHooks(other), ep.ID); codeOf(err) != model.CodeNotFound {
			t.Errorf("other tenant reads: %v", err)
		}
		if list, err := svc.List(asHooks(other)); err != nil || len(list) != 0 {
			t.Errorf("other tenant lists %v %v", list, err)
		}
		if _, err := svc.Update(asHooks(other), ep.ID, model.WebhookEndpointInput{Enabled: model.Some(false)}); codeOf(err) != model.CodeNotFound {
			t.Errorf("other tenant updates: %v", err)
		}

		up, err := svc.Update(ctx, ep.ID, model.WebhookEndpointInput{Enabled: model.Some(false), Description: model.Null[string]()})
		if err != nil || up.Enabled || up.Description != "" || up.URL != ep.URL {
			t.Fatalf("update %+v %v", up, err)
		}
		if _, err := svc.Update(ctx, ep.ID, model.WebhookEndpointInput{URL: model.Some("https://192.168.0.1/")}); codeOf(err) != model.CodeInvalid {
			t.Errorf("private url on update: %v", err)
		}

		rot, secret2, err := svc.RotateSecret(ctx, ep.ID)
		if err != nil || secret2 == secret || !strings.HasPrefix(secret2, "whsec_") || rot.PreviousSecretUntil == nil {
			t.Fatalf("rotate %+v %v", rot, err)
		}

		trail, err := s.Audit().List(ctx, model.AuditQuery{ResourceID: ep.ID, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range trail.Items {
			actions = append(actions, e.Action)
			if strings.Contains(string(mustJSON(t, e.Changes)), "whsec_") {
				t.Errorf("the trail shows a secret: %v", e.Changes)
			}
		}
		if strings.Join(actions, ",") != "webhook.rotate,webhook.update,webhook.create" {
			t.Errorf("audit %v", actions)
		}

		if err := svc.Delete(asHooks(other), ep.ID); codeOf(err) != model.CodeNotFound {
			t.Errorf("other tenant deletes: %v", err)
		}
		if err := svc.Delete(ctx, ep.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Get(ctx, ep.ID); codeOf(err) != model.CodeNotFound {
			t.Errorf("deleted: %v", err)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Rule: fan-out queues one delivery per (message, matching enabled
// endpoint of the event's tenant), each event once; an endpoint's
// deliveries are claimed one at a time, oldest first; another tenant's
// events never reach it; filters apply.
func TestWebhookFanOut(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		s := openStore(t, url, Options{})
		ten, other := tenant("whf"), tenant("whf-other")
		ctx := asHooks(ten)
		svc := s.Webhooks(false)
		drainFanOut(t, s) // earlier tests' events

		comp, err := s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some("api"), Labels: model.Some(map[string]string{"region": "eu"})})
		if err != nil {
			t.Fatal(err)
		}
		all, _, err := svc.Create(ctx, hookInput("https://example.com/all", model.WebhookIncidentCreated, model.WebhookIncidentUpdated, model.WebhookComponentStatus))
		if err != nil {
			t.Fatal(err)
		}
		high, _, err := svc.Create(ctx, model.WebhookEndpointInput{URL: model.Some("https://example.com/high"), Events: model.Some([]model.WebhookEventType{model.WebhookIncidentCreated}),
			Filter: model.Some(model.WebhookFilter{EventFilter: model.EventFilter{Severities: []model.Severity{model.SeverityHigh}}})})
		if err != nil {
			t.Fatal(err)
		}
		eu, _, err := svc.Create(ctx, model.WebhookEndpointInput{URL: model.Some("https://example.com/eu"), Events: model.Some([]model.WebhookEventType{model.WebhookIncidentCreated}),
			Filter: model.Some(model.WebhookFilter{Labels: map[string]string{"region": "eu"}})})
		if err != nil {
			t.Fatal(err)
		}
		off, _, err := svc.Create(ctx, model.WebhookEndpointInput{URL: model.Some("https://example.com/off"), Events: model.Some([]model.WebhookEventType{model.WebhookIncidentCreated}),
			Enabled: model.Some(false)})
		if err != nil {
			t.Fatal(err)
		}

		low, _, err := s.Incidents().Create(ctx, model.IncidentCreate{Title: "low", Severity: model.SeverityLow, OccurredAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		hi, _, err := s.Incidents().Create(ctx, model.IncidentCreate{Title: "high", Severity: model.SeverityHigh, OccurredAt: time.Now(),
			Affects: []model.AffectInput{{ComponentID: comp.ID, TypeID: model.ImpactMajor.TypeID()}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Incidents().Update(ctx, low.ID, model.IncidentPatch{Title: model.Some("low 2")}); err != nil {
			t.Fatal(err)
		}
		// Another tenant's incident: never sent to this tenant's endpoints.
		if _, _, err := s.Incidents().Create(asHooks(other), model.IncidentCreate{Title: "theirs", Severity: model.SeverityHigh, OccurredAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		drainFanOut(t, s)
		drainFanOut(t, s) // a second pass queues nothing again

		want := map[string][]string{
			all.ID: {`{"id":"` + low.ID + `","type":"incident.created"}`, `{"id":"` + hi.ID + `","type":"incident.created"}`,
				`{"id":"` + comp.ID + `:major","type":"component.status"}`, `{"id":"` + low.ID + `","type":"incident.updated"}`},
			high.ID: {`{"id":"` + hi.ID + `","type":"incident.created"}`},
			eu.ID:   {`{"id":"` + hi.ID + `","type":"incident.created"}`},
			off.ID:  nil,
		}
		for ep, w := range want {
			got := deliverAll(t, s, ten, ep)
			if strings.Join(got, "\n") != strings.Join(w, "\n") {
				t.Errorf("%s got\n%s\nwant\n%s", ep, strings.Join(got, "\n"), strings.Join(w, "\n"))
			}
		}

		// The delivery log: newest first, paged, this tenant's only.
		page, err := svc.Deliveries(ctx, all.ID, model.WebhookDeliveryQuery{Limit: 3})
		if err != nil || len(page.Items) != 3 || !page.HasMore || page.Items[0].Type != model.WebhookIncidentUpdated || page.Items[0].State != model.WebhookDelivered ||
			page.Items[0].Attempts != 1 || page.Items[0].LastStatus != 200 || page.Items[0].MessageID == "" {
			t.Fatalf("page %+v %v", page, err)
		}
		rest, err := svc.Deliveries(ctx, all.ID, model.WebhookDeliveryQuery{Limit: 3, Cursor: page.NextCursor})
		if err != nil || len(rest.Items) != 1 || rest.HasMore || rest.Items[0].Type != model.WebhookIncidentCreated {
			t.Fatalf("rest %+v %v", rest, err)
		}
		if _, err := svc.Deliveries(asHooks(other), all.ID, model.WebhookDeliveryQuery{Limit: 3}); codeOf(err) != model.CodeNotFound {
			t.Errorf("other tenant's log: %v", err)
		}
		if _, err := svc.Deliveries(asHooks(other), all.ID, model.WebhookDeliveryQuery{Limit: 3, Cursor: page.NextCursor}); codeOf(err) != model.CodeInvalid {
			t.Errorf("other tenant's cursor: %v", err)
		}
		if _, err := svc.Redeliver(asHooks(other), "", page.Items[0].ID); codeOf(err) != model.CodeNotFound {
			t.Errorf("other tenant redelivers: %v", err)
		}

		// Through another endpoint's address: not found, nothing queued.
		if _, err := svc.Redeliver(ctx, "whe_another", page.Items[0].ID); codeOf(err) != model.CodeNotFound {
			t.Errorf("redeliver through another endpoint: %v", err)
		}
		if got := deliverAll(t, s, ten, all.ID); len(got) != 0 {
			t.Errorf("a refused redelivery queued %v", got)
		}

		// Redelivery: the same message id and bytes, as a new delivery.
		again, err := svc.Redeliver(ctx, all.ID, page.Items[0].ID)
		if err != nil || again.MessageID != page.Items[0].MessageID || string(again.Payload) != string(page.Items[0].Payload) || again.ID == page.Items[0].ID {
			t.Fatalf("redeliver %+v %v", again, err)
		}
		if got := deliverAll(t, s, ten, all.ID); len(got) != 1 || got[0] != string(page.Items[0].Payload) {
			t.Errorf("redelivered %v", got)
		}
	})
}
