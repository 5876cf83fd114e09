package rest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

type report struct {
	ID, Title, Impact, Severity, Status string
	Created                             bool
	Components                          []struct{ ID, Impact string }
	Updates                             []struct {
		Order       int
		DisplayName string
	}
}

func ingestSetup(t *testing.T, b apitest.Backend) (*apitest.Server, string, func(name, region string) string) {
	s := apitest.Start(t, b, apitest.Config{})
	key := s.Key(apitest.Tenant("mon"), model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
	mk := func(name, region string) string {
		res := s.Do("POST", "/v1/components", key, map[string]any{"displayName": name, "labels": map[string]string{"region": region}})
		return res.Expect(t, 201).Map(t)["id"].(string)
	}
	return s, key, mk
}

func send(t *testing.T, s *apitest.Server, key, name, region string, impact any) report {
	t.Helper()
	r, err := trySend(s, key, name, region, impact)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// trySend is send for goroutines other than the test's (no t.Fatal there).
func trySend(s *apitest.Server, key, name, region string, impact any) (report, error) {
	var r report
	res, err := s.Try("POST", "/api/v1/component_status", key, map[string]any{"name": name, "impact": impact,
		"attributes": []map[string]string{{"name": "region", "value": region}}})
	if err != nil {
		return r, err
	}
	if res.Status != 201 {
		return r, fmt.Errorf("report %s/%s %v: %d %s", name, region, impact, res.Status, res.Body)
	}
	return r, json.Unmarshal(res.Body, &r)
}

func TestComponentStatusRules(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s, key, mk := ingestSetup(t, b)
		c1, c2 := mk("Component 1", "Reg1"), mk("Component 2", "Reg1")
		mk("Component 1", "Reg2")

		// No open incident: one opens, at the impact, with its severity.
		a := send(t, s, key, "Component 1", "Reg1", "minor")
		if !a.Created || a.Impact != "minor" || a.Severity != "medium" || len(a.Components) != 1 || a.Components[0].ID != c1 || len(a.Updates) != 1 {
			t.Fatalf("first report %+v", a)
		}
		// The same again, or lower: nothing changes.
		for _, imp := range []any{"minor", 0, "maintenance"} {
			if r := send(t, s, key, "Component 1", "Reg1", imp); r.ID != a.ID || r.Created || len(r.Updates) != 1 {
				t.Errorf("repeat %v: %+v", imp, r)
			}
		}
		// Another component at the same impact joins it.
		if r := send(t, s, key, "Component 2", "Reg1", 1); r.ID != a.ID || len(r.Components) != 2 {
			t.Errorf("join: %+v", r)
		}
		// Escalation with other components: moves to a new incident.
		m := send(t, s, key, "Component 2", "Reg1", "major")
		if m.ID == a.ID || !m.Created || m.Impact != "major" || len(m.Components) != 1 || m.Components[0].ID != c2 {
			t.Errorf("move to new: %+v", m)
		}
		// Escalation alone, an incident of that impact exists: moves there; the old one is closed by the system.
		r := send(t, s, key, "Component 1", "Reg1", "major")
		if r.ID != m.ID || len(r.Components) != 2 {
			t.Errorf("move to existing: %+v", r)
		}
		var old struct{ Status string }
		s.Do("GET", "/v1/incidents/"+a.ID, key, nil).JSON(t, &old)
		if old.Status != "closed" {
			t.Errorf("source not closed: %s", old.Status)
		}
		// A component an open incident affects cannot be deleted.
		wantProblem(t, s.Do("DELETE", "/v1/components/"+c1, key, nil), 409, "Conflict")
		// Escalation alone with no incident of the impact: raised in place.
		c3 := mk("Component 3", "Reg1")
		x := send(t, s, key, "Component 3", "Reg1", "minor")
		y := send(t, s, key, "Component 3", "Reg1", "outage")
		if y.ID != x.ID || y.Impact != "outage" || y.Severity != "critical" || y.Components[0].ID != c3 || y.Created {
			t.Errorf("raise: %+v", y)
		}
		// Bad reports.
		for _, body := range []map[string]any{
			{"name": "Nope", "impact": "minor"},
			{"name": "Component 1", "impact": "minor"}, // two components match without attributes
			{"name": "Component 1", "impact": "severe", "attributes": []map[string]string{{"name": "region", "value": "Reg1"}}},
			{"name": "Component 1", "impact": 7, "attributes": []map[string]string{{"name": "region", "value": "Reg1"}}},
			{"name": "Component 1", "attributes": []map[string]string{{"name": "region"}}},
		} {
			wantProblem(t, s.Do("POST", "/v1/component_status", key, body), 400, "ValidationError")
		}
		wantProblem(t, s.Do("POST", "/v1/component_status", s.Key(apitest.Tenant("x"), model.ScopeComponentsWrite),
			map[string]any{"name": "Component 1", "impact": "minor"}), 403, "Forbidden")
	})
}

// TestComponentStatusConcurrency: twenty concurrent reports of one component
// open exactly one incident; concurrent escalations never leave a component
// in two open incidents.
func TestComponentStatusConcurrency(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s, key, mk := ingestSetup(t, b)
		mk("API", "eu")
		var wg sync.WaitGroup
		ids := make(chan string, 20)
		errs := make(chan error, 32)
		for range 20 {
			wg.Go(func() {
				r, err := trySend(s, key, "API", "eu", "major")
				errs <- err
				ids <- r.ID
			})
		}
		wg.Wait()
		close(ids)
		distinct := map[string]bool{}
		for id := range ids {
			distinct[id] = true
		}
		if len(distinct) != 1 {
			t.Errorf("%d incidents for 20 identical reports", len(distinct))
		}
		// Escalations of many components at once.
		var comps []string
		for i := range 6 {
			comps = append(comps, mk(fmt.Sprint("svc", i), "eu"))
			send(t, s, key, fmt.Sprint("svc", i), "eu", "minor")
		}
		for _, imp := range []string{"major", "outage"} {
			for i := range 6 {
				wg.Go(func() {
					_, err := trySend(s, key, fmt.Sprint("svc", i), "eu", imp)
					errs <- err
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		// No component of this test is in two open incidents (the database
		// is shared: other tests' people may put a component in several).
		var twice int
		marks, args := make([]string, len(comps)), make([]any, len(comps))
		for i, c := range comps {
			marks[i], args[i] = fmt.Sprintf("$%d", i+1), c
		}
		err := s.Store.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM (SELECT a.component_id FROM incident_affects a
			JOIN incidents i ON i.id = a.incident_id WHERE i.status IN ('open', 'investigating') AND NOT i.is_deleted
			AND a.component_id IN (`+strings.Join(marks, ", ")+`) GROUP BY a.component_id HAVING count(*) > 1) dup`, args...).Scan(&twice)
		if err != nil || twice != 0 {
			t.Errorf("%d components in two open incidents (%v)", twice, err)
		}
		seen := map[string]int{}
		for i := range 6 {
			r := send(t, s, key, fmt.Sprint("svc", i), "eu", "maintenance") // no change: answers its incident
			seen[r.ID]++
			if r.Impact != "outage" || len(r.Components) == 0 {
				t.Errorf("svc%d ended at %q in %+v", i, r.Impact, r)
			}
		}
		if len(seen) != 1 {
			t.Errorf("the six components ended in %d open incidents of impact outage, want 1", len(seen))
		}
	})
}

func hs256(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	raw, _ := json.Marshal(claims)
	signing := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(raw)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + enc(mac.Sum(nil))
}

// TestMonitoringToken: the monitoring contract's shared-secret token posts component
// statuses in the configured tenant, and nothing else.
func TestMonitoringToken(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		tenant := apitest.Tenant("mon")
		s := apitest.Start(t, b, apitest.Config{Monitoring: &auth.MonitoringConfig{Secret: "dev", PayloadKey: "status_dashboard", Tenant: tenant}})
		key := s.Key(tenant, model.ScopeComponentsWrite, model.ScopeIncidentsRead)
		s.Do("POST", "/v1/components", key, map[string]any{"displayName": "Component 1", "labels": map[string]string{"region": "Reg1"}}).Expect(t, 201)
		body := map[string]any{"name": "Component 1", "impact": "minor", "attributes": []map[string]string{{"name": "region", "value": "Reg1"}}}
		good := hs256(t, "dev", map[string]any{"status_dashboard": "dummy"})
		res := s.Do("POST", "/api/v1/component_status", "", body, "Authorization", "Bearer "+good)
		if res.Status != 201 {
			t.Fatalf("monitoring token: %d %s", res.Status, res.Body)
		}
		var r report
		res.JSON(t, &r)
		if got := s.Do("GET", "/v1/incidents/"+r.ID, key, nil); got.Status != 200 {
			t.Errorf("the incident is not in the monitoring tenant: %d", got.Status)
		}
		for name, tok := range map[string]string{
			"wrong secret":   hs256(t, "other", map[string]any{"status_dashboard": "dummy"}),
			"missing claim":  hs256(t, "dev", map[string]any{"something": "else"}),
			"expired":        hs256(t, "dev", map[string]any{"status_dashboard": "x", "exp": 1}),
			"exp not a time": hs256(t, "dev", map[string]any{"status_dashboard": "x", "exp": "never"}),
			"not yet valid":  hs256(t, "dev", map[string]any{"status_dashboard": "x", "nbf": 4102444800}),
			"alg none":       "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(`{"status_dashboard":"x"}`)) + ".",
		} {
			t.Run(name, func(t *testing.T) {
				wantProblem(t, s.With(t).Do("POST", "/v1/component_status", "", body, "Authorization", "Bearer "+tok), 401, "Unauthorized")
			})
		}
		// Only the monitoring contract's endpoints accept it: component_status, and GET /api/v1/incidents.
		if r := s.Do("GET", "/api/v1/incidents", "", nil, "Authorization", "Bearer "+good); r.Status != 200 {
			t.Errorf("GET incidents with the monitoring token: %d", r.Status)
		}
		wantProblem(t, s.Do("POST", "/v1/incidents", "", map[string]any{"title": "x", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"}, "Authorization", "Bearer "+good), 401, "Unauthorized")
		wantProblem(t, s.Do("GET", "/v1/components", "", nil, "Authorization", "Bearer "+good), 401, "Unauthorized")
		// Every other route is refused whatever its path ends with, encoded or
		// not, under both prefixes (the token used to be let in by a suffix
		// test on the decoded path). The severity named "component_status"
		// exists, so a token that got through would delete it (204).
		admin := s.Key(tenant, model.ScopeComponentsWrite, model.ScopeIncidentsRead)
		s.Do("POST", "/v1/severities", admin, map[string]any{"displayName": "component_status", "value": 60}).Expect(t, 201)
		for _, probe := range []struct{ method, path string }{
			{"DELETE", "/v1/severities/component_status"},
			{"DELETE", "/api/v1/severities/component_status"},
			{"DELETE", "/v1/severities/x%2Fcomponent_status"},
			{"PATCH", "/v1/incidents/a%2Fcomponent_status"},
			{"GET", "/v1/incidents/" + r.ID},
			{"GET", "/v1/components/x%2Fv1%2Fincidents"},
			{"GET", "/v1/severities/v1%2Fincidents"},
			{"GET", "/v1/phases/component_status"},
			{"DELETE", "/v1/maintenance/a%2Fcomponent_status"},
			{"PUT", "/v1/component_status"},
			{"DELETE", "/v1/incidents"},
			{"GET", "/v1/component_status/"},
		} {
			wantProblem(t, s.Do(probe.method, probe.path, "", nil, "Authorization", "Bearer "+good), 401, "Unauthorized")
		}
		s.Do("GET", "/v1/severities/component_status", admin, nil).Expect(t, 200)
		if r := s.Do("GET", "/v1/component_status", "", nil, "Authorization", "Bearer "+good); r.Status != 200 {
			t.Errorf("GET component_status with the monitoring token: %d", r.Status)
		}
		// API keys keep working there.
		if r := s.Do("POST", "/v1/component_status", s.Key(tenant, model.ScopeComponentsWrite, model.ScopeIncidentsWrite), body); r.Status != 201 {
			t.Errorf("API key on the monitoring endpoint: %d", r.Status)
		}
	})
}

func TestComponentStatusListing(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s, key, mk := ingestSetup(t, b)
		// Another tenant, with a component of its own.
		reader := s.Key(apitest.Tenant("x"), model.ScopeComponentsRead, model.ScopeComponentsWrite, model.ScopeIncidentsRead)
		s.Do("POST", "/v1/components", reader, map[string]any{"displayName": "Theirs"}).Expect(t, 201)
		mk("Alpha", "Reg1")
		mk("Beta", "Reg1")
		mk("Beta", "Reg2")
		send(t, s, key, "Beta", "Reg1", "major")
		send(t, s, key, "Beta", "Reg2", "minor")
		type state struct {
			ID, DisplayName, Status string
			Labels                  map[string]string
			Incidents               []struct{ ID, Title, Impact string }
		}
		var page struct {
			Data       []state
			Pagination struct{ TotalCount int }
		}
		s.Do("GET", "/api/v1/component_status", key, nil).JSON(t, &page)
		if len(page.Data) != 3 || page.Data[0].Status != "operational" || page.Pagination.TotalCount != 3 {
			t.Fatalf("listing %+v", page)
		}
		worst := map[string]string{}
		for _, st := range page.Data[1:] {
			worst[st.Labels["region"]] = st.Status
		}
		if worst["Reg1"] != "major" || worst["Reg2"] != "minor" {
			t.Errorf("statuses %v", worst)
		}
		s.Do("GET", "/v1/component_status?name=be&attribute_name=region&attribute_value=Reg2", key, nil).JSON(t, &page)
		if len(page.Data) != 1 || page.Data[0].Status != "minor" || len(page.Data[0].Incidents) != 1 {
			t.Errorf("one component %+v", page.Data)
		}
		wantProblem(t, s.Do("GET", "/v1/component_status?attribute_name=region&attribute_value=Nowhere", key, nil), 404, "NotFound")
		wantProblem(t, s.Do("GET", "/v1/component_status?attribute_name=region", key, nil), 400, "ValidationError")
		var other struct{ Data []state }
		s.Do("GET", "/v1/component_status", reader, nil).JSON(t, &other)
		if len(other.Data) != 1 || other.Data[0].DisplayName != "Theirs" {
			t.Errorf("another tenant sees %+v", other.Data)
		}
	})
}

func TestMaintenanceSuppressesIncidents(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s, key, mk := ingestSetup(t, b)
		c := mk("DB", "eu")
		now := time.Now().UTC()
		res := s.Do("POST", "/v1/maintenance", key, map[string]any{"description": "Upgrade", "components": []string{c},
			"startsAt": now.Add(-time.Minute).Format(time.RFC3339), "endsAt": now.Add(time.Hour).Format(time.RFC3339)})
		if res.Status != 201 {
			t.Fatalf("schedule: %d %s", res.Status, res.Body)
		}
		mnt := res.Map(t)["id"].(string)
		r := send(t, s, key, "DB", "eu", "outage")
		if r.ID != mnt || r.Status != "maintenance" {
			t.Errorf("report during maintenance: %+v", r)
		}
		var open struct{ Pagination struct{ TotalCount int } }
		s.Do("GET", "/v1/incidents?status=open", key, nil).JSON(t, &open)
		if open.Pagination.TotalCount != 0 {
			t.Errorf("%d incidents opened during maintenance", open.Pagination.TotalCount)
		}
		var list struct{ Data []struct{ ID string } }
		s.Do("GET", "/v1/maintenance", key, nil).JSON(t, &list)
		if len(list.Data) != 1 || list.Data[0].ID != mnt {
			t.Errorf("list %+v", list)
		}
		// Bad windows; another tenant's component; cancellation.
		for _, body := range []map[string]any{
			{"description": "x", "components": []string{c}, "startsAt": now.Format(time.RFC3339), "endsAt": now.Add(-time.Hour).Format(time.RFC3339)},
			{"description": "x", "components": []string{"cmp_nope00000000"}, "startsAt": now.Format(time.RFC3339), "endsAt": now.Add(time.Hour).Format(time.RFC3339)},
			{"description": "", "components": []string{}},
		} {
			wantProblem(t, s.Do("POST", "/v1/maintenance", key, body), 400, "ValidationError")
		}
		if r := s.Do("DELETE", "/v1/maintenance/"+mnt, key, nil); r.Status != 204 {
			t.Errorf("cancel: %d", r.Status)
		}
		if r := send(t, s, key, "DB", "eu", "outage"); !r.Created {
			t.Errorf("after the window: %+v", r)
		}
	})
}

func TestStatusSummaryAndPublicPage(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{RateLimit: "8-M"})
		tenant := apitest.Tenant("page")
		key := s.Key(tenant, model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		s.Do("POST", "/v1/components", key, map[string]any{"displayName": "API", "labels": map[string]string{"region": "eu"}}).Expect(t, 201)
		s.Do("POST", "/v1/components", key, map[string]any{"displayName": "Web"}).Expect(t, 201)
		send(t, s, key, "API", "eu", "outage")
		type summary struct {
			Components []struct {
				DisplayName, Status, CreatedBy string
			}
			OpenIncidents []struct{ ID, Severity, CreatedBy string }
		}
		var sum summary
		s.Do("GET", "/v1/status", key, nil).JSON(t, &sum)
		if len(sum.Components) != 2 || sum.Components[0].Status != "outage" || sum.Components[1].Status != "operational" ||
			len(sum.OpenIncidents) != 1 || sum.OpenIncidents[0].Severity != "critical" {
			t.Fatalf("summary %+v", sum)
		}
		// Not published yet: the public page does not exist.
		wantProblem(t, s.Do("GET", "/v1/public/"+tenant+"/status", "", nil), 404, "NotFound")
		if r := s.Do("PUT", "/v1/status/publication", key, map[string]any{"public": true}); r.Status != 204 {
			t.Fatalf("publish: %d %s", r.Status, r.Body)
		}
		res := s.Do("GET", "/v1/public/"+tenant+"/status", "", nil)
		var pub summary
		res.JSON(t, &pub)
		if len(pub.Components) != 2 || len(pub.OpenIncidents) != 1 || pub.OpenIncidents[0].CreatedBy != "" ||
			pub.Components[0].CreatedBy != "" || res.Header.Get("X-RateLimit-Limit") != "8" || res.Header.Get("X-RateLimit-Remaining") != "6" {
			t.Errorf("public page: %d %+v %v", res.Status, pub, res.Header)
		}
		wantProblem(t, s.Do("GET", "/v1/public/no-such-tenant/status", "", nil), 404, "NotFound")
		wantProblem(t, s.Do("PUT", "/v1/status/publication", key, map[string]any{"public": "yes"}), 400, "ValidationError")
		// Per-IP rate limit on the public page (8 per minute, 3 spent above).
		var last *apitest.Response
		for range 6 {
			last = s.Do("GET", "/v1/public/"+tenant+"/status", "", nil)
		}
		wantProblem(t, last, 429, "RateLimitExceeded")
	})
}
