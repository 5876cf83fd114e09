package graph_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// The catalogue and incident affects/phases over GraphQL: the same services
// and rules as REST, and both doors see each other's writes.
func TestCatalogueGraphQL(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("gcat")
		key := s.Key(tenant, model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		gql := func(q string, vars map[string]any) apitest.GQLResponse {
			t.Helper()
			_, r := s.GQL(key, q, vars)
			return r
		}
		typ := data[struct{ ID, DisplayName string }](t, gql(`mutation { createImpactType(input: {displayName: "Performance", description: "slow"}) { id displayName } }`, nil), "createImpactType")
		if !strings.HasPrefix(typ.ID, "imp_") {
			t.Fatalf("type %+v", typ)
		}
		if r := gql(`mutation { createImpactType(input: {displayName: "performance"}) { id } }`, nil); r.Code() != "Conflict" {
			t.Errorf("duplicate type: %+v", r.Errors)
		}
		if r := gql(`mutation { updateImpactType(id: "imp_major", input: {description: "x"}) { id } }`, nil); r.Code() != "BusinessRuleViolation" {
			t.Errorf("built-in type: %+v", r.Errors)
		}
		sev := data[struct {
			DisplayName string
			Value       int
			BuiltIn     bool
		}](t, gql(`mutation { createSeverity(input: {displayName: "Degraded", value: 40}) { displayName value builtIn } }`, nil), "createSeverity")
		if sev.Value != 40 || sev.BuiltIn {
			t.Errorf("severity %+v", sev)
		}
		if r := gql(`mutation { updateSeverity(displayName: "degraded", input: {displayName: "High"}) { value } }`, nil); r.Code() != "Conflict" {
			t.Errorf("rename onto a built-in: %+v", r.Errors)
		}
		if r := gql(`mutation { createSeverity(input: {displayName: "Nope", value: 300}) { value } }`, nil); r.Code() != "ValidationError" {
			t.Errorf("value 300: %+v", r.Errors)
		}
		phases := data[struct {
			Generation int
			Phases     []string
		}](t, gql(`mutation { replacePhases(phases: ["Investigating", "Fixing"]) { generation phases } }`, nil), "replacePhases")
		if phases.Generation != 1 {
			t.Errorf("phases %+v", phases)
		}
		// The catalogue reads back over REST.
		var restTypes struct{ Data []struct{ ID string } }
		s.Do("GET", "/v1/impact-types", key, nil).JSON(t, &restTypes)
		if len(restTypes.Data) != 5 || restTypes.Data[4].ID != typ.ID {
			t.Errorf("REST types %+v", restTypes.Data)
		}
		comp := rest(t, s, key, "POST", "/v1/components", map[string]any{"displayName": "API"})["id"].(string)
		other := rest(t, s, key, "POST", "/v1/components", map[string]any{"displayName": "DB"})["id"].(string)
		const incidentFields = `id phase { generation order name } affects { severity impact type { id displayName builtIn name } component { displayName } }`
		type incident struct {
			ID    string
			Phase *struct {
				Generation, Order int
				Name              string
			}
			Affects []struct {
				Severity int
				Impact   string
				Type     struct {
					ID, DisplayName string
					BuiltIn         bool
					Name            *string
				}
				Component struct{ DisplayName string }
			}
		}
		inc := data[incident](t, gql(`mutation($c: ID!, $t: ID!) { createIncident(input: {title: "slow", severity: MEDIUM, occurredAt: "2024-01-15T14:30:00Z",
			phase: {generation: 1, order: 1}, affects: [{reference: $c, type: $t, severity: 60}]}) { `+incidentFields+` } }`,
			map[string]any{"c": comp, "t": typ.ID}), "createIncident")
		if inc.Phase == nil || inc.Phase.Name != "Fixing" || len(inc.Affects) != 1 || inc.Affects[0].Type.DisplayName != "Performance" ||
			inc.Affects[0].Severity != 60 || inc.Affects[0].Impact != "major" || inc.Affects[0].Component.DisplayName != "API" {
			t.Fatalf("created %+v", inc)
		}
		// Rules are the service's: a phase outside its generation, a foreign component.
		if r := gql(`mutation($id: ID!) { updateIncident(id: $id, input: {phase: {generation: 1, order: 2}}) { id } }`, map[string]any{"id": inc.ID}); r.Code() != "BusinessRuleViolation" {
			t.Errorf("phase order 2: %+v", r.Errors)
		}
		foreign := rest(t, s, s.Key(apitest.Tenant("gcat-o"), model.ScopeComponentsWrite), "POST", "/v1/components", map[string]any{"displayName": "X"})["id"].(string)
		if r := gql(`mutation($id: ID!, $c: ID!) { updateIncident(id: $id, input: {affects: [{reference: $c, type: "imp_minor"}]}) { id } }`,
			map[string]any{"id": inc.ID, "c": foreign}); r.Code() != "BusinessRuleViolation" {
			t.Errorf("foreign component: %+v", r.Errors)
		}
		inc = data[incident](t, gql(`mutation($id: ID!, $c: ID!) { updateIncident(id: $id, input: {phase: null, affects: [{reference: $c, type: "imp_outage"}]}) { `+incidentFields+` } }`,
			map[string]any{"id": inc.ID, "c": other}), "updateIncident")
		if inc.Phase != nil || len(inc.Affects) != 1 || inc.Affects[0].Component.DisplayName != "DB" || inc.Affects[0].Severity != 100 ||
			inc.Affects[0].Type.Name == nil || *inc.Affects[0].Type.Name != "outage" {
			t.Errorf("updated %+v", inc)
		}
		var timeline struct {
			Data []struct{ DisplayName string }
		}
		s.Do("GET", "/v1/incidents/"+inc.ID+"/updates", key, nil).JSON(t, &timeline)
		if fmt.Sprint(timeline.Data) != "[{Phase changed} {Affected components changed}]" {
			t.Errorf("timeline %+v", timeline.Data)
		}
		// Queries: one type, one severity, a phase generation; unknown ones are null.
		r := gql(`{ impactType(id: "imp_minor") { displayName } missing: impactType(id: "imp_nothere1234") { id }
			severity(displayName: "DEGRADED") { value } phases(generation: 1) { phases } current: phases { generation }
			component(id: "`+comp+`") { activelyAffectedBy { severity } } }`, nil)
		var q struct {
			ImpactType struct{ DisplayName string }
			Missing    *struct{ ID string }
			Severity   struct{ Value int }
			Phases     struct{ Phases []string }
			Current    struct{ Generation int }
			Component  struct{ ActivelyAffectedBy []struct{ Severity int } }
		}
		if len(r.Errors) > 0 {
			t.Fatalf("query: %+v", r.Errors)
		}
		if err := json.Unmarshal(r.Data, &q); err != nil {
			t.Fatal(err)
		}
		if q.ImpactType.DisplayName != "Minor" || q.Missing != nil || q.Severity.Value != 40 || len(q.Phases.Phases) != 2 || q.Current.Generation != 1 ||
			len(q.Component.ActivelyAffectedBy) != 0 {
			t.Errorf("queries %+v", q)
		}
		if r := gql(`mutation($t: ID!) { deleteImpactType(id: $t) }`, map[string]any{"t": typ.ID}); len(r.Errors) > 0 {
			t.Errorf("delete an unused type: %+v", r.Errors) // the update above replaced its only use
		}
		if r := gql(`mutation { deleteSeverity(displayName: "Degraded") }`, nil); len(r.Errors) > 0 {
			t.Errorf("delete severity: %+v", r.Errors)
		}
		// Another tenant sees only built-ins, and no phases.
		_, r = s.GQL(s.Key(apitest.Tenant("gcat-o2"), model.ScopeIncidentsRead), `{ impactTypes { id } severities { displayName } phases { generation } }`, nil)
		var theirs struct {
			ImpactTypes []struct{ ID string }
			Severities  []struct{ DisplayName string }
			Phases      struct{ Generation int }
		}
		if err := json.Unmarshal(r.Data, &theirs); err != nil {
			t.Fatalf("%s: %v", r.Data, err)
		}
		if len(r.Errors) > 0 || len(theirs.ImpactTypes) != 4 || len(theirs.Severities) != 4 || theirs.Phases.Generation != 0 {
			t.Errorf("another tenant: %+v %+v", theirs, r.Errors)
		}
		// Keys no row can hold: null or an error with a code, never InternalError.
		for q, code := range map[string]string{
			`{ severity(displayName: "\u0000") { value } }`:                         "",
			`{ impactType(id: "\u0000") { id } }`:                                   "",
			`mutation { deleteSeverity(displayName: "\u0000") }`:                    "NotFound",
			`{ phases(generation: 2000000000) { generation } }`:                     "NotFound",
			`mutation { updateIncident(id: "\u0000", input: {title: "x"}) { id } }`: "NotFound",
		} {
			if _, r := s.GQL(key, q, nil); r.Code() != code {
				t.Errorf("%s: %+v, want code %q", q, r.Errors, code)
			}
		}
		if _, r := s.GQL(s.Key(tenant, model.ScopeIncidentsRead), `mutation { replacePhases(phases: ["a"]) { generation } }`, nil); r.Code() != "Forbidden" {
			t.Errorf("without components:write: %+v", r.Errors)
		}
	})
}

// A component taken out of an incident's affects by a PATCH goes back to
// operational on the live stream, though the incident no longer names it.
func TestComponentStatusOnAffectsChange(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("csa"), model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		api := rest(t, s, key, "POST", "/v1/components", map[string]any{"displayName": "API"})["id"].(string)
		db := rest(t, s, key, "POST", "/v1/components", map[string]any{"displayName": "DB"})["id"].(string)
		r, stop := sseOpen(t, s, key, "/v1/components/events")
		defer stop()
		s.WaitSubscriptions(1)
		next := func() string {
			_, typ, d := sseNext(t, r)
			if typ != "component.status" {
				t.Fatalf("event %s %v", typ, d)
			}
			c, _ := d["component"].(map[string]any)
			return fmt.Sprint(c["displayName"], "=", d["status"])
		}
		inc := rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "t", "severity": "high", "occurredAt": "2024-01-15T14:30:00Z",
			"affects": []map[string]any{{"reference": api, "type": "imp_major"}, {"reference": db, "type": "imp_minor", "severity": 45}}})
		got := map[string]bool{next(): true, next(): true}
		if !got["API=major"] || !got["DB=minor"] {
			t.Fatalf("after create: %v", got)
		}
		rest(t, s, key, "PATCH", "/v1/incidents/"+inc["id"].(string), map[string]any{"affects": []map[string]any{{"reference": api, "type": "imp_major"}}})
		if got := next(); got != "DB=operational" {
			t.Errorf("after removing DB: %s", got)
		}
	})
}

// A subscription outlives the impact types it has seen: a type created
// after it opened still resolves in its events.
func TestSubscriptionSeesNewImpactTypes(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("subtype"), model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		comp := rest(t, s, key, "POST", "/v1/components", map[string]any{"displayName": "API"})["id"].(string)
		c, _, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": key})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Subscribe("1", `subscription { incidentChanged { incident { affects { type { id displayName } } } } }`, nil)
		s.WaitSubscriptions(1)
		next := func() string {
			var p struct {
				Data struct {
					IncidentChanged struct {
						Incident struct {
							Affects []struct {
								Type struct{ ID, DisplayName string }
							}
						}
					}
				}
				Errors []any
			}
			if err := json.Unmarshal(c.NextData("1", 5*time.Second), &p); err != nil || len(p.Errors) > 0 {
				t.Fatalf("event: %v %v", err, p.Errors)
			}
			return fmt.Sprint(p.Data.IncidentChanged.Incident.Affects)
		}
		body := func(typ string) map[string]any {
			return map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z",
				"affects": []map[string]any{{"reference": comp, "type": typ, "severity": 10}}}
		}
		rest(t, s, key, "POST", "/v1/incidents", body("imp_minor"))
		if got := next(); got != "[{{imp_minor Minor}}]" {
			t.Errorf("first event: %s", got)
		}
		typ := rest(t, s, key, "POST", "/v1/impact-types", map[string]any{"displayName": "Fresh"})["id"].(string)
		rest(t, s, key, "POST", "/v1/incidents", body(typ))
		if got := next(); got != "[{{"+typ+" Fresh}}]" {
			t.Errorf("event with a new type: %s", got)
		}
	})
}
