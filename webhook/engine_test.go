package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

func endpoint(t *testing.T, svc model.WebhookService, ctx context.Context, url string, events ...model.WebhookEventType) (*model.WebhookEndpoint, string) {
	t.Helper()
	ep, secret, err := svc.Create(ctx, model.WebhookEndpointInput{URL: model.Some(url), Events: model.Some(events)})
	if err != nil {
		t.Fatal(err)
	}
	return ep, secret
}

// Rule: a committed change reaches the endpoint as a signed POST that the
// Standard Webhooks verifier accepts, with the body {type, timestamp,
// data: the incident}; after a rotation both secrets sign, for the grace.
func TestDeliveredSigned(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		st := openStore(t, url)
		ten := tenant("whs")
		ctx := admin(ten)
		rc := newReceiver(t, nil)
		e := start(t, st, fast(), ten)
		ep, secret := endpoint(t, e.Service(), ctx, rc.srv.URL+"/hook", model.WebhookIncidentCreated, model.WebhookIncidentUpdated)
		rc.trust(secret)

		inc := createIncident(t, st, ctx, "database down")
		e.Wake()
		got := rc.waitFor(t, 1)[0]
		if got.Verified[0] != nil || got.ID == "" || got.Timestamp == "" || !strings.HasPrefix(got.Signature, "v1,") || strings.Contains(got.Signature, " ") {
			t.Fatalf("received %+v", got)
		}
		m := got.msg(t)
		data, _ := m["data"].(map[string]any)
		if m["type"] != "incident.created" || m["timestamp"] == "" || data["id"] != inc.ID || data["title"] != "database down" ||
			data["severity"] != "high" || data["status"] != "open" {
			t.Fatalf("body %s", got.Body)
		}
		for _, k := range []string{"description", "service", "tags", "occurredAt", "resolvedAt", "createdAt", "updatedAt"} {
			if _, ok := data[k]; !ok {
				t.Errorf("data lacks %s: %s", k, got.Body)
			}
		}
		eventually(t, "the delivery is recorded", func() bool { return settled(t, e.Service(), ctx, ep.ID) })
		page, err := e.Service().Deliveries(ctx, ep.ID, model.WebhookDeliveryQuery{Limit: 10})
		if err != nil || len(page.Items) != 1 || page.Items[0].State != model.WebhookDelivered || page.Items[0].LastStatus != 200 ||
			page.Items[0].ResponseExcerpt != "ok from the receiver" || page.Items[0].MessageID != got.ID {
			t.Fatalf("log %+v %v", page.Items[0], err)
		}

		// Rotation: the old and the new secret both sign, two signatures.
		_, secret2, err := e.Service().RotateSecret(ctx, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		rc.trust(secret2)
		if _, _, err := st.Incidents().Update(ctx, inc.ID, model.IncidentPatch{Status: model.Some(model.StatusInvestigating)}); err != nil {
			t.Fatal(err)
		}
		e.Wake()
		got = rc.waitFor(t, 2)[1]
		if len(strings.Fields(got.Signature)) != 2 || got.Verified[0] != nil || got.Verified[1] != nil || got.msg(t)["type"] != "incident.updated" {
			t.Fatalf("after rotation %+v", got)
		}

		// A test message: signed alike, type webhook.test.
		if _, err := e.Service().SendTest(ctx, ep.ID); err != nil {
			t.Fatal(err)
		}
		got = rc.waitFor(t, 3)[2]
		if got.msg(t)["type"] != "webhook.test" || got.Verified[1] != nil {
			t.Fatalf("test %+v", got)
		}
	})
}

// Rule: a receiver answering 500 twice, then 200, gets the message three
// times with the same webhook-id, and the next message only after that.
func TestRetriesKeepTheID(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		st := openStore(t, url)
		ten := tenant("whr")
		ctx := admin(ten)
		rc := newReceiver(t, func(n int, _ *http.Request) int {
			if n <= 2 {
				return http.StatusInternalServerError
			}
			return http.StatusNoContent
		})
		e := start(t, st, fast(), ten)
		ep, secret := endpoint(t, e.Service(), ctx, rc.srv.URL, model.WebhookIncidentCreated)
		rc.trust(secret)
		first := createIncident(t, st, ctx, "first")
		second := createIncident(t, st, ctx, "second")
		e.Wake()
		got := rc.waitFor(t, 4)
		for i, r := range got {
			if r.Verified[0] != nil {
				t.Errorf("request %d: %v", i, r.Verified[0])
			}
		}
		if got[0].ID != got[1].ID || got[1].ID != got[2].ID || got[3].ID == got[0].ID {
			t.Errorf("ids %s %s %s %s", got[0].ID, got[1].ID, got[2].ID, got[3].ID)
		}
		for i, want := range []string{first.ID, first.ID, first.ID, second.ID} {
			if !strings.Contains(string(got[i].Body), want) {
				t.Errorf("request %d: %s, want %s", i, got[i].Body, want)
			}
		}
		eventually(t, "both recorded", func() bool { return settled(t, e.Service(), ctx, ep.ID) })
		page, _ := e.Service().Deliveries(ctx, ep.ID, model.WebhookDeliveryQuery{Limit: 10})
		last := page.Items[len(page.Items)-1]
		if last.Attempts != 3 || last.State != model.WebhookDelivered || last.LastStatus != 204 {
			t.Errorf("first delivery %+v", last)
		}
	})
}

// Rule: 410 Gone disables the endpoint, with the reason recorded; retries
// exhausted abandon a delivery and the next one goes.
func TestGoneDisables(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		st := openStore(t, url)
		ten := tenant("whg")
		ctx := admin(ten)
		rc := newReceiver(t, func(int, *http.Request) int { return http.StatusGone })
		e := start(t, st, fast(), ten)
		ep, _ := endpoint(t, e.Service(), ctx, rc.srv.URL, model.WebhookIncidentCreated)
		createIncident(t, st, ctx, "gone")
		e.Wake()
		rc.waitFor(t, 1)
		eventually(t, "the endpoint is disabled", func() bool {
			got, err := e.Service().Get(ctx, ep.ID)
			return err == nil && !got.Enabled && got.DisabledReason == "the receiver answered 410 Gone"
		})
		trail, err := st.Audit().List(ctx, model.AuditQuery{ResourceID: ep.ID, Limit: 10})
		if err != nil || trail.Items[0].Action != model.AuditWebhookUpdate || trail.Items[0].ActorID != "system" {
			t.Errorf("audit %+v %v", trail.Items[0], err)
		}

		// Exhausted retries: abandoned, the next one goes.
		rc2 := newReceiver(t, func(int, *http.Request) int { return http.StatusServiceUnavailable })
		ep2, _ := endpoint(t, e.Service(), ctx, rc2.srv.URL, model.WebhookIncidentCreated)
		createIncident(t, st, ctx, "never accepted")
		e.Wake()
		rc2.waitFor(t, 4) // the first attempt and three retries
		eventually(t, "abandoned", func() bool { return settled(t, e.Service(), ctx, ep2.ID) })
		page, _ := e.Service().Deliveries(ctx, ep2.ID, model.WebhookDeliveryQuery{Limit: 10})
		if d := page.Items[0]; d.State != model.WebhookFailed || d.Attempts != 4 || d.LastStatus != 503 || d.NextAttemptAt != nil {
			t.Errorf("abandoned %+v", d)
		}
	})
}

// Rule: two engines over one PostgreSQL deliver every event once between
// them, each incident's events in order.
func TestTwoEngines(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		if strings.HasPrefix(url, "sqlite") {
			t.Skip("one process per SQLite file")
		}
		a, b := openStore(t, url), openStore(t, url)
		ten := tenant("wh2")
		ctx := admin(ten)
		rc := newReceiver(t, nil)
		ea, eb := start(t, a, fast(), ten), start(t, b, fast(), ten)
		ep, _ := endpoint(t, ea.Service(), ctx, rc.srv.URL, model.WebhookIncidentCreated, model.WebhookIncidentUpdated)
		const incidents, updates = 5, 3
		for i := range incidents {
			inc := createIncident(t, a, ctx, fmt.Sprintf("i%d", i))
			for u := range updates {
				writer := a
				if u%2 == 0 {
					writer = b
				}
				if _, _, err := writer.Incidents().Update(ctx, inc.ID, model.IncidentPatch{Title: model.Some(fmt.Sprintf("i%d u%d", i, u))}); err != nil {
					t.Fatal(err)
				}
			}
			ea.Wake()
			eb.Wake()
		}
		total := incidents * (1 + updates)
		rc.waitFor(t, total)
		eventually(t, "all recorded", func() bool { return settled(t, ea.Service(), ctx, ep.ID) })
		got := rc.snapshot()
		ids := map[string]bool{}
		titles := map[string][]string{}
		for _, r := range got {
			ids[r.ID] = true
			data := r.msg(t)["data"].(map[string]any)
			titles[data["id"].(string)] = append(titles[data["id"].(string)], data["title"].(string))
		}
		if len(got) != total || len(ids) != total {
			t.Fatalf("%d requests, %d distinct ids, want %d", len(got), len(ids), total)
		}
		for _, ts := range titles {
			want := []string{strings.Fields(ts[0])[0]}
			for u := range updates {
				want = append(want, fmt.Sprintf("%s u%d", want[0], u))
			}
			if strings.Join(ts, ",") != strings.Join(want, ",") {
				t.Errorf("order %v, want %v", ts, want)
			}
		}
	})
}

// Rule: an engine stopped with a delivery in flight, and events committed
// while none runs, lose nothing: a new engine (a new process) delivers
// them all, in order, the interrupted one with the same webhook-id.
func TestRestartLosesNothing(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		st := openStore(t, url)
		ten := tenant("whx")
		ctx := admin(ten)
		held := make(chan struct{})
		rc := newReceiver(t, func(n int, r *http.Request) int {
			if n == 1 {
				close(held)
				<-r.Context().Done() // hang until the engine gives up
			}
			return http.StatusOK
		})
		e := start(t, st, fast(), ten)
		ep, _ := endpoint(t, e.Service(), ctx, rc.srv.URL, model.WebhookIncidentCreated)
		first := createIncident(t, st, ctx, "first")
		e.Wake()
		<-held
		e.stop()
		second := createIncident(t, st, ctx, "second")
		third := createIncident(t, st, ctx, "third")

		st2 := openStore(t, url)
		e2 := start(t, st2, fast(), ten)
		e2.Wake()
		rc.waitFor(t, 4)
		eventually(t, "all recorded", func() bool { return settled(t, e2.Service(), ctx, ep.ID) })
		got := rc.snapshot()
		if len(got) != 4 || got[0].ID != got[1].ID {
			t.Fatalf("%d requests; first ids %s %s", len(got), got[0].ID, got[1].ID)
		}
		for i, want := range []string{first.ID, first.ID, second.ID, third.ID} {
			if !strings.Contains(string(got[i].Body), want) {
				t.Errorf("request %d: %s, want %s", i, got[i].Body, want)
			}
		}
	})
}

// Rule: another tenant's events never reach this tenant's endpoints.
func TestTenantIsolation(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		st := openStore(t, url)
		ta, tb := tenant("wha"), tenant("whb")
		ra, rb := newReceiver(t, nil), newReceiver(t, nil)
		e := start(t, st, fast(), ta, tb)
		epa, _ := endpoint(t, e.Service(), admin(ta), ra.srv.URL, model.WebhookIncidentCreated)
		epb, _ := endpoint(t, e.Service(), admin(tb), rb.srv.URL, model.WebhookIncidentCreated)
		ia := createIncident(t, st, admin(ta), "a's")
		ib := createIncident(t, st, admin(tb), "b's")
		e.Wake()
		eventually(t, "both recorded", func() bool {
			return settled(t, e.Service(), admin(ta), epa.ID) && settled(t, e.Service(), admin(tb), epb.ID)
		})
		ga, gb := ra.snapshot(), rb.snapshot()
		if len(ga) != 1 || !strings.Contains(string(ga[0].Body), ia.ID) || len(gb) != 1 || !strings.Contains(string(gb[0].Body), ib.ID) {
			t.Fatalf("a got %d, b got %d", len(ga), len(gb))
		}
	})
}

// Rule: component.status reports a component's status when an incident
// change moves it, once per move; filters by label apply.
func TestComponentStatus(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		st := openStore(t, url)
		ten := tenant("whc")
		ctx := admin(ten)
		rc := newReceiver(t, nil)
		e := start(t, st, fast(), ten)
		eu, err := st.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some("api"), Labels: model.Some(map[string]string{"region": "eu"})})
		if err != nil {
			t.Fatal(err)
		}
		us, err := st.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some("api"), Labels: model.Some(map[string]string{"region": "us"})})
		if err != nil {
			t.Fatal(err)
		}
		ep, _, err := e.Service().Create(ctx, model.WebhookEndpointInput{URL: model.Some(rc.srv.URL), Events: model.Some([]model.WebhookEventType{model.WebhookComponentStatus}),
			Filter: model.Some(model.WebhookFilter{Labels: map[string]string{"region": "eu"}})})
		if err != nil {
			t.Fatal(err)
		}
		inc, _, err := st.Incidents().Create(ctx, model.IncidentCreate{Title: "slow", Severity: model.SeverityHigh, OccurredAt: time.Now(),
			Affects: []model.AffectInput{{ComponentID: eu.ID, TypeID: model.ImpactMajor.TypeID()}, {ComponentID: us.ID, TypeID: model.ImpactMajor.TypeID()}}})
		if err != nil {
			t.Fatal(err)
		}
		// A change that moves no component: no message.
		if _, _, err := st.Incidents().Update(ctx, inc.ID, model.IncidentPatch{Title: model.Some("slower")}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.Incidents().Update(ctx, inc.ID, model.IncidentPatch{Status: model.Some(model.StatusResolved)}); err != nil {
			t.Fatal(err)
		}
		e.Wake()
		rc.waitFor(t, 2)
		eventually(t, "recorded", func() bool { return settled(t, e.Service(), ctx, ep.ID) })
		got := rc.snapshot()
		if len(got) != 2 {
			t.Fatalf("%d messages", len(got))
		}
		for i, want := range []string{"major", "operational"} {
			m := got[i].msg(t)
			data := m["data"].(map[string]any)
			comp := data["component"].(map[string]any)
			if m["type"] != "component.status" || data["status"] != want || comp["id"] != eu.ID || data["incidentId"] != inc.ID {
				t.Errorf("message %d: %s", i, got[i].Body)
			}
		}
	})
}

// Rule: without AllowPrivateTargets the client refuses, when it dials,
// loopback, private, link-local and unspecified addresses, also reached
// through a name; and an endpoint stored with such a URL is not sent to.
func TestSSRFGuard(t *testing.T) {
	rc := newReceiver(t, nil)
	port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":")+1:]
	e := New(nil, Options{Timeout: 2 * time.Second})
	for _, target := range []string{"http://127.0.0.1:" + port, "http://localhost:" + port, "http://[::1]:" + port,
		"http://10.0.0.1:80", "http://169.254.169.254/latest/meta-data", "http://0.0.0.0:" + port, "http://[::ffff:127.0.0.1]:" + port} {
		resp, err := e.client.Post(target, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: sent", target)
			continue
		}
		if !errors.Is(err, errForbiddenTarget) {
			t.Errorf("%s: %v", target, err)
		}
	}
	if n := len(rc.snapshot()); n != 0 {
		t.Errorf("the receiver got %d requests", n)
	}

	each(t, func(t *testing.T, url string) {
		st := openStore(t, url)
		ten := tenant("whp")
		ctx := admin(ten)
		opt := fast()
		opt.AllowPrivateTargets = false
		opt.Schedule = []time.Duration{}
		e := start(t, st, opt, ten)
		// Stored while private targets were allowed (a development set-up).
		ep, _ := endpoint(t, st.Webhooks(true), ctx, rc.srv.URL, model.WebhookIncidentCreated)
		createIncident(t, st, ctx, "private")
		e.Wake()
		eventually(t, "abandoned", func() bool { return settled(t, e.Service(), ctx, ep.ID) })
		page, _ := e.Service().Deliveries(ctx, ep.ID, model.WebhookDeliveryQuery{Limit: 10})
		if d := page.Items[0]; d.State != model.WebhookFailed || d.LastStatus != 0 || d.LastError == "" {
			t.Errorf("delivery %+v", d)
		}
		if n := len(rc.snapshot()); n != 0 {
			t.Errorf("the receiver got %d requests", n)
		}
	})
}

// Rule: a maintenance window sends maintenance.created when created,
// maintenance.started once its start passes and maintenance.ended once its
// end passes, each once and in order, with the window as the REST door
// shows it; a window deleted sends maintenance.ended with cancelled; the
// component filter applies; other tenants' endpoints hear nothing.
func TestMaintenanceMessages(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		st := openStore(t, url)
		ten, other := tenant("whm"), tenant("whm")
		ctx := admin(ten)
		rc, rcOther, rcFiltered := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
		e := start(t, st, fast(), ten, other)
		api, err := st.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some("api")})
		if err != nil {
			t.Fatal(err)
		}
		db, err := st.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some("db")})
		if err != nil {
			t.Fatal(err)
		}
		all := []model.WebhookEventType{model.WebhookMaintenanceCreated, model.WebhookMaintenanceStarted, model.WebhookMaintenanceEnded}
		if _, _, err := e.Service().Create(ctx, model.WebhookEndpointInput{URL: model.Some(rc.srv.URL), Events: model.Some(all)}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.Service().Create(ctx, model.WebhookEndpointInput{URL: model.Some(rcFiltered.srv.URL), Events: model.Some(all),
			Filter: model.Some(model.WebhookFilter{Components: []string{db.ID}})}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.Service().Create(admin(other), model.WebhookEndpointInput{URL: model.Some(rcOther.srv.URL), Events: model.Some(all)}); err != nil {
			t.Fatal(err)
		}
		begin := time.Now().Add(time.Second).Truncate(time.Millisecond)
		soon, err := st.Maintenance().Create(ctx, model.MaintenanceInput{Description: "upgrade", StartsAt: begin, EndsAt: begin.Add(time.Second),
			ComponentIDs: []string{api.ID}})
		if err != nil {
			t.Fatal(err)
		}
		later, err := st.Maintenance().Create(ctx, model.MaintenanceInput{Description: "move", StartsAt: begin.Add(time.Hour), EndsAt: begin.Add(2 * time.Hour),
			ComponentIDs: []string{api.ID, db.ID}})
		if err != nil {
			t.Fatal(err)
		}
		e.Wake()
		rc.waitFor(t, 2) // both created
		if err := st.Maintenance().Delete(ctx, later.ID); err != nil {
			t.Fatal(err)
		}
		got := rc.waitFor(t, 5)
		type seen struct{ typ, id string }
		var order []seen
		for _, r := range got {
			m := r.msg(t)
			data := m["data"].(map[string]any)
			order = append(order, seen{m["type"].(string), data["id"].(string)})
			if data["id"] == soon.ID && (data["description"] != "upgrade" || data["cancelled"] != false ||
				data["startsAt"] != soon.StartsAt.UTC().Format(time.RFC3339Nano)) {
				t.Errorf("data %s", r.Body)
			}
			if m["type"] == "maintenance.ended" && data["id"] == later.ID && data["cancelled"] != true {
				t.Errorf("a deleted window's end is not cancelled: %s", r.Body)
			}
			if m["type"] == "maintenance.started" && m["timestamp"] != soon.StartsAt.UTC().Format(time.RFC3339Nano) {
				t.Errorf("started at %v, want the window's start", m["timestamp"])
			}
		}
		// Per window, in order; the two windows' messages interleave by time.
		for _, w := range []struct {
			id    string
			types []string
		}{{soon.ID, []string{"maintenance.created", "maintenance.started", "maintenance.ended"}},
			{later.ID, []string{"maintenance.created", "maintenance.ended"}}} {
			var types []string
			for _, s := range order {
				if s.id == w.id {
					types = append(types, s.typ)
				}
			}
			if !slices.Equal(types, w.types) {
				t.Errorf("window %s: %v, want %v", w.id, types, w.types)
			}
		}
		// The filtered endpoint hears only the window with its component.
		f := rcFiltered.waitFor(t, 2)
		for _, r := range f {
			if id := r.msg(t)["data"].(map[string]any)["id"]; id != later.ID {
				t.Errorf("the component filter let %v through", id)
			}
		}
		e.Wake()
		time.Sleep(100 * time.Millisecond) // a duplicate or a leak would have arrived by now
		if n := len(rc.snapshot()); n != 5 {
			t.Errorf("%d messages, want 5", n)
		}
		if n := len(rcFiltered.snapshot()); n != 2 {
			t.Errorf("filtered: %d messages, want 2", n)
		}
		if n := len(rcOther.snapshot()); n != 0 {
			t.Errorf("another tenant's endpoint got %d messages", n)
		}
	})
}

// Rule: while recording outcomes fails, the recorder tries again rather
// than give the run back: the delivery is sent once, not again at once
// behind the schedule's back, and is recorded once the database answers.
func TestRecordingRetried(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		st := openStore(t, url)
		ten := tenant("whrec")
		ctx := admin(ten)
		rc := newReceiver(t, nil)
		var failures atomic.Int32
		failures.Store(3)
		opt := fast()
		opt.Tenants = func() []string { return []string{ten} }
		e := New(st, opt)
		e.recordFault = func() error {
			if failures.Add(-1) >= 0 {
				return errors.New("database away")
			}
			return nil
		}
		runCtx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.Run(runCtx) }()
		t.Cleanup(func() { cancel(); <-done })

		ep, _ := endpoint(t, e.Service(), ctx, rc.srv.URL, model.WebhookIncidentCreated)
		createIncident(t, st, ctx, "recorded late")
		e.Wake()
		rc.waitFor(t, 1)
		eventually(t, "the delivery is recorded", func() bool { return settled(t, e.Service(), ctx, ep.ID) })
		page, err := e.Service().Deliveries(ctx, ep.ID, model.WebhookDeliveryQuery{Limit: 10})
		if err != nil || len(page.Items) != 1 || page.Items[0].State != model.WebhookDelivered || page.Items[0].Attempts != 1 {
			t.Fatalf("log %+v %v", page, err)
		}
		if n := len(rc.snapshot()); n != 1 || failures.Load() >= 0 {
			t.Errorf("the receiver got %d requests (failures left %d), want 1", n, failures.Load())
		}
	})
}
