package graph_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// world is one tenant's resources of every kind, each named with the
// tenant's tag, so that another tenant's reads can be searched for them.
type world struct {
	tenant, key, tag string
	// ids of the tenant's resources; severity is addressed by name.
	incident, component, impactType, severity, maintenance, future, apiKey string
	// event is an id from the tenant's event stream.
	event string
}

// ids lists every id and name that only this tenant may ever see.
func (w world) ids() []string {
	return []string{w.incident, w.component, w.impactType, w.severity, w.maintenance, w.future, w.apiKey, w.tag}
}

var isolationScopes = []model.Scope{model.ScopeIncidentsWrite, model.ScopeComponentsWrite, model.ScopeAPIKeysAdmin, model.ScopeAuditRead}

// build gives a tenant one resource of every kind. Both tenants use the same
// names where a name must be unique ("Edge", "Shared kind", "Shared level"):
// uniqueness is per tenant.
func build(t *testing.T, s *apitest.Server, name string) world {
	t.Helper()
	w := world{tenant: apitest.Tenant(name), tag: "Tag" + strings.ToUpper(name) + model.RandomString(6, "abcdefghij")}
	w.key = s.Key(w.tenant, isolationScopes...)
	do := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		res := s.Do(method, path, w.key, body).Expect(t, want)
		if len(res.Body) == 0 {
			return nil
		}
		return res.Map(t)
	}
	now := time.Now().UTC()
	w.component = do("POST", "/v1/components", map[string]any{"displayName": "Edge", "labels": map[string]string{"region": "eu", "owner": w.tag}}, 201)["id"].(string)
	do("POST", "/v1/impact-types", map[string]any{"displayName": "Shared kind"}, 201)
	w.impactType = do("POST", "/v1/impact-types", map[string]any{"displayName": "Kind " + w.tag}, 201)["id"].(string)
	do("POST", "/v1/severities", map[string]any{"displayName": "Shared level", "value": 45}, 201)
	w.severity = "Level " + w.tag
	do("POST", "/v1/severities", map[string]any{"displayName": w.severity, "value": 46}, 201)
	do("POST", "/v1/phases", map[string]any{"phases": []string{"Triage " + w.tag, "Fixed"}}, 201)
	w.incident = do("POST", "/v1/incidents", map[string]any{"title": "Outage " + w.tag, "severity": "high",
		"occurredAt": now.Add(-time.Hour).Format(time.RFC3339), "tags": []string{w.tag},
		"affects": []map[string]any{{"reference": w.component, "type": w.impactType, "severity": 40}}}, 201)["id"].(string)
	do("POST", "/v1/incidents/"+w.incident+"/updates", map[string]any{"displayName": "Investigating", "description": "by " + w.tag}, 201)
	w.maintenance = do("POST", "/v1/maintenance", map[string]any{"description": "Now " + w.tag, "components": []string{w.component},
		"startsAt": now.Add(-time.Minute).Format(time.RFC3339), "endsAt": now.Add(time.Hour).Format(time.RFC3339)}, 201)["id"].(string)
	w.future = do("POST", "/v1/maintenance", map[string]any{"description": "Later " + w.tag, "components": []string{w.component},
		"startsAt": now.Add(2 * time.Hour).Format(time.RFC3339), "endsAt": now.Add(3 * time.Hour).Format(time.RFC3339)}, 201)["id"].(string)
	w.apiKey = do("POST", "/v1/api-keys", map[string]any{"name": "key " + w.tag, "scopes": []string{"incidents:read"}}, 201)["id"].(string)
	do("PUT", "/v1/status/publication", map[string]any{"public": true}, 204)
	// The stream's first event is this tenant's first incident.
	r, stop := sseOpen(t, s, w.key, "/v1/incidents/events", "Last-Event-ID", model.StreamStart)
	defer stop()
	w.event, _, _ = sseNext(t, r)
	if w.event == "" {
		t.Fatal("the tenant's stream gave no event id")
	}
	return w
}

// refusal is a problem+json body.
type refusal struct {
	Error   string
	Details []struct{ Field, Message string }
}

// wantRefusal checks a refusal's status and name.
func wantRefusal(t *testing.T, res *apitest.Response, status int, name string) refusal {
	t.Helper()
	var p refusal
	res.Refusal(t, &p)
	if res.Status != status || p.Error != name {
		t.Errorf("%d %s, want %d %s: %s", res.Status, p.Error, status, name, res.Body)
	}
	return p
}

// report sends a monitoring report and returns what it led to.
func report(t *testing.T, s *apitest.Server, key, name, impact string) string {
	t.Helper()
	body := map[string]any{"name": name, "impact": impact}
	if name == "Edge" {
		body["attributes"] = []map[string]string{{"name": "region", "value": "eu"}}
	}
	res := s.Do("POST", "/v1/component_status", key, body)
	if res.Status != 200 && res.Status != 201 {
		t.Fatalf("report %s %s: %d %s", name, impact, res.Status, res.Body)
	}
	return string(res.Body)
}

// TestTenantIsolation: one tenant's resources of every kind are invisible and
// untouchable to another tenant through every read, write, list, count,
// stream and public page of both doors, on both stores; and nothing the
// other tenant tried changed them.
func TestTenantIsolation(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		a, o := build(t, s, "a"), build(t, s, "b")
		// Before any probe, A's own view, to compare with after.
		before := map[string]string{}
		owned := []string{"/v1/incidents/" + a.incident, "/v1/incidents/" + a.incident + "/updates", "/v1/incidents/" + a.incident + "/affects",
			"/v1/components/" + a.component, "/v1/impact-types/" + a.impactType, "/v1/severities/" + url.PathEscape(a.severity),
			"/v1/api-keys/" + a.apiKey, "/v1/maintenance", "/v1/phases"}
		for _, p := range owned {
			before[p] = string(s.Do("GET", p, a.key, nil).Expect(t, 200).Body)
		}

		t.Run("rest reads and writes by id", func(t *testing.T) {
			s := s.With(t)
			for _, c := range []struct {
				method, path string
				body         any
			}{
				{"GET", "/v1/incidents/" + a.incident, nil},
				{"PATCH", "/v1/incidents/" + a.incident, map[string]any{"title": "mine now"}},
				{"GET", "/v1/incidents/" + a.incident + "/updates", nil},
				{"POST", "/v1/incidents/" + a.incident + "/updates", map[string]any{"displayName": "Hijacked"}},
				{"GET", "/v1/incidents/" + a.incident + "/affects", nil},
				{"DELETE", "/v1/incidents/" + a.incident, nil},
				{"GET", "/v1/components/" + a.component, nil},
				{"PATCH", "/v1/components/" + a.component, map[string]any{"displayName": "mine now"}},
				{"DELETE", "/v1/components/" + a.component, nil},
				{"GET", "/v1/impact-types/" + a.impactType, nil},
				{"PATCH", "/v1/impact-types/" + a.impactType, map[string]any{"displayName": "mine now"}},
				{"DELETE", "/v1/impact-types/" + a.impactType, nil},
				{"GET", "/v1/severities/" + url.PathEscape(a.severity), nil},
				{"PATCH", "/v1/severities/" + url.PathEscape(a.severity), map[string]any{"value": 47}},
				{"DELETE", "/v1/severities/" + url.PathEscape(a.severity), nil},
				{"GET", "/v1/api-keys/" + a.apiKey, nil},
				{"POST", "/v1/api-keys/" + a.apiKey + "/rotate", map[string]any{}},
				{"DELETE", "/v1/api-keys/" + a.apiKey, nil},
				{"DELETE", "/v1/maintenance/" + a.maintenance, nil},
				{"DELETE", "/v1/maintenance/" + a.future, nil},
			} {
				res := s.Do(c.method, c.path, o.key, c.body)
				if res.Status != 404 || res.Map(t)["error"] != "NotFound" {
					t.Errorf("%s %s as another tenant: %d %s", c.method, c.path, res.Status, res.Body)
				}
			}
			// References to A's resources from B's writes are refused as unknown.
			// References to A's resources from B's writes are refused as
			// unknown, naming the field; the same body with B's own resource
			// is accepted (and undone), so the refusal is the tenant check.
			now := time.Now().UTC()
			incident := func(comp, typ string) map[string]any {
				return map[string]any{"title": "x", "severity": "low", "occurredAt": now.Format(time.RFC3339),
					"affects": []map[string]any{{"reference": comp, "type": typ, "severity": 10}}}
			}
			window := func(comp string) map[string]any {
				return map[string]any{"description": "x", "components": []string{comp},
					"startsAt": now.Format(time.RFC3339), "endsAt": now.Add(time.Hour).Format(time.RFC3339)}
			}
			for _, c := range []struct {
				path        string
				theirs, own any
				status      int
				name, field string
			}{
				{"/v1/incidents", incident(a.component, "imp_major"), incident(o.component, "imp_major"), 422, "BusinessRuleViolation", "affects[0].reference"},
				{"/v1/incidents", incident(o.component, a.impactType), incident(o.component, o.impactType), 422, "BusinessRuleViolation", "affects[0].type"},
				{"/v1/maintenance", window(a.component), window(o.component), 400, "ValidationError", "components"},
			} {
				p := wantRefusal(t, s.Do("POST", c.path, o.key, c.theirs), c.status, c.name)
				if len(p.Details) != 1 || p.Details[0].Field != c.field {
					t.Errorf("POST %s naming another tenant's resource: details %+v, want %s", c.path, p.Details, c.field)
				}
				id := s.Do("POST", c.path, o.key, c.own).Expect(t, 201).Map(t)["id"].(string)
				s.Do("DELETE", c.path+"/"+id, o.key, nil).Expect(t, 204)
			}
			// A monitoring report names a component: B's "Edge" is B's own
			// (under B's maintenance window, so the report lands there).
			if got := report(t, s, o.key, "Edge", "outage"); !strings.Contains(got, o.component) || !strings.Contains(got, o.maintenance) {
				t.Errorf("B's report on its Edge: %s", got)
			}
		})

		t.Run("rest lists, counts, summaries and public pages", func(t *testing.T) {
			s := s.With(t)
			for _, c := range []struct {
				path string
				mine string // what B must see, so that the list is not empty by accident
			}{
				{"/v1/incidents", o.incident},
				{"/v1/incidents?keyword=Outage", o.incident},
				{"/v1/incidents?keyword=" + a.tag, ""},
				{"/v1/incidents?sort=title:asc&limit=100", o.incident},
				{"/v1/incidents/" + o.incident + "/updates", o.tag},
				{"/v1/incidents/" + o.incident + "/affects", o.component},
				{"/v1/components", o.component},
				{"/v1/components?name=Edge", o.component},
				{"/v1/component_status", o.component},
				{"/v1/impact-types", o.impactType},
				{"/v1/severities", o.severity},
				{"/v1/phases", o.tag},
				{"/v1/api-keys", o.apiKey},
				{"/v1/audit-events?limit=100", o.incident},
				{"/v1/audit-events?resourceId=" + a.incident, ""},
				{"/v1/maintenance", o.future},
				{"/v1/status", o.future},
				{"/v1/public/" + o.tenant + "/status", o.future},
			} {
				key := o.key
				if strings.HasPrefix(c.path, "/v1/public/") {
					key = ""
				}
				body := string(s.Do("GET", c.path, key, nil).Expect(t, 200).Body)
				for _, id := range a.ids() {
					if strings.Contains(body, id) {
						t.Errorf("GET %s as another tenant shows %s: %.300s", c.path, id, body)
					}
				}
				if c.mine != "" && !strings.Contains(body, c.mine) {
					t.Errorf("GET %s does not show the tenant's own %s: %.300s", c.path, c.mine, body)
				}
			}
			// Counts are the tenant's own.
			for path, want := range map[string]float64{"/v1/incidents": 1, "/v1/incidents?keyword=Outage": 1, "/v1/incidents?keyword=" + a.tag: 0} {
				pg := s.Do("GET", path, o.key, nil).Map(t)["pagination"].(map[string]any)
				if pg["totalCount"] != want {
					t.Errorf("GET %s: totalCount %v, want %v", path, pg["totalCount"], want)
				}
			}
			// A's public page is A's.
			body := string(s.Do("GET", "/v1/public/"+a.tenant+"/status", "", nil).Expect(t, 200).Body)
			if !strings.Contains(body, a.future) || strings.Contains(body, o.future) {
				t.Errorf("A's public page: %.300s", body)
			}
		})

		t.Run("graphql", func(t *testing.T) {
			s := s.With(t)
			gql := func(q string, vars map[string]any) (json.RawMessage, string) {
				t.Helper()
				_, r := s.GQL(o.key, q, vars)
				return r.Data, r.Code()
			}
			// Lookups by id answer null.
			for _, q := range []string{
				fmt.Sprintf(`{ incident(id: %q) { id } }`, a.incident),
				fmt.Sprintf(`{ component(id: %q) { id } }`, a.component),
				fmt.Sprintf(`{ apiKey(id: %q) { id } }`, a.apiKey),
				fmt.Sprintf(`{ impactType(id: %q) { id } }`, a.impactType),
				fmt.Sprintf(`{ severity(displayName: %q) { displayName } }`, a.severity),
			} {
				data, code := gql(q, nil)
				var m map[string]any
				if err := json.Unmarshal(data, &m); err != nil || code != "" || len(m) != 1 {
					t.Fatalf("%s: %s %s %v", q, data, code, err)
				}
				for field, v := range m {
					if v != nil {
						t.Errorf("%s as another tenant: %s = %v", q, field, v)
					}
				}
			}
			// Writes by id are NotFound.
			for _, q := range []string{
				fmt.Sprintf(`mutation { updateIncident(id: %q, input: {title: "mine now"}) { id } }`, a.incident),
				fmt.Sprintf(`mutation { deleteIncident(id: %q) { id } }`, a.incident),
				fmt.Sprintf(`mutation { addIncidentUpdate(incidentId: %q, input: {displayName: "Hijacked"}) { order } }`, a.incident),
				fmt.Sprintf(`mutation { updateComponent(id: %q, input: {displayName: "mine now"}) { id } }`, a.component),
				fmt.Sprintf(`mutation { deleteComponent(id: %q) }`, a.component),
				fmt.Sprintf(`mutation { updateImpactType(id: %q, input: {displayName: "mine now"}) { id } }`, a.impactType),
				fmt.Sprintf(`mutation { deleteImpactType(id: %q) }`, a.impactType),
				fmt.Sprintf(`mutation { updateSeverity(displayName: %q, input: {value: 47}) { value } }`, a.severity),
				fmt.Sprintf(`mutation { deleteSeverity(displayName: %q) }`, a.severity),
				fmt.Sprintf(`mutation { revokeApiKey(id: %q) { id } }`, a.apiKey),
				fmt.Sprintf(`mutation { rotateApiKey(id: %q) { key } }`, a.apiKey),
				fmt.Sprintf(`mutation { deleteMaintenance(id: %q) }`, a.maintenance),
			} {
				if data, code := gql(q, nil); code != "NotFound" {
					t.Errorf("%s as another tenant: %s %s", q, code, data)
				}
			}
			// References to A's resources are refused, naming the field.
			for _, c := range []struct{ q, code, field string }{
				{fmt.Sprintf(`mutation { createIncident(input: {title: "x", severity: LOW, occurredAt: "2024-01-01T00:00:00Z", affects: [{reference: %q, type: "imp_major"}]}) { id } }`, a.component),
					"BusinessRuleViolation", "affects[0].reference"},
				{fmt.Sprintf(`mutation { createIncident(input: {title: "x", severity: LOW, occurredAt: "2024-01-01T00:00:00Z", affects: [{reference: %q, type: %q, severity: 10}]}) { id } }`, o.component, a.impactType),
					"BusinessRuleViolation", "affects[0].type"},
				{fmt.Sprintf(`mutation { createMaintenance(input: {description: "x", startsAt: "2030-01-01T00:00:00Z", endsAt: "2030-01-02T00:00:00Z", components: [%q]}) { id } }`, a.component),
					"ValidationError", "components"},
			} {
				_, r := s.GQL(o.key, c.q, nil)
				details, _ := json.Marshal(r.Errors)
				if r.Code() != c.code || !strings.Contains(string(details), `"field":"`+c.field+`"`) {
					t.Errorf("%s as another tenant: %s, want %s on %s", c.q, details, c.code, c.field)
				}
			}
			// Lists, counts and summaries hold only B's.
			for q, mine := range map[string]string{
				`{ incidents(first: 100) { totalCount nodes { id title tags } } }`:                        o.incident,
				`{ incidents(filter: {keyword: "Outage"}) { totalCount nodes { id } } }`:                  o.incident,
				`{ components { nodes { id labels { value } activelyAffectedBy { incident { id } } } } }`: o.component,
				`{ apiKeys { id name } }`:                                                              o.apiKey,
				`{ auditEvents(first: 100) { nodes { resourceId } } }`:                                 o.incident,
				`{ status { components { id } openIncidents { id } maintenance { id description } } }`: o.future,
				`{ maintenance { id components { id } } }`:                                             o.maintenance,
				`{ impactTypes { id displayName } }`:                                                   o.impactType,
				`{ severities { displayName } }`:                                                       o.severity,
				`{ phases { phases } }`:                                                                o.tag,
				fmt.Sprintf(`{ incident(id: %q) { updates { description } affects { component { id } } } }`, o.incident): o.tag,
			} {
				data, code := gql(q, nil)
				if code != "" {
					t.Errorf("%s: %s", q, code)
					continue
				}
				for _, id := range a.ids() {
					if strings.Contains(string(data), id) {
						t.Errorf("%s as another tenant shows %s: %.300s", q, id, data)
					}
				}
				if !strings.Contains(string(data), mine) {
					t.Errorf("%s does not show the tenant's own %s: %.300s", q, mine, data)
				}
			}
			if data, _ := gql(`{ incidents { totalCount } }`, nil); string(data) != `{"incidents":{"totalCount":1}}` {
				t.Errorf("count as another tenant: %s", data)
			}
		})

		// Nothing B tried changed A's resources.
		for _, p := range owned {
			if after := string(s.Do("GET", p, a.key, nil).Expect(t, 200).Body); after != before[p] {
				t.Errorf("%s changed under another tenant's writes:\nbefore %s\nafter  %s", p, before[p], after)
			}
		}
		t.Run("streams", func(t *testing.T) {
			s := s.With(t)
			// B cannot resume from A's event id, on either door.
			if res := s.Do("GET", "/v1/incidents/events?after="+url.QueryEscape(a.event), o.key, nil); res.Status != 400 {
				t.Errorf("SSE from another tenant's event id: %d %s", res.Status, res.Body)
			}
			c, _, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": o.key})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Use(t).Subscribe("resume", subQuery, map[string]any{"after": a.event})
			if m, err := c.Next(5 * time.Second); err != nil || !strings.Contains(string(m.Payload), "ValidationError") {
				t.Errorf("WebSocket from another tenant's event id: %v %s %s", err, m.Type, m.Payload)
			}
			if m, err := c.Next(5 * time.Second); err != nil || m.Type != "complete" || m.ID != "resume" {
				t.Errorf("after the refused resume: %v %s %s", err, m.Type, m.Payload)
			}
			// Live: B's streams carry B's writes and none of A's. A writes
			// first, B after; B's first event on each stream must be B's.
			c.Subscribe("inc", subQuery, nil)
			c2, _, err := s.DialWS(apitest.LegacyWS, map[string]any{"X-API-Key": o.key})
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			c2.Use(t).Subscribe("cmp", `subscription { componentStatusChanged { component { id } status } }`, nil)
			sse, stop := sseOpen(t, s, o.key, "/v1/incidents/events")
			defer stop()
			csse, cstop := sseOpen(t, s, o.key, "/v1/components/events")
			defer cstop()
			s.WaitSubscriptions(4)
			fresh := func(w world) string { // a component whose first report changes its status
				return s.Do("POST", "/v1/components", w.key, map[string]any{"displayName": "Fresh"}).Expect(t, 201).Map(t)["id"].(string)
			}
			aFresh, oFresh := fresh(a), fresh(o)
			s.Do("PATCH", "/v1/incidents/"+a.incident, a.key, map[string]any{"severity": "critical"}).Expect(t, 200)
			report(t, s, a.key, "Fresh", "major")
			s.Do("PATCH", "/v1/incidents/"+o.incident, o.key, map[string]any{"severity": "low"}).Expect(t, 200)
			report(t, s, o.key, "Fresh", "major")
			if got := string(c.NextData("inc", 5*time.Second)); !strings.Contains(got, o.incident) {
				t.Errorf("WebSocket's first incident event is not the tenant's own: %s", got)
			}
			if _, _, d := sseNext(t, sse); d["incident"].(map[string]any)["id"] != o.incident {
				t.Errorf("SSE's first incident event is not the tenant's own: %v", d)
			}
			// Component events: B's own (its Edge may move too), until B's
			// Fresh; never one of A's.
			theirs := func(got string) bool { return strings.Contains(got, a.component) || strings.Contains(got, aFresh) }
			for got := ""; !strings.Contains(got, oFresh); {
				if got = string(c2.NextData("cmp", 5*time.Second)); theirs(got) {
					t.Fatalf("componentStatusChanged shows another tenant's: %s", got)
				}
			}
			for got := ""; !strings.Contains(got, oFresh); {
				_, _, d := sseNext(t, csse)
				body, _ := json.Marshal(d)
				if got = string(body); theirs(got) {
					t.Fatalf("the component stream shows another tenant's: %s", got)
				}
			}
		})
	})
}
