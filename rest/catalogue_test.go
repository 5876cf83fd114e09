package rest_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/store"
)

func detailFields(p problem) []string {
	var out []string
	for _, d := range p.Details {
		out = append(out, d.Field)
	}
	return out
}

func TestImpactTypes(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("imp")
		key := s.Key(tenant, model.ScopeComponentsWrite, model.ScopeIncidentsWrite, model.ScopeAuditRead)
		var list struct {
			Data []struct {
				ID, DisplayName, Name string
				BuiltIn               bool
			}
		}
		s.Do("GET", "/v1/impact-types", key, nil).JSON(t, &list)
		if len(list.Data) != 4 || list.Data[2].ID != "imp_major" || !list.Data[2].BuiltIn || list.Data[2].Name != "major" {
			t.Fatalf("built-ins: %+v", list.Data)
		}
		res := s.Do("POST", "/v1/impact-types", key, map[string]any{"displayName": "Performance", "description": "slow answers"})
		if res.Status != 201 || !strings.HasSuffix(res.Header.Get("Location"), "/v1/impact-types/"+res.Map(t)["id"].(string)) {
			t.Fatalf("create: %d %s %q", res.Status, res.Body, res.Header.Get("Location"))
		}
		perf := res.Map(t)
		id := perf["id"].(string)
		if by, _ := perf["createdBy"].(string); perf["builtIn"] != false || by == "" || perf["name"] != nil {
			t.Errorf("custom type: %v", perf)
		}
		// Names are unique per tenant, case-insensitively, built-in ones included.
		wantProblem(t, s.Do("POST", "/v1/impact-types", key, map[string]any{"displayName": "PERFORMANCE"}), 409, "Conflict")
		wantProblem(t, s.Do("POST", "/v1/impact-types", key, map[string]any{"displayName": "major"}), 409, "Conflict")
		other := s.Do("POST", "/v1/impact-types", key, map[string]any{"displayName": "Connectivity"}).Map(t)
		wantProblem(t, s.Do("PATCH", "/v1/impact-types/"+other["id"].(string), key, map[string]any{"displayName": "performance"}), 409, "Conflict")
		// Built-in types are read-only.
		wantProblem(t, s.Do("PATCH", "/v1/impact-types/imp_major", key, map[string]any{"description": "x"}), 422, "BusinessRuleViolation")
		wantProblem(t, s.Do("DELETE", "/v1/impact-types/imp_outage", key, nil), 422, "BusinessRuleViolation")
		// Validation lists every field.
		p := wantProblem(t, s.Do("POST", "/v1/impact-types", key, `{"displayName":" ","description":5,"colour":"red"}`), 400, "ValidationError")
		if got := strings.Join(detailFields(p), ","); got != "colour,description,displayName" {
			t.Errorf("details %v", p.Details)
		}
		res = s.Do("PATCH", "/v1/impact-types/"+id, key, map[string]any{"displayName": "Slowness"})
		if res.Status != 200 || res.Map(t)["displayName"] != "Slowness" || res.Map(t)["description"] != "slow answers" {
			t.Errorf("patch: %d %s", res.Status, res.Body)
		}
		if g := s.Do("GET", "/v1/impact-types/"+id, s.Key(tenant, model.ScopeIncidentsRead), nil); g.Status != 200 || g.Map(t)["displayName"] != "Slowness" {
			t.Errorf("get with incidents:read: %d %s", g.Status, g.Body)
		}
		s.Do("GET", "/v1/impact-types", key, nil).JSON(t, &list)
		if len(list.Data) != 6 || list.Data[4].DisplayName != "Connectivity" || list.Data[5].DisplayName != "Slowness" {
			t.Errorf("list: %+v", list.Data)
		}
		// Scopes and tenants.
		wantProblem(t, s.Do("POST", "/v1/impact-types", s.Key(tenant, model.ScopeComponentsRead), map[string]any{"displayName": "x"}), 403, "Forbidden")
		wantProblem(t, s.Do("GET", "/v1/impact-types", s.Key(tenant, model.ScopeAuditRead), nil), 403, "Forbidden")
		stranger := s.Key(apitest.Tenant("imp-other"), model.ScopeComponentsWrite)
		wantProblem(t, s.Do("GET", "/v1/impact-types/"+id, stranger, nil), 404, "NotFound")
		wantProblem(t, s.Do("PATCH", "/v1/impact-types/"+id, stranger, map[string]any{"displayName": "mine"}), 404, "NotFound")
		wantProblem(t, s.Do("DELETE", "/v1/impact-types/"+id, stranger, nil), 404, "NotFound")
		s.Do("GET", "/v1/impact-types", stranger, nil).JSON(t, &list)
		if len(list.Data) != 4 {
			t.Errorf("another tenant sees %+v", list.Data)
		}
		// A type in use cannot go; once unused it can.
		comp := s.Do("POST", "/v1/components", key, map[string]any{"displayName": "API"}).Map(t)
		inc := s.Do("POST", "/v1/incidents", key, map[string]any{"title": "slow", "severity": "medium", "occurredAt": "2024-01-15T14:30:00Z",
			"affects": []map[string]any{{"reference": comp["id"], "type": id, "severity": 40}}})
		if inc.Status != 201 {
			t.Fatalf("incident: %d %s", inc.Status, inc.Body)
		}
		wantProblem(t, s.Do("DELETE", "/v1/impact-types/"+id, key, nil), 409, "Conflict")
		incID := inc.Map(t)["id"].(string)
		if r := s.Do("PATCH", "/v1/incidents/"+incID, key, map[string]any{"affects": []any{}}); r.Status != 200 {
			t.Fatalf("clear affects: %d %s", r.Status, r.Body)
		}
		if r := s.Do("DELETE", "/v1/impact-types/"+id, key, nil); r.Status != 204 {
			t.Errorf("delete: %d %s", r.Status, r.Body)
		}
		wantProblem(t, s.Do("GET", "/v1/impact-types/"+id, key, nil), 404, "NotFound")
		var trail struct{ Data []struct{ Action string } }
		s.Do("GET", "/v1/audit-events?resourceId="+id, key, nil).JSON(t, &trail)
		if len(trail.Data) != 3 || trail.Data[0].Action != model.AuditImpactTypeDelete || trail.Data[2].Action != model.AuditImpactTypeCreate {
			t.Errorf("audit: %+v", trail.Data)
		}
	})
}

func TestSeverities(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("sev")
		key := s.Key(tenant, model.ScopeComponentsWrite, model.ScopeAuditRead)
		type level struct {
			DisplayName, Name string
			Value             int
			BuiltIn           bool
		}
		var list struct{ Data []level }
		s.Do("GET", "/v1/severities", key, nil).JSON(t, &list)
		if len(list.Data) != 4 || list.Data[0] != (level{"Low", "low", 25, true}) || list.Data[3].Value != 100 {
			t.Fatalf("built-ins: %+v", list.Data)
		}
		res := s.Do("POST", "/v1/severities", key, map[string]any{"displayName": "Degraded", "value": 40})
		if res.Status != 201 || res.Header.Get("Location") != "/v1/severities/Degraded" {
			t.Fatalf("create: %d %s %q", res.Status, res.Body, res.Header.Get("Location"))
		}
		// The name is the identifier: unique even under PATCH; values too.
		wantProblem(t, s.Do("POST", "/v1/severities", key, map[string]any{"displayName": "degraded", "value": 41}), 409, "Conflict")
		wantProblem(t, s.Do("POST", "/v1/severities", key, map[string]any{"displayName": "Other", "value": 40}), 409, "Conflict")
		wantProblem(t, s.Do("POST", "/v1/severities", key, map[string]any{"displayName": "HIGH", "value": 70}), 409, "Conflict")
		wantProblem(t, s.Do("POST", "/v1/severities", key, map[string]any{"displayName": "Other", "value": 75}), 409, "Conflict")
		if r := s.Do("POST", "/v1/severities", key, map[string]any{"displayName": "Very bad", "value": 90}); r.Status != 201 || r.Header.Get("Location") != "/v1/severities/Very%20bad" {
			t.Fatalf("create: %d %s", r.Status, r.Header.Get("Location"))
		}
		wantProblem(t, s.Do("PATCH", "/v1/severities/Degraded", key, map[string]any{"displayName": "very BAD"}), 409, "Conflict")
		wantProblem(t, s.Do("PATCH", "/v1/severities/Degraded", key, map[string]any{"displayName": "Critical"}), 409, "Conflict")
		wantProblem(t, s.Do("PATCH", "/v1/severities/Degraded", key, map[string]any{"value": 90}), 409, "Conflict")
		wantProblem(t, s.Do("PATCH", "/v1/severities/High", key, map[string]any{"value": 70}), 422, "BusinessRuleViolation")
		wantProblem(t, s.Do("DELETE", "/v1/severities/low", key, nil), 422, "BusinessRuleViolation")
		for body, fields := range map[string]string{
			`{"displayName":"x","value":101}`: "value", `{"displayName":"x","value":1.5}`: "value", `{"displayName":"x","value":"7"}`: "value",
			`{"value":7}`: "displayName", `{"displayName":"x"}`: "value", `{"displayName":"","value":-1,"x":1}`: "displayName,value,x",
		} {
			p := wantProblem(t, s.Do("POST", "/v1/severities", key, body), 400, "ValidationError")
			if got := strings.Join(detailFields(p), ","); got != fields {
				t.Errorf("%s: %v", body, p.Details)
			}
		}
		// A rename that only changes case keeps the severity; then a real rename.
		if r := s.Do("PATCH", "/v1/severities/degraded", key, map[string]any{"displayName": "DEGRADED"}); r.Status != 200 || r.Map(t)["displayName"] != "DEGRADED" {
			t.Errorf("case rename: %d %s", r.Status, r.Body)
		}
		if r := s.Do("PATCH", "/v1/severities/Degraded", key, map[string]any{"displayName": "Limited", "value": 45}); r.Status != 200 || r.Map(t)["value"] != float64(45) {
			t.Errorf("rename: %d %s", r.Status, r.Body)
		}
		wantProblem(t, s.Do("GET", "/v1/severities/Degraded", key, nil), 404, "NotFound")
		if r := s.Do("GET", "/v1/severities/"+url.PathEscape("very bad"), key, nil); r.Status != 200 || r.Map(t)["value"] != float64(90) {
			t.Errorf("get by escaped name: %d %s", r.Status, r.Body)
		}
		s.Do("GET", "/v1/severities", key, nil).JSON(t, &list)
		var names []string
		for _, l := range list.Data {
			names = append(names, l.DisplayName)
		}
		if got := strings.Join(names, ","); got != "Low,Limited,Medium,High,Very bad,Critical" {
			t.Errorf("by value: %s", got)
		}
		stranger := s.Key(apitest.Tenant("sev-other"), model.ScopeComponentsWrite)
		wantProblem(t, s.Do("GET", "/v1/severities/Limited", stranger, nil), 404, "NotFound")
		if r := s.Do("POST", "/v1/severities", stranger, map[string]any{"displayName": "Limited", "value": 45}); r.Status != 201 {
			t.Errorf("another tenant may use the same name: %d %s", r.Status, r.Body)
		}
		if r := s.Do("DELETE", "/v1/severities/Limited", key, nil); r.Status != 204 {
			t.Errorf("delete: %d", r.Status)
		}
		if r := s.Do("GET", "/v1/severities/Limited", stranger, nil); r.Status != 200 {
			t.Errorf("the other tenant's severity went too: %d", r.Status)
		}
		var trail struct {
			Data []struct{ Action, ResourceID string }
		}
		s.Do("GET", "/v1/audit-events?action=severity.update", key, nil).JSON(t, &trail)
		if len(trail.Data) != 2 {
			t.Errorf("audit: %+v", trail.Data)
		}
	})
}

// Concurrent creations of one severity name: exactly one wins, the others
// get 409, nothing else.
func TestSeverityRace(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("sevrace"), model.ScopeComponentsWrite)
		var mu sync.Mutex
		codes := map[int]int{}
		var failed []error
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				r, err := s.Try("POST", "/v1/severities", key, map[string]any{"displayName": "Same", "value": 10 + i})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed = append(failed, err)
					return
				}
				codes[r.Status]++
			})
		}
		wg.Wait()
		for _, err := range failed {
			t.Error(err)
		}
		if codes[201] != 1 || codes[409] != 11 {
			t.Errorf("statuses %v", codes)
		}
	})
}

func TestPhases(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("ph")
		key := s.Key(tenant, model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		type phases struct {
			Generation int
			Phases     []string
			CreatedAt  *string
		}
		var got phases
		s.Do("GET", "/v1/phases", key, nil).JSON(t, &got)
		if got.Generation != 0 || len(got.Phases) != 0 || got.CreatedAt != nil {
			t.Errorf("before any: %+v", got)
		}
		for body, fields := range map[string]string{
			`{"phases":[]}`: "phases", `{}`: "phases", `{"phases":null}`: "phases", `{"phases":["a"," "]}`: "phases[1]",
			`{"phases":["Fix","fix"]}`: "phases[1]", `{"generation":2,"phases":["a"]}`: "generation", `{"phases":[1]}`: "phases",
		} {
			p := wantProblem(t, s.Do("POST", "/v1/phases", key, body), 400, "ValidationError")
			if g := strings.Join(detailFields(p), ","); g != fields {
				t.Errorf("%s: %v", body, p.Details)
			}
		}
		res := s.Do("POST", "/v1/phases", key, map[string]any{"phases": []string{"Investigating", "Fixing", "Monitoring"}})
		if res.Status != 201 || res.Header.Get("Location") != "/v1/phases/1" {
			t.Fatalf("replace: %d %s", res.Status, res.Body)
		}
		res.JSON(t, &got)
		if got.Generation != 1 || len(got.Phases) != 3 || got.CreatedAt == nil {
			t.Errorf("generation 1: %+v", got)
		}
		// An incident points into generation 1; the list is replaced; generation 1 stays readable.
		inc := s.Do("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z",
			"phase": map[string]int{"generation": 1, "order": 2}})
		if inc.Status != 201 || fmt.Sprint(inc.Map(t)["phase"]) != "map[generation:1 order:2]" {
			t.Fatalf("incident: %d %s", inc.Status, inc.Body)
		}
		id := inc.Map(t)["id"].(string)
		s.Do("POST", "/v1/phases", key, map[string]any{"phases": []string{"Triage", "Resolved"}}).JSON(t, &got)
		if got.Generation != 2 {
			t.Errorf("generation 2: %+v", got)
		}
		s.Do("GET", "/v1/phases/1", key, nil).JSON(t, &got)
		if got.Generation != 1 || got.Phases[2] != "Monitoring" {
			t.Errorf("old generation: %+v", got)
		}
		s.Do("GET", "/v1/phases", key, nil).JSON(t, &got)
		if got.Generation != 2 || got.Phases[0] != "Triage" {
			t.Errorf("current: %+v", got)
		}
		wantProblem(t, s.Do("GET", "/v1/phases/3", key, nil), 404, "NotFound")
		wantProblem(t, s.Do("GET", "/v1/phases/zero", key, nil), 400, "ValidationError")
		wantProblem(t, s.Do("GET", "/v1/phases?generation=1", key, nil), 400, "ValidationError")
		// An order outside its generation, or a generation that does not exist: 422, nothing written.
		p := wantProblem(t, s.Do("PATCH", "/v1/incidents/"+id, key, map[string]any{"phase": map[string]int{"generation": 2, "order": 2}}), 422, "BusinessRuleViolation")
		if strings.Join(detailFields(p), ",") != "phase.order" {
			t.Errorf("details %v", p.Details)
		}
		p = wantProblem(t, s.Do("PATCH", "/v1/incidents/"+id, key, map[string]any{"phase": map[string]int{"generation": 7, "order": 0}, "title": "x"}), 422, "BusinessRuleViolation")
		if strings.Join(detailFields(p), ",") != "phase.generation" {
			t.Errorf("details %v", p.Details)
		}
		wantProblem(t, s.Do("PATCH", "/v1/incidents/"+id, key, `{"phase":{"generation":"2"}}`), 400, "ValidationError")
		if r := s.Do("GET", "/v1/incidents/"+id, key, nil); r.Map(t)["title"] != "t" {
			t.Errorf("a refused patch wrote: %s", r.Body)
		}
		// Moving to generation 2 appends a timeline entry naming both phases; null clears.
		if r := s.Do("PATCH", "/v1/incidents/"+id, key, map[string]any{"phase": map[string]int{"generation": 2, "order": 1}}); r.Status != 200 {
			t.Fatalf("move phase: %d %s", r.Status, r.Body)
		}
		if r := s.Do("PATCH", "/v1/incidents/"+id, key, map[string]any{"phase": nil}); r.Status != 200 || r.Map(t)["phase"] != nil {
			t.Fatalf("clear phase: %d %s", r.Status, r.Body)
		}
		var timeline struct {
			Data []struct{ DisplayName, Description string }
		}
		s.Do("GET", "/v1/incidents/"+id+"/updates", key, nil).JSON(t, &timeline)
		if len(timeline.Data) != 2 || timeline.Data[0].DisplayName != "Phase changed" ||
			timeline.Data[0].Description != `from "Monitoring" (generation 1, order 2) to "Resolved" (generation 2, order 1)` ||
			timeline.Data[1].Description != `from "Resolved" (generation 2, order 1) to none` {
			t.Errorf("timeline: %+v", timeline.Data)
		}
		// Another tenant has its own generations.
		var theirs phases
		s.Do("GET", "/v1/phases", s.Key(apitest.Tenant("ph-other"), model.ScopeComponentsRead), nil).JSON(t, &theirs)
		if theirs.Generation != 0 {
			t.Errorf("another tenant sees %+v", theirs)
		}
		wantProblem(t, s.Do("POST", "/v1/phases", s.Key(tenant, model.ScopeIncidentsWrite), map[string]any{"phases": []string{"a"}}), 403, "Forbidden")
	})
}

func TestIncidentAffects(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("aff")
		key := s.Key(tenant, model.ScopeComponentsWrite, model.ScopeIncidentsWrite, model.ScopeAuditRead)
		mk := func(name string) string {
			return s.Do("POST", "/v1/components", key, map[string]any{"displayName": name}).Map(t)["id"].(string)
		}
		api, db, web := mk("API"), mk("DB"), mk("Web")
		custom := s.Do("POST", "/v1/impact-types", key, map[string]any{"displayName": "Performance"}).Map(t)["id"].(string)
		foreign := s.Do("POST", "/v1/components", s.Key(apitest.Tenant("aff-other"), model.ScopeComponentsWrite), map[string]any{"displayName": "Theirs"}).Map(t)["id"].(string)
		body := func(affects ...map[string]any) map[string]any {
			return map[string]any{"title": "t", "severity": "high", "occurredAt": "2024-01-15T14:30:00Z", "affects": affects}
		}
		// Shape errors: 400, listing every item; references that do not exist here: 422.
		p := wantProblem(t, s.Do("POST", "/v1/incidents", key, body(
			map[string]any{"reference": api, "type": custom},
			map[string]any{"reference": api, "type": "imp_major", "severity": 101},
			map[string]any{"type": "imp_major", "colour": 1},
		)), 400, "ValidationError")
		if got := strings.Join(detailFields(p), ","); got != "affects[2].colour" {
			t.Errorf("shape details %v", p.Details)
		}
		p = wantProblem(t, s.Do("POST", "/v1/incidents", key, body(
			map[string]any{"reference": api, "type": custom},
			map[string]any{"reference": api, "type": "imp_major", "severity": 101},
			map[string]any{"type": "imp_major"},
		)), 400, "ValidationError")
		if got := strings.Join(detailFields(p), ","); got != "affects[0].severity,affects[1].reference,affects[1].severity,affects[2].reference" {
			t.Errorf("validation details %v", p.Details)
		}
		p = wantProblem(t, s.Do("POST", "/v1/incidents", key, body(
			map[string]any{"reference": foreign, "type": "imp_major"},
			map[string]any{"reference": api, "type": "imp_nope", "severity": 5},
		)), 422, "BusinessRuleViolation")
		if got := strings.Join(detailFields(p), ","); got != "affects[0].reference,affects[1].type" {
			t.Errorf("reference details %v", p.Details)
		}
		var page struct{ Pagination struct{ TotalCount int } }
		s.Do("GET", "/v1/incidents", key, nil).JSON(t, &page)
		if page.Pagination.TotalCount != 0 {
			t.Fatalf("a refused create wrote %d incidents", page.Pagination.TotalCount)
		}
		// Create with affects: the impact is visible from the component.
		res := s.Do("POST", "/v1/incidents", key, body(
			map[string]any{"reference": db, "type": "imp_major"},
			map[string]any{"reference": api, "type": custom, "severity": 30},
		))
		if res.Status != 201 {
			t.Fatalf("create: %d %s", res.Status, res.Body)
		}
		type affect struct {
			Reference, Type, Impact string
			Severity                int
		}
		var inc struct {
			ID, UpdatedAt string
			Affects       []affect
		}
		res.JSON(t, &inc)
		byID := func(as []affect) []affect { // affects come ordered by component id
			slices.SortFunc(as, func(a, b affect) int { return strings.Compare(a.Reference, b.Reference) })
			return as
		}
		want := byID([]affect{{api, custom, "minor", 30}, {db, "imp_major", "major", 75}})
		if fmt.Sprint(inc.Affects) != fmt.Sprint(want) {
			t.Errorf("affects %+v, want %+v", inc.Affects, want)
		}
		var state struct {
			Data []struct {
				ID, Status string
				Incidents  []struct {
					Reference, Type string
					Severity        int
				}
			}
		}
		s.Do("GET", "/v1/component_status?name=API", key, nil).JSON(t, &state)
		if len(state.Data) != 1 || state.Data[0].Status != "minor" || len(state.Data[0].Incidents) != 1 ||
			state.Data[0].Incidents[0].Reference != inc.ID || state.Data[0].Incidents[0].Type != custom || state.Data[0].Incidents[0].Severity != 30 {
			t.Errorf("component status %+v", state.Data)
		}
		// The impact is the status-page model's activelyAffectedBy of the component.
		var cmp struct {
			ActivelyAffectedBy []struct {
				Reference, Type, Impact string
				Severity                int
			}
		}
		s.Do("GET", "/v1/components/"+db, key, nil).JSON(t, &cmp)
		if len(cmp.ActivelyAffectedBy) != 1 || cmp.ActivelyAffectedBy[0].Reference != inc.ID || cmp.ActivelyAffectedBy[0].Severity != 75 {
			t.Errorf("activelyAffectedBy %+v", cmp.ActivelyAffectedBy)
		}
		// Get and list carry affects too.
		var got struct{ Affects []affect }
		s.Do("GET", "/v1/incidents/"+inc.ID, key, nil).JSON(t, &got)
		if fmt.Sprint(got.Affects) != fmt.Sprint(want) {
			t.Errorf("get affects %+v", got.Affects)
		}
		var list struct{ Data []struct{ Affects []affect } }
		s.Do("GET", "/v1/incidents", key, nil).JSON(t, &list)
		if len(list.Data) != 1 || fmt.Sprint(list.Data[0].Affects) != fmt.Sprint(want) {
			t.Errorf("list affects %+v", list.Data)
		}
		// The same list again changes nothing; a new list replaces, and the
		// timeline says what moved.
		same := s.Do("PATCH", "/v1/incidents/"+inc.ID, key, map[string]any{"affects": []map[string]any{
			{"reference": api, "type": custom, "severity": 30}, {"reference": db, "type": "imp_major", "severity": 75}}})
		if same.Status != 200 || same.Map(t)["updatedAt"] != inc.UpdatedAt {
			t.Errorf("same affects: %d %s", same.Status, same.Body)
		}
		res = s.Do("PATCH", "/v1/incidents/"+inc.ID, key, map[string]any{"affects": []map[string]any{
			{"reference": api, "type": "imp_outage"}, {"reference": web, "type": "imp_minor", "severity": 20}}})
		if res.Status != 200 {
			t.Fatalf("replace: %d %s", res.Status, res.Body)
		}
		res.JSON(t, &got)
		want = byID([]affect{{api, "imp_outage", "outage", 100}, {web, "imp_minor", "minor", 20}})
		if fmt.Sprint(got.Affects) != fmt.Sprint(want) {
			t.Errorf("replaced affects %+v", got.Affects)
		}
		var timeline struct {
			Data []struct{ DisplayName, Description string }
		}
		s.Do("GET", "/v1/incidents/"+inc.ID+"/updates", key, nil).JSON(t, &timeline)
		if len(timeline.Data) != 1 || timeline.Data[0].DisplayName != "Affected components changed" ||
			timeline.Data[0].Description != "added Web (imp_minor, severity 20); API now imp_outage, severity 100; removed DB" {
			t.Errorf("timeline %+v", timeline.Data)
		}
		s.Do("GET", "/v1/component_status?name=DB", key, nil).JSON(t, &state)
		if len(state.Data) != 1 || state.Data[0].Status != "operational" {
			t.Errorf("DB after removal: %+v", state.Data)
		}
		var comps struct {
			Data []struct {
				DisplayName        string
				ActivelyAffectedBy []struct{ Reference string }
			}
		}
		s.Do("GET", "/v1/components", key, nil).JSON(t, &comps)
		if len(comps.Data) != 3 {
			t.Fatalf("components %+v", comps.Data)
		}
		for _, c := range comps.Data {
			want, ok := map[string]int{"API": 1, "DB": 0, "Web": 1}[c.DisplayName]
			if !ok || len(c.ActivelyAffectedBy) != want {
				t.Errorf("%s in the list: %+v", c.DisplayName, c.ActivelyAffectedBy)
			}
		}
		var trail struct {
			Data []struct {
				Action  string
				Changes map[string]struct{ Before, After any }
			}
		}
		s.Do("GET", "/v1/audit-events?resourceId="+inc.ID, key, nil).JSON(t, &trail)
		if len(trail.Data) != 2 || trail.Data[0].Changes["affects"].Before == nil || trail.Data[1].Changes["affects"].After == nil {
			t.Errorf("audit %+v", trail.Data)
		}
		// A component an open incident affects cannot be deleted.
		wantProblem(t, s.Do("DELETE", "/v1/components/"+web, key, nil), 409, "Conflict")
		wantProblem(t, s.Do("PATCH", "/v1/incidents/"+inc.ID, key, `{"affects":null}`), 400, "ValidationError")
		wantProblem(t, s.Do("PATCH", "/v1/incidents/"+inc.ID, key, `{"affects":{"reference":"x"}}`), 400, "ValidationError")
	})
}

// A custom impact type deleted while incidents are being created with it:
// each creation either lands with the type (and the delete is refused) or
// is refused for an unknown type; no affect is ever left pointing at a type
// that is gone.
func TestImpactTypeDeleteRace(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("imprace"), model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		comp := s.Do("POST", "/v1/components", key, map[string]any{"displayName": "C"}).Map(t)["id"].(string)
		for i := range 8 {
			typ := s.Do("POST", "/v1/impact-types", key, map[string]any{"displayName": fmt.Sprintf("T%d", i)}).Map(t)["id"].(string)
			var create, del *apitest.Response
			var errCreate, errDel error
			var wg sync.WaitGroup
			wg.Go(func() {
				create, errCreate = s.Try("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z",
					"affects": []map[string]any{{"reference": comp, "type": typ, "severity": 10}}})
			})
			wg.Go(func() { del, errDel = s.Try("DELETE", "/v1/impact-types/"+typ, key, nil) })
			wg.Wait()
			if errCreate != nil || errDel != nil {
				t.Fatalf("round %d: %v, %v", i, errCreate, errDel)
			}
			switch {
			case create.Status == 201 && del.Status == 409:
			case create.Status == 422 && del.Status == 204:
			default:
				t.Fatalf("round %d: create %d %s, delete %d %s", i, create.Status, create.Body, del.Status, del.Body)
			}
			if create.Status == 201 {
				if r := s.Do("GET", "/v1/impact-types/"+typ, key, nil); r.Status != 200 {
					t.Fatalf("round %d: the incident's type is gone: %d", i, r.Status)
				}
			}
		}
	})
}

// Keys that no stored row can hold (NUL, invalid UTF-8, numbers past 32
// bits) are 4xx on both stores, never 500.
func TestCatalogueOddKeys(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("odd"), model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		inc := s.Do("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}).Map(t)["id"].(string)
		for _, c := range []struct {
			method, path string
			body         any
			want         int
		}{
			{"GET", "/v1/severities/%00", nil, 404}, {"PATCH", "/v1/severities/%00", map[string]any{"value": 3}, 404},
			{"DELETE", "/v1/severities/%FF", nil, 404}, {"GET", "/v1/impact-types/%00", nil, 404},
			{"PATCH", "/v1/impact-types/%FFx", map[string]any{"displayName": "x"}, 404}, {"DELETE", "/v1/impact-types/%00", nil, 404},
			{"GET", "/v1/phases/99999999999", nil, 404}, {"GET", "/v1/phases/99999999999999999999", nil, 400},
			{"PATCH", "/v1/incidents/%FF", map[string]any{"title": "x"}, 404}, {"DELETE", "/v1/incidents/%FF", nil, 404},
			{"GET", "/v1/incidents/%FF", nil, 404}, {"POST", "/v1/incidents/%00/updates", map[string]any{"displayName": "x"}, 404},
			{"PATCH", "/v1/incidents/" + inc, map[string]any{"phase": map[string]int{"generation": 3000000000, "order": 0}}, 400},
			{"PATCH", "/v1/incidents/" + inc, map[string]any{"affects": []map[string]any{{"reference": "\xff", "type": "imp_minor"}}}, 422},
		} {
			if r := s.Do(c.method, c.path, key, c.body); r.Status != c.want {
				t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, r.Status, c.want, r.Body)
			}
		}

		// Such keys name nothing, not even a stored name holding U+FFFD
		// (which is what invalid UTF-8 decodes to elsewhere).
		s.Do("POST", "/v1/severities", key, map[string]any{"displayName": "a\uFFFDb", "value": 30}).Expect(t, 201)
		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/severities/a%00b"}, {"GET", "/v1/severities/a%FFb"}, {"PATCH", "/v1/severities/a%FFb"},
			{"DELETE", "/v1/severities/a%FFb"}, {"DELETE", "/v1/severities/a%00b"},
		} {
			var body any
			if c.method == "PATCH" {
				body = map[string]any{"value": 31}
			}
			wantProblem(t, s.Do(c.method, c.path, key, body), 404, "NotFound")
		}
		var sev struct{ Value int }
		s.Do("GET", "/v1/severities/a%EF%BF%BDb", key, nil).JSON(t, &sev)
		if sev.Value != 30 {
			t.Errorf("the stored severity changed: %+v", sev)
		}
		var list struct{ Data []struct{ ID string } }
		s.Do("GET", "/v1/incidents?service=a%FFb&keyword=%FF", key, nil).JSON(t, &list)
		if len(list.Data) != 0 {
			t.Errorf("an unstorable filter matched %+v", list.Data)
		}
	})
}

// Whatever the server or the URL say about standard_conforming_strings, the
// store's connections turn it on, so batched writes keep backslashes literal.
func TestBatchedWritesWithNonStandardStrings(t *testing.T) {
	pg := apitest.Postgres(t)
	u := pg.URL(t)
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	odd := apitest.Backend{Name: "postgres", URL: func(testing.TB) string {
		return u + sep + "options=" + strings.ReplaceAll(url.QueryEscape("-c standard_conforming_strings=off"), "+", "%20")
	}}
	s := apitest.Start(t, pg, apitest.Config{Store: apitest.OpenStore(t, odd, store.Options{})})
	key := s.Key(apitest.Tenant("scs"), model.ScopeIncidentsWrite)
	title := `\`
	desc := `', 'x'); SELECT pg_sleep(0); --\'`
	res := s.Do("POST", "/v1/incidents", key, map[string]any{"title": title, "description": desc, "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"})
	if res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	var got struct{ Title, Description string }
	s.Do("GET", "/v1/incidents/"+res.Map(t)["id"].(string), key, nil).JSON(t, &got)
	if got.Title != title || got.Description != desc {
		t.Errorf("stored %q / %q", got.Title, got.Description)
	}
}

// TestComponentDeleteRace: a component deleted while an incident write
// references it: either the write wins (the delete is a 409, an open
// incident affects the component) or the delete does (the write is a 422);
// never an affect of a component that is gone.
func TestComponentDeleteRace(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("comprace"), model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		for i := range 8 {
			comp := s.Do("POST", "/v1/components", key, map[string]any{"displayName": fmt.Sprintf("C%d", i)}).Expect(t, 201).Map(t)["id"].(string)
			var create, del *apitest.Response
			var errCreate, errDel error
			var wg sync.WaitGroup
			wg.Go(func() {
				create, errCreate = s.Try("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z",
					"affects": []map[string]any{{"reference": comp, "type": "imp_minor"}}})
			})
			wg.Go(func() { del, errDel = s.Try("DELETE", "/v1/components/"+comp, key, nil) })
			wg.Wait()
			if errCreate != nil || errDel != nil {
				t.Fatalf("round %d: %v, %v", i, errCreate, errDel)
			}
			switch {
			case create.Status == 201 && del.Status == 409:
				inc := create.Map(t)
				affects, _ := inc["affects"].([]any)
				if len(affects) != 1 || s.Do("GET", "/v1/components/"+comp, key, nil).Status != 200 {
					t.Fatalf("round %d: the write won, but %v / component gone", i, affects)
				}
			case create.Status == 422 && del.Status == 204:
				if r := s.Do("GET", "/v1/components/"+comp, key, nil); r.Status != 404 {
					t.Fatalf("round %d: deleted component still answers %d", i, r.Status)
				}
			default:
				t.Fatalf("round %d: create %d %s, delete %d %s", i, create.Status, create.Body, del.Status, del.Body)
			}
		}
	})
}
